//! Trace replay: a whole operation trace runs inside the engine.
//!
//! A trace is an array of 24-byte records (`kmm.TRACE_DTYPE`):
//! `op u8 @0, order u8 @1, (2 pad bytes), obj u32 @4, gfp u32 @8, stack u32 @12,
//! pid u32 @16, tgid u32 @20`, native endian. Objects are ids chosen by the
//! workload; the engine remembers which block each holds, so the same trace
//! can be replayed on any allocator.

use crate::error::{Error, Result};
use crate::gfp::{self, AllocType};
use crate::mm::machine::Machine;
use crate::mm::objects::{OBJ_LIVE, OBJ_RECLAIMED};
use crate::mm::page::{forder, F_LRU, F_OBJ};
use crate::page_owner::AllocCtx;
use crate::{MAX_ORDER, NONE};

pub const OP_ALLOC: u8 = 1;
pub const OP_FREE: u8 = 2;
pub const OP_TOUCH: u8 = 3;
/// Advance simulated time by `obj` microseconds (kswapd runs meanwhile).
pub const OP_TICK: u8 = 4;
pub const TRACE_RECORD_SIZE: usize = 24;
/// Longest single OP_TICK: one hour.
pub const MAX_TICK_US: u32 = 3_600_000_000;

/// One decoded trace record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceOp {
    pub op: u8,
    pub order: u8,
    pub obj: u32,
    pub gfp: u32,
    pub stack: u32,
    pub pid: u32,
    pub tgid: u32,
}

impl TraceOp {
    #[inline]
    pub fn read(b: &[u8]) -> TraceOp {
        let u = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        TraceOp {
            op: b[0],
            order: b[1],
            obj: u(4),
            gfp: u(8),
            stack: u(12),
            pid: u(16),
            tgid: u(20),
        }
    }
    pub fn write(&self, b: &mut [u8]) {
        b[0] = self.op;
        b[1] = self.order;
        b[2] = 0;
        b[3] = 0;
        b[4..8].copy_from_slice(&self.obj.to_ne_bytes());
        b[8..12].copy_from_slice(&self.gfp.to_ne_bytes());
        b[12..16].copy_from_slice(&self.stack.to_ne_bytes());
        b[16..20].copy_from_slice(&self.pid.to_ne_bytes());
        b[20..24].copy_from_slice(&self.tgid.to_ne_bytes());
    }
    pub fn to_bytes(ops: &[TraceOp]) -> Vec<u8> {
        let mut v = vec![0u8; ops.len() * TRACE_RECORD_SIZE];
        for (i, o) in ops.iter().enumerate() {
            o.write(&mut v[i * TRACE_RECORD_SIZE..(i + 1) * TRACE_RECORD_SIZE]);
        }
        v
    }
}

/// What a replay did.
#[derive(Debug, Clone)]
pub struct ReplayResult {
    pub ops: u64,
    /// Counter increments during this replay, by name.
    pub counters: Vec<(&'static str, u64)>,
    /// Per op: the pfn allocated/freed/touched, or -1 when there was none.
    pub outcomes: Option<Vec<i64>>,
}

impl Machine {
    /// Replay raw trace bytes (a multiple of 24). Validates the whole trace first;
    /// on error nothing has changed.
    pub fn replay_bytes(&mut self, bytes: &[u8], want_outcomes: bool) -> Result<ReplayResult> {
        if bytes.len() % TRACE_RECORD_SIZE != 0 {
            return Err(Error::Trace(format!(
                "trace is {} bytes, not a multiple of the {TRACE_RECORD_SIZE}-byte record",
                bytes.len()
            )));
        }
        let n = bytes.len() / TRACE_RECORD_SIZE;
        let rec =
            |i: usize| TraceOp::read(&bytes[i * TRACE_RECORD_SIZE..(i + 1) * TRACE_RECORD_SIZE]);
        self.validate_trace(n, rec)?;
        let before = self.counters.clone();
        let mut outcomes = if want_outcomes {
            Some(Vec::with_capacity(n))
        } else {
            None
        };
        for i in 0..n {
            let r = self.apply(&rec(i));
            if let Some(o) = outcomes.as_mut() {
                o.push(r);
            }
        }
        Ok(ReplayResult {
            ops: n as u64,
            counters: self.counters.delta(&before),
            outcomes,
        })
    }

    /// Replay decoded operations.
    pub fn replay_ops(&mut self, ops: &[TraceOp], want_outcomes: bool) -> Result<ReplayResult> {
        self.validate_trace(ops.len(), |i| ops[i])?;
        let before = self.counters.clone();
        let mut outcomes = if want_outcomes {
            Some(Vec::with_capacity(ops.len()))
        } else {
            None
        };
        for op in ops {
            let r = self.apply(op);
            if let Some(o) = outcomes.as_mut() {
                o.push(r);
            }
        }
        Ok(ReplayResult {
            ops: ops.len() as u64,
            counters: self.counters.delta(&before),
            outcomes,
        })
    }

    fn validate_trace(&mut self, n: usize, rec: impl Fn(usize) -> TraceOp) -> Result<()> {
        let max_objects = self.cfg.max_objects;
        let mut max_obj: Option<u32> = None;
        let mut last_gfp = u32::MAX;
        for i in 0..n {
            let r = rec(i);
            match r.op {
                OP_ALLOC | OP_FREE | OP_TOUCH => {
                    if r.obj >= max_objects {
                        return Err(Error::Trace(format!(
                            "op {i}: object id {} is beyond the declared range (max_objects = {max_objects})",
                            r.obj
                        )));
                    }
                    max_obj = Some(max_obj.map_or(r.obj, |m| m.max(r.obj)));
                    // traces are portable: stacks are ignored on a machine without page_owner
                    if r.stack != 0 && self.owner.is_some() && self.validate_stack(r.stack).is_err()
                    {
                        return Err(Error::Trace(format!(
                            "op {i}: stack handle {:#x} is not in this machine's stack depot",
                            r.stack
                        )));
                    }
                    if r.op == OP_ALLOC {
                        if r.order as usize >= MAX_ORDER {
                            return Err(Error::Trace(format!(
                                "op {i}: order {} is out of range 0..{}",
                                r.order,
                                MAX_ORDER - 1
                            )));
                        }
                        if r.gfp != last_gfp {
                            gfp::validate(r.gfp)
                                .map_err(|e| Error::Trace(format!("op {i}: {}", e.message())))?;
                            last_gfp = r.gfp;
                        }
                    }
                }
                OP_TICK => {
                    if r.obj > MAX_TICK_US {
                        return Err(Error::Trace(format!(
                            "op {i}: OP_TICK of {} us is absurd (at most {MAX_TICK_US} us, one hour)",
                            r.obj
                        )));
                    }
                }
                o => {
                    return Err(Error::Trace(format!(
                        "op {i}: unknown op code {o} (OP_ALLOC=1, OP_FREE=2, OP_TOUCH=3, OP_TICK=4)"
                    )))
                }
            }
        }
        // the object table may grow for this trace; a rejected trace shrinks it back
        let old_len = self.objs.len();
        if let Some(m) = max_obj {
            self.objs.ensure(m as usize + 1);
        }
        // object consistency, against the machine's objects; undone on error
        let mut undo: Vec<u32> = Vec::new();
        let mut fail = None;
        for i in 0..n {
            let r = rec(i);
            let s = &mut self.objs.state;
            let live = r.op != OP_TICK && s[r.obj as usize] & OBJ_LIVE != 0;
            match r.op {
                OP_ALLOC if live => {
                    fail = Some(format!(
                        "op {i}: OP_ALLOC of object {} that is still allocated",
                        r.obj
                    ));
                }
                OP_FREE | OP_TOUCH if !live => {
                    fail = Some(format!(
                        "op {i}: {} of object {} that is not allocated (never allocated, or freed already)",
                        if r.op == OP_FREE { "OP_FREE" } else { "OP_TOUCH" },
                        r.obj
                    ));
                }
                OP_ALLOC | OP_FREE => {
                    s[r.obj as usize] ^= OBJ_LIVE;
                    undo.push(r.obj);
                }
                _ => {}
            }
            if fail.is_some() {
                break;
            }
        }
        if let Some(msg) = fail {
            for &o in undo.iter().rev() {
                self.objs.state[o as usize] ^= OBJ_LIVE;
            }
            self.objs.truncate(old_len);
            return Err(Error::Trace(msg));
        }
        Ok(())
    }

    #[inline]
    fn trace_node(&self, pid: u32) -> usize {
        if self.nr_nodes > 1 {
            pid as usize % self.nr_nodes
        } else {
            0
        }
    }

    /// Bind a freshly allocated block to a trace object; reclaimable ones join the LRU.
    #[inline]
    fn attach(&mut self, obj: u32, pfn: u32, gfp: u32, order: u32) {
        self.objs.pfn[obj as usize] = pfn;
        self.objs.state[obj as usize] &= !OBJ_RECLAIMED;
        self.next[pfn as usize] = obj;
        self.flags[pfn as usize] |= F_OBJ;
        if AllocType::from_gfp(gfp).reclaimable() {
            self.flags[pfn as usize] |= F_LRU;
            let zi = self.zone_of_pfn(pfn as u64);
            self.lru_add(zi, obj, 1u64 << order);
        }
    }

    /// Apply one validated operation; returns the pfn concerned or -1.
    #[inline]
    fn apply(&mut self, r: &TraceOp) -> i64 {
        match r.op {
            OP_ALLOC => {
                let o = r.obj as usize;
                self.objs.gfp[o] = r.gfp;
                self.objs.order[o] = r.order;
                let node = self.trace_node(r.pid);
                let ctx = AllocCtx {
                    stack: r.stack,
                    pid: r.pid,
                    tgid: r.tgid,
                };
                match self.alloc_inner(r.order as u32, r.gfp, node, ctx) {
                    Some(p) => {
                        self.attach(r.obj, p, r.gfp, r.order as u32);
                        p as i64
                    }
                    None => {
                        self.objs.pfn[o] = NONE;
                        self.objs.state[o] &= !OBJ_RECLAIMED;
                        -1
                    }
                }
            }
            OP_FREE => {
                let o = r.obj as usize;
                let p = self.objs.pfn[o];
                if p != NONE {
                    if self.flags[p as usize] & F_LRU != 0 {
                        let zi = self.zone_of_pfn(p as u64);
                        self.lru_del(zi, r.obj);
                    }
                    self.flags[p as usize] &= !F_OBJ;
                    self.free_block(p, false, r.stack);
                    self.objs.pfn[o] = NONE;
                    self.counters.free += 1;
                    p as i64
                } else {
                    if self.objs.state[o] & OBJ_RECLAIMED != 0 {
                        self.objs.state[o] &= !OBJ_RECLAIMED;
                        self.counters.free_reclaimed += 1;
                    } else {
                        self.counters.free_noop += 1;
                    }
                    -1
                }
            }
            OP_TOUCH => {
                self.counters.touch += 1;
                let o = r.obj as usize;
                let p = self.objs.pfn[o];
                if p != NONE {
                    if self.flags[p as usize] & F_LRU != 0 {
                        let zi = self.zone_of_pfn(p as u64);
                        self.lru_touch(zi, r.obj);
                    }
                    p as i64
                } else {
                    // faulted back in: a fresh allocation with the same flags (a
                    // refault if reclaim took it; a retry if its allocation failed)
                    let reclaimed = self.objs.state[o] & OBJ_RECLAIMED != 0;
                    let (order, gfp) = (self.objs.order[o] as u32, self.objs.gfp[o]);
                    let node = self.trace_node(r.pid);
                    // as in the kernel, page_owner records the refault itself: the
                    // faulting task and the call chain of the touch
                    let ctx = AllocCtx {
                        stack: r.stack,
                        pid: r.pid,
                        tgid: r.tgid,
                    };
                    match self.alloc_inner(order, gfp, node, ctx) {
                        Some(np) => {
                            if reclaimed {
                                self.counters.refaults += 1;
                            }
                            self.attach(r.obj, np, gfp, order);
                            np as i64
                        }
                        None => {
                            if reclaimed {
                                self.counters.refault_fail += 1;
                            }
                            -1
                        }
                    }
                }
            }
            OP_TICK => {
                self.advance(r.obj as u64 * 1000);
                -1
            }
            _ => unreachable!("validated"),
        }
    }

    /// Advance simulated time by `dt_ns` outside a trace, bounded as one OP_TICK
    /// is (at most [`MAX_TICK_US`], an hour); kswapd works meanwhile
    /// ([`Machine::advance`]).
    pub fn tick(&mut self, dt_ns: u64) -> Result<()> {
        let max_ns = MAX_TICK_US as u64 * 1000;
        if dt_ns > max_ns {
            return Err(Error::Config(format!(
                "cannot advance time by {dt_ns} ns (at most {max_ns} ns, one hour)"
            )));
        }
        self.advance(dt_ns);
        Ok(())
    }

    /// The block an object holds now (pfn, order), if any.
    pub fn object_block(&self, obj: u32) -> Option<(u32, u32)> {
        let p = *self.objs.pfn.get(obj as usize)?;
        if p == NONE {
            None
        } else {
            Some((p, forder(self.flags[p as usize])))
        }
    }
}
