//! Trace replay: a whole operation trace runs inside the engine.
//!
//! A trace is an array of 24-byte records (`kmm.TRACE_DTYPE`):
//! `op u8 @0, order u8 @1, (2 pad bytes), obj u32 @4, gfp u32 @8, stack u32 @12,
//! pid u32 @16, tgid u32 @20`, native endian. Objects are ids chosen by the
//! workload; the engine remembers which block each holds, so the same trace
//! can be replayed on any allocator.
//!
//! Slab objects (`mm::slab`) have their own ops: OP_SLAB_ALLOC puts object
//! `obj` in the cache numbered `order` (`mm::slab::CACHES`), `gfp` being the
//! caller's mask (no zone modifier: slab pages are lowmem); OP_SLAB_FREE frees
//! it; OP_TOUCH references either kind. OP_SLAB_PIN makes object `obj` (a page
//! or a slab object) pin the slab object whose id is in the `gfp` field (a
//! page-cache page or a dentry pinning its inode) until the trace frees `obj`:
//! the shrinker never frees a pinned object whose pinners are present, and
//! the trace must free the pinners before the object they pin. Traces without
//! these ops are read as before.

use crate::error::{Error, Result};
use crate::gfp::{self, AllocType};
use crate::mm::huge_memory::thp_base_gfp;
use crate::mm::machine::Machine;
use crate::mm::objects::{
    prefetch, DENSE_IDS, OBJ_IS_SLAB, OBJ_LIVE, OBJ_RECLAIMED, OBJ_SLAB, OBJ_UNEVICTABLE,
};
use crate::mm::page::{forder, F_LRU, F_OBJ};
use crate::mm::slab::NR_CACHES;
use crate::page_owner::AllocCtx;
use crate::{MAX_ORDER, NONE};

pub(crate) mod program;
mod validate;
pub use validate::Checked;
use validate::AHEAD;

pub const OP_ALLOC: u8 = 1;
pub const OP_FREE: u8 = 2;
pub const OP_TOUCH: u8 = 3;
/// Advance simulated time by `obj` microseconds (kswapd runs meanwhile).
pub const OP_TICK: u8 = 4;
/// Allocate slab object `obj` from cache `order` with caller mask `gfp`.
pub const OP_SLAB_ALLOC: u8 = 5;
/// Free slab object `obj`.
pub const OP_SLAB_FREE: u8 = 6;
/// Object `obj` pins slab object `gfp` (the field holds an object id).
pub const OP_SLAB_PIN: u8 = 7;
pub const TRACE_RECORD_SIZE: usize = 24;
/// `flags` of an OP_ALLOC / OP_SLAB_ALLOC: the object belongs to its task
/// (`tgid`): anonymous memory, page tables, kernel stack, the task's slab
/// objects. The OOM killer frees these when it kills the task
/// (`mm::oom_kill`); page cache and the dentry/inode caches stay.
pub const TF_TASK: u8 = 1;
/// `flags` of an OP_ALLOC: the block is movable but reclaim cannot take it
/// (`PG_unevictable`): an mlocked page, or an anonymous or shmem page on a
/// machine without swap. It goes to its zone's unevictable list, which
/// reclaim never scans; compaction migrates it (`compact_unevictable_allowed`,
/// default 1 since Linux 4.1). Only meaningful for a movable (`__GFP_MOVABLE`)
/// mask; on any other it changes nothing.
pub const TF_UNEVICTABLE: u8 = 2;
/// Longest single OP_TICK: one hour.
pub const MAX_TICK_US: u32 = 3_600_000_000;

/// One decoded trace record, laid out as the record is (`replay::program`
/// copies records into these).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceOp {
    pub op: u8,
    pub order: u8,
    /// `TF_*` bits (byte 2 of the record).
    pub flags: u8,
    pub obj: u32,
    pub gfp: u32,
    pub stack: u32,
    pub pid: u32,
    pub tgid: u32,
}

impl TraceOp {
    /// Decode one record (the first 24 bytes of `b`).
    #[inline]
    pub fn read(b: &[u8]) -> TraceOp {
        Self::read_record(b[..TRACE_RECORD_SIZE].try_into().unwrap())
    }

    /// Decode one record.
    #[inline(always)]
    pub fn read_record(b: &[u8; TRACE_RECORD_SIZE]) -> TraceOp {
        let u = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        TraceOp {
            op: b[0],
            order: b[1],
            flags: b[2],
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
        b[2] = self.flags;
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
    /// Records applied: the whole trace, or the ones before an interruption.
    pub ops: u64,
    /// Counter increments during this replay, by name.
    pub counters: Vec<(&'static str, u64)>,
    /// Per applied op: the pfn allocated/freed/touched, or -1 when there was none.
    pub outcomes: Option<Vec<i64>>,
    /// The caller's interrupt poll said stop: only the first `ops` records ran.
    pub interrupted: bool,
}

/// Records between two calls of a replay's interrupt poll.
pub const POLL_EVERY: usize = 1 << 14;

/// The simulated clock never passes this (2^63 ns, about 292 years).
pub const MAX_NOW_NS: u64 = 1 << 63;

impl ReplayResult {
    /// The result of a replay stopped before anything ran.
    pub fn stopped(want_outcomes: bool) -> ReplayResult {
        ReplayResult {
            ops: 0,
            counters: Vec::new(),
            outcomes: want_outcomes.then(Vec::new),
            interrupted: true,
        }
    }
}

impl Checked<'_> {
    /// Run the validated trace. `interrupted` is called every [`POLL_EVERY`]
    /// records; when it says stop, the first `ops` records have run and the
    /// rest have not.
    pub fn run(mut self, interrupted: &dyn Fn() -> bool) -> ReplayResult {
        let n = self.n;
        let mut outcomes = self.outcomes.take();
        let Checked { m, prog, .. } = &mut self;
        // the machine itself, not the view's reference to it, which the
        // loop would otherwise load again at every record
        let m: &mut Machine = m;
        // the `n` records, then the padding the prefetches look into
        let recs = &prog.recs[..];
        debug_assert_eq!(recs.len(), n + AHEAD);
        let before = m.counters.clone();
        let mut done = 0;
        while done < n {
            if done > 0 && interrupted() {
                break;
            }
            let end = (done + POLL_EVERY).min(n);
            // two loops, so that a replay without outcomes pays nothing for them
            match outcomes.as_mut() {
                Some(o) => {
                    for (i, r) in (done..end).zip(&recs[done..end]) {
                        m.prefetch_ahead(recs, i);
                        let p = m.step(r);
                        debug_assert!(o.len() < o.capacity());
                        // SAFETY: validation reserved room for an outcome a
                        // record (`check_trace`), and one is written a record run
                        unsafe {
                            o.as_mut_ptr().add(o.len()).write(p);
                            o.set_len(o.len() + 1);
                        }
                    }
                }
                None => {
                    for (i, r) in (done..end).zip(&recs[done..end]) {
                        m.prefetch_ahead(recs, i);
                        m.step(r);
                    }
                }
            }
            done = end;
        }
        ReplayResult {
            ops: done as u64,
            counters: m.counters.delta(&before),
            outcomes,
            interrupted: done < n,
        }
        // dropping `self` ends the view and keeps the buffer
    }
}

impl Machine {
    /// Replay raw trace bytes (a multiple of 24) without interruption.
    pub fn replay_bytes(&mut self, bytes: &[u8], want_outcomes: bool) -> Result<ReplayResult> {
        self.replay_polled(bytes, want_outcomes, &|| false)
    }

    /// Replay decoded operations.
    pub fn replay_ops(&mut self, ops: &[TraceOp], want_outcomes: bool) -> Result<ReplayResult> {
        self.replay_bytes(&TraceOp::to_bytes(ops), want_outcomes)
    }

    /// Replay raw trace bytes: [`Machine::check_trace`], then [`Checked::run`].
    /// The whole trace is validated first; on error nothing has changed.
    /// `interrupted` is called every [`POLL_EVERY`] records; when it says
    /// stop, a replay still validating changes nothing (`ops` 0), one running
    /// stops between two records: the first `ops` records have run, exactly
    /// as a trace of those records alone would have, and the rest have not
    /// (`interrupted` is set either way).
    pub fn replay_polled(
        &mut self,
        bytes: &[u8],
        want_outcomes: bool,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<ReplayResult> {
        Ok(match self.check_trace(bytes, want_outcomes, interrupted)? {
            Some(c) => c.run(interrupted),
            None => ReplayResult::stopped(want_outcomes),
        })
    }

    /// Start loading what the records ahead of record `i` will read: the id
    /// -> slot map entry [`AHEAD`] records ahead, the slot's fields half as
    /// far, and the block's page flags and the LRU neighbours' links a
    /// quarter as far (each stage finds the one before it in the cache). A
    /// large trace touching many live objects at random otherwise waits for
    /// memory at every record.
    #[inline(always)]
    fn prefetch_ahead(&self, recs: &[program::Rec], i: usize) {
        let o = &self.objs;
        debug_assert!(i + AHEAD < recs.len());
        // SAFETY: `i` is a record that runs, below `n`, and `recs` holds
        // `n + AHEAD` records (`Program::pad`)
        let id_ahead = |k: usize| unsafe { recs.get_unchecked(i + k) }.obj;
        let slot_of = |k: usize| match o.dense.get(id_ahead(k) as usize) {
            Some(&s @ 1..) => Some(s as usize - 1),
            _ => None,
        };
        prefetch(&o.dense, id_ahead(AHEAD) as usize);
        if let Some(s) = slot_of(AHEAD / 2) {
            prefetch(&o.pfn, s);
            prefetch(&o.state, s);
            prefetch(&o.pin, s);
            prefetch(&o.slot_id, s);
            prefetch(&o.lru_next, s);
            prefetch(&o.lru_prev, s);
        }
        if let Some(s) = slot_of(AHEAD / 4) {
            // a slot of the map, which every slot array spans
            if let Some(&p) = o.pfn.get(s) {
                prefetch(&self.flags, p as usize);
            }
            // its LRU neighbours' links, which taking it off its list rewrites
            if let Some(&nx) = o.lru_next.get(s) {
                prefetch(&o.lru_prev, nx as usize);
            }
            if let Some(&pv) = o.lru_prev.get(s) {
                prefetch(&o.lru_next, pv as usize);
            }
        }
    }

    /// Run one validated record: its id turns into its slot (a new slot for
    /// an allocation, given back when it is freed); the pfn concerned or -1.
    /// OP_ALLOC and OP_FREE, nearly every record of a trace, go straight to
    /// their own code ([`Machine::apply_alloc`], [`Machine::apply_free`]):
    /// one dispatch on the op a record, not one here and one in
    /// [`Machine::apply`].
    #[inline(always)]
    fn step(&mut self, r: &TraceOp) -> i64 {
        let slot = |m: &Machine, id: u32| match m.objs.slot(id) {
            Some(s) => s as u32,
            None => unreachable!("validated: object {id} is allocated"),
        };
        match r.op {
            OP_ALLOC => {
                let r = TraceOp {
                    obj: self.objs.bind(r.obj, OBJ_LIVE),
                    ..*r
                };
                self.enter(&r);
                if self.dropped(&r) {
                    return self.drop_killed_op(&r);
                }
                self.apply_alloc(&r)
            }
            OP_FREE => {
                let r = TraceOp {
                    obj: slot(self, r.obj),
                    ..*r
                };
                self.enter(&r);
                let p = self.apply_free(&r);
                self.objs.unbind(r.obj);
                p
            }
            OP_SLAB_ALLOC => {
                let r = TraceOp {
                    obj: self.objs.bind(r.obj, OBJ_LIVE | OBJ_SLAB),
                    ..*r
                };
                self.apply(&r)
            }
            OP_SLAB_FREE => {
                let r = TraceOp {
                    obj: slot(self, r.obj),
                    ..*r
                };
                let p = self.apply(&r);
                self.objs.unbind(r.obj);
                p
            }
            OP_SLAB_PIN => {
                let r = TraceOp {
                    obj: slot(self, r.obj),
                    gfp: slot(self, r.gfp),
                    ..*r
                };
                self.apply(&r)
            }
            OP_TOUCH => {
                let r = TraceOp {
                    obj: slot(self, r.obj),
                    ..*r
                };
                self.apply(&r)
            }
            _ => self.apply(r),
        }
    }

    /// What every record does first: its task runs, on its CPU.
    #[inline(always)]
    fn enter(&mut self, r: &TraceOp) {
        self.current_pid = r.pid;
        let cpu = self.cpu_of_pid(r.pid);
        if cpu != self.cpu {
            self.switch_cpu(cpu);
        }
    }

    /// Whether record `r` is an allocation or touch of a task the OOM killer
    /// killed, which the engine drops ([`Machine::drop_killed_op`]).
    #[inline(always)]
    fn dropped(&self, r: &TraceOp) -> bool {
        !self.oom_killed.is_empty()
            && matches!(r.op, OP_ALLOC | OP_SLAB_ALLOC | OP_TOUCH)
            && self.oom_killed.contains(&r.tgid)
    }

    #[inline]
    fn trace_node(&self, pid: u32) -> usize {
        if self.nr_nodes > 1 {
            pid as usize % self.nr_nodes
        } else {
            0
        }
    }

    /// Allocate object `obj`'s block with its order and mask (a THP fault, with
    /// its base-page fallback, for a THP region's head; a region page's base
    /// mask for the others).
    #[inline]
    fn fault_alloc(&mut self, obj: u32, node: usize, ctx: AllocCtx) -> Option<u32> {
        let o = obj as usize;
        let (order, gfp) = (self.objs.order[o] as u32, self.objs.gfp[o]);
        self.fault_alloc_as(obj, order, gfp, node, ctx)
    }

    /// [`Machine::fault_alloc`] with the object's order and mask as given
    /// (an OP_ALLOC has just stored them).
    #[inline(always)]
    fn fault_alloc_as(
        &mut self,
        obj: u32,
        order: u32,
        mut gfp: u32,
        node: usize,
        ctx: AllocCtx,
    ) -> Option<u32> {
        if self.is_thp_fault(obj, order, gfp) {
            return self.thp_fault(obj, gfp, node, ctx);
        }
        if order == 0 && gfp & gfp::__GFP_COMP != 0 && self.layout == crate::config::Layout::X86_64
        {
            // a page of a THP region that fell back to base pages
            gfp = thp_base_gfp(gfp);
            self.objs.gfp[obj as usize] = gfp;
        }
        self.alloc_inner(order, gfp, node, ctx)
    }

    /// Bind a freshly allocated block to a trace object; reclaimable ones join the LRU.
    #[inline(always)]
    fn attach(&mut self, obj: u32, pfn: u32, gfp: u32, order: u32) {
        let (o, p) = (obj as usize, pfn as usize);
        debug_assert!(o < self.objs.pfn.len() && o < self.objs.state.len());
        debug_assert!(p < self.next.len() && p < self.flags.len());
        // SAFETY: `obj` is a slot (every slot array is as long as the
        // table), and `pfn` a block the allocator just gave, a pfn of the
        // map, which `next` and `flags` span
        unsafe {
            *self.objs.pfn.get_unchecked_mut(o) = pfn;
            *self.objs.state.get_unchecked_mut(o) &= !(OBJ_RECLAIMED | OBJ_IS_SLAB);
            *self.next.get_unchecked_mut(p) = obj;
            *self.flags.get_unchecked_mut(p) |= F_OBJ;
        }
        if AllocType::from_gfp(gfp).reclaimable() {
            self.flags[p] |= F_LRU;
            let zi = self.zone_of_pfn(pfn as u64);
            if self.objs.state[o] & OBJ_UNEVICTABLE != 0 {
                self.lru_add_unevictable(zi, obj, 1u64 << order);
            } else {
                self.lru_add(zi, obj, 1u64 << order);
            }
        }
    }

    /// The trace frees `obj`: it stops holding, and its pin link goes.
    #[inline]
    fn unpin(&mut self, obj: u32) {
        let t = self.objs.pin[obj as usize];
        if t != NONE {
            self.release_hold(obj);
            self.objs.pin[obj as usize] = NONE;
            self.objs.npins[t as usize] -= 1;
        }
    }

    /// OP_ALLOC of the slot `r.obj` (bound for this record).
    #[inline(always)]
    fn apply_alloc(&mut self, r: &TraceOp) -> i64 {
        let o = r.obj as usize;
        let ob = &mut self.objs;
        debug_assert!(o < ob.owner.len() && o < ob.state.len());
        debug_assert!(o < ob.gfp.len() && o < ob.order.len());
        // SAFETY: `o` is the slot `step` bound for this record, below
        // the table's length, which every slot array has
        unsafe {
            *ob.owner.get_unchecked_mut(o) = if r.flags & TF_TASK != 0 { r.tgid } else { NONE };
            let st = ob.state.get_unchecked_mut(o);
            *st = (*st & !OBJ_UNEVICTABLE)
                | if r.flags & TF_UNEVICTABLE != 0 {
                    OBJ_UNEVICTABLE
                } else {
                    0
                };
            *ob.gfp.get_unchecked_mut(o) = r.gfp;
            *ob.order.get_unchecked_mut(o) = r.order;
        }
        let ctx = AllocCtx {
            stack: r.stack,
            pid: r.pid,
            tgid: r.tgid,
        };
        if r.order == 0 && r.gfp & gfp::__GFP_COMP == 0 {
            // a page outside any THP region (no `__GFP_COMP`) and not a THP
            // fault (order 0): `fault_alloc_as` would go straight to
            // `alloc_inner`, and leave the object's order and mask as stored
            let node = self.trace_node(r.pid);
            return match self.alloc_inner(0, r.gfp, node, ctx) {
                Some(p) => {
                    self.attach(r.obj, p, r.gfp, 0);
                    p as i64
                }
                None => {
                    self.objs.pfn[o] = NONE;
                    self.objs.state[o] &= !(OBJ_RECLAIMED | OBJ_IS_SLAB);
                    -1
                }
            };
        }
        if r.order == 0 {
            if let Some(head) = self.thp_covering_head(r.obj, 0, r.gfp) {
                // a THP region's page its head's huge page maps: nothing to allocate
                self.objs.pfn[o] = NONE;
                self.objs.state[o] &= !(OBJ_RECLAIMED | OBJ_IS_SLAB);
                return self.thp_covered_pfn(head, r.obj).map_or(-1, |p| p as i64);
            }
        }
        let node = self.trace_node(r.pid);
        match self.fault_alloc_as(r.obj, r.order as u32, r.gfp, node, ctx) {
            Some(p) => {
                // order and mask as the allocation left them (a THP
                // fault's base-page fallback changes both)
                let (g, ord) = (self.objs.gfp[o], self.objs.order[o] as u32);
                self.attach(r.obj, p, g, ord);
                p as i64
            }
            None => {
                self.objs.pfn[o] = NONE;
                self.objs.state[o] &= !(OBJ_RECLAIMED | OBJ_IS_SLAB);
                -1
            }
        }
    }

    /// OP_FREE of the slot `r.obj` (the caller unbinds it after).
    #[inline(always)]
    fn apply_free(&mut self, r: &TraceOp) -> i64 {
        let o = r.obj as usize;
        debug_assert!(o < self.objs.pfn.len() && o < self.objs.pin.len());
        // SAFETY: `o` is the slot `step` found for this record's id,
        // below the table's length, which every slot array has
        let (p, pin) = unsafe {
            (
                *self.objs.pfn.get_unchecked(o),
                *self.objs.pin.get_unchecked(o),
            )
        };
        if pin != NONE {
            self.unpin(r.obj);
        }
        if p != NONE {
            let pi = p as usize;
            let mut f = self.flags[pi];
            if f & F_LRU != 0 {
                let zi = self.zone_of_pfn(p as u64);
                self.lru_del(zi, r.obj);
                f = self.flags[pi];
            }
            f &= !F_OBJ;
            debug_assert!(pi < self.flags.len());
            // SAFETY: `pi` indexed `flags` just now, and nothing between
            // changed its length (the map's length is fixed at boot)
            unsafe { *self.flags.get_unchecked_mut(pi) = f };
            self.free_block_flags(p, f, false, r.stack);
            // (`step` unbinds the slot, which makes its pfn NONE)
            self.counters.free += 1;
            p as i64
        } else {
            self.free_absent(o)
        }
    }

    /// The free of an object that holds no page: one reclaim took (counted as
    /// `free_reclaimed`, its mark cleared) or one that never got one
    /// (`free_noop`); returns -1, the pfn concerned.
    #[inline(always)]
    fn free_absent(&mut self, o: usize) -> i64 {
        if self.objs.state[o] & OBJ_RECLAIMED != 0 {
            self.objs.state[o] &= !OBJ_RECLAIMED;
            self.counters.free_reclaimed += 1;
        } else {
            self.counters.free_noop += 1;
        }
        -1
    }

    /// Apply one validated operation; returns the pfn concerned or -1.
    #[inline(always)]
    fn apply(&mut self, r: &TraceOp) -> i64 {
        self.enter(r);
        if self.dropped(r) {
            return self.drop_killed_op(r);
        }
        match r.op {
            OP_ALLOC => self.apply_alloc(r),
            OP_SLAB_ALLOC => {
                let o = r.obj as usize;
                self.objs.owner[o] = if r.flags & TF_TASK != 0 { r.tgid } else { NONE };
                self.objs.state[o] |= OBJ_IS_SLAB;
                self.objs.order[o] = r.order;
                self.objs.gfp[o] = r.gfp;
                let ctx = AllocCtx {
                    stack: r.stack,
                    pid: r.pid,
                    tgid: r.tgid,
                };
                match self.slab_alloc_obj(r.obj, r.order as usize, r.gfp, ctx) {
                    Some(p) => p as i64,
                    None => {
                        self.objs.pfn[o] = NONE;
                        self.objs.state[o] &= !OBJ_RECLAIMED;
                        -1
                    }
                }
            }
            OP_SLAB_FREE => {
                let o = r.obj as usize;
                let p = self.objs.pfn[o];
                self.unpin(r.obj);
                if p != NONE {
                    self.slab_free_obj(r.obj, false);
                    p as i64
                } else {
                    self.free_absent(o)
                }
            }
            OP_SLAB_PIN => {
                let (p, t) = (r.obj as usize, r.gfp);
                self.objs.pin[p] = t;
                self.objs.npins[t as usize] += 1;
                if self.objs.pfn[p] != NONE {
                    let ctx = AllocCtx {
                        stack: r.stack,
                        pid: r.pid,
                        tgid: r.tgid,
                    };
                    self.take_hold(r.obj, ctx);
                }
                self.objs.pfn[t as usize] as i64
            }
            OP_FREE => self.apply_free(r),
            OP_TOUCH => {
                self.counters.touch += 1;
                let mut obj = r.obj;
                if self.objs.pfn[obj as usize] == NONE {
                    // a page of a THP region: the touch is of its huge page
                    let (ord, g) = (self.objs.order[obj as usize], self.objs.gfp[obj as usize]);
                    if let Some(head) = self.thp_covering_head(obj, ord as u32, g) {
                        obj = head;
                    }
                }
                let o = obj as usize;
                let p = self.objs.pfn[o];
                let ctx = AllocCtx {
                    stack: r.stack,
                    pid: r.pid,
                    tgid: r.tgid,
                };
                if p != NONE {
                    if self.objs.state[o] & OBJ_IS_SLAB != 0 {
                        self.slab_touch(obj);
                    } else if self.flags[p as usize] & F_LRU != 0 {
                        let zi = self.zone_of_pfn(p as u64);
                        self.mark_page_accessed(zi, obj);
                    }
                    p as i64
                } else if self.objs.state[o] & OBJ_IS_SLAB != 0 {
                    // looked up again (a dentry or inode the shrinker freed is read back)
                    let reclaimed = self.objs.state[o] & OBJ_RECLAIMED != 0;
                    let (c, gfp) = (self.objs.order[o] as usize, self.objs.gfp[o]);
                    match self.slab_alloc_obj(obj, c, gfp, ctx) {
                        Some(np) => {
                            if reclaimed {
                                self.counters.slab_refaults += 1;
                            }
                            self.take_hold(obj, ctx);
                            np as i64
                        }
                        None => -1,
                    }
                } else {
                    // faulted back in: a fresh allocation with the same flags (a
                    // refault if reclaim took it; a retry if its allocation failed)
                    let reclaimed = self.objs.state[o] & OBJ_RECLAIMED != 0;
                    let node = self.trace_node(r.pid);
                    // as in the kernel, page_owner records the refault itself: the
                    // faulting task and the call chain of the touch
                    match self.fault_alloc(obj, node, ctx) {
                        Some(np) => {
                            if reclaimed {
                                self.counters.refaults += 1;
                            }
                            let (gfp, order) = (self.objs.gfp[o], self.objs.order[o] as u32);
                            self.attach(obj, np, gfp, order);
                            self.take_hold(obj, ctx);
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
        if self.now_ns + dt_ns > MAX_NOW_NS {
            return Err(Error::Config(format!(
                "cannot advance time by {dt_ns} ns: the simulated clock would pass 2^63 ns (292 years)"
            )));
        }
        self.advance(dt_ns);
        Ok(())
    }

    /// The block an object holds now (pfn, order), if any.
    pub fn object_block(&self, obj: u32) -> Option<(u32, u32)> {
        let p = self.objs.pfn[self.objs.slot(obj)?];
        if p == NONE {
            None
        } else {
            Some((p, forder(self.flags[p as usize])))
        }
    }
}

/// The name of an op code, for messages.
pub fn op_name(op: u8) -> &'static str {
    match op {
        OP_ALLOC => "OP_ALLOC",
        OP_FREE => "OP_FREE",
        OP_TOUCH => "OP_TOUCH",
        OP_TICK => "OP_TICK",
        OP_SLAB_ALLOC => "OP_SLAB_ALLOC",
        OP_SLAB_FREE => "OP_SLAB_FREE",
        OP_SLAB_PIN => "OP_SLAB_PIN",
        _ => "unknown op",
    }
}
