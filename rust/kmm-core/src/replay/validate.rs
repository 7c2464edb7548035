//! Replay's validation: one pass over the caller's records, each copied
//! once into the engine's own buffer (`program`) and checked there, on its
//! own and against what the trace has done to its objects so far. It changes
//! nothing in the machine: what it knows of the trace's ids is in
//! `Objects::view` (an epoch of its own each replay), the engine's id -> slot
//! map changes only as records run. It also reserves, before anything runs,
//! every slot and map entry the trace will need, so running never allocates
//! and never fails.

use super::program::{Program, Rec};
use super::*;
use crate::mm::objects::{prefetch, V_LIVE, V_PINS, V_SEEN, V_SLAB};

/// Records ahead whose objects validation and running prefetch.
pub(super) const AHEAD: usize = 16;

/// Records copied from the caller's buffer at once: 24 KiB, checked while
/// they are still in the first-level cache.
const COPY_BLOCK: usize = 1024;

pub(super) fn no_memory(n: usize) -> Error {
    Error::Trace(format!(
        "not enough memory to replay a trace of {n} records"
    ))
}

/// A trace validated against a machine, ready to run on it
/// ([`Machine::check_trace`], [`Checked::run`]). Dropped without running,
/// it leaves the machine as it was.
pub struct Checked<'m> {
    pub(super) m: &'m mut Machine,
    pub(super) prog: Program,
    pub(super) n: usize,
    pub(super) outcomes: Option<Vec<i64>>,
}

impl Drop for Checked<'_> {
    fn drop(&mut self) {
        let view = &mut self.m.objs.view;
        view.end();
        std::mem::take(&mut self.prog).give_back(view);
    }
}

/// What the trace needs of the machine, counted as validation goes.
struct Tally {
    /// Ids allocated at this point of the trace: the slot table needs the peak.
    live: usize,
    peak: usize,
    /// One past the largest direct-table id allocated.
    dense_end: usize,
    /// Allocations of ids beyond the direct table.
    sparse_allocs: usize,
}

/// The view state an id goes to, by op code (times 16) and state before, for the
/// records without pins (`V_PINS` clear) that are valid:
/// [`BAD`] for every other (the slow path then says which error it is, or
/// does the pin bookkeeping).
const NEXT: [u8; 128] = {
    let mut t = [BAD; 128];
    let (free, live, slab) = (V_SEEN, V_SEEN | V_LIVE, V_SEEN | V_LIVE | V_SLAB);
    t[(OP_ALLOC as usize) << 4 | free as usize] = live;
    t[(OP_SLAB_ALLOC as usize) << 4 | free as usize] = slab;
    t[(OP_FREE as usize) << 4 | live as usize] = free;
    t[(OP_SLAB_FREE as usize) << 4 | slab as usize] = free;
    t[(OP_TOUCH as usize) << 4 | live as usize] = live;
    t[(OP_TOUCH as usize) << 4 | slab as usize] = slab;
    t
};
const BAD: u8 = 0xFF;

/// The `TF_*` flags each op may carry, by op code.
const ALLOWED_FLAGS: [u8; 8] = {
    let mut a = [0; 8];
    a[OP_ALLOC as usize] = TF_TASK | TF_UNEVICTABLE;
    a[OP_SLAB_ALLOC as usize] = TF_TASK;
    a
};

const ZONE_MODIFIERS: u32 = gfp::__GFP_DMA | gfp::__GFP_DMA32 | gfp::__GFP_HIGHMEM;

/// What validation has found good so far: masks (a few distinct ones in any
/// real trace, direct-mapped by a hash of the mask), the last stack handle
/// checked, and the clock the ticks so far reach.
struct Seen {
    /// Each entry a mask found valid, or a value that hashes to another
    /// entry (so it is not in this one: no mask is known before it is checked).
    masks: [u32; 16],
    stack: u32,
    now: u64,
}

impl Seen {
    fn new(now: u64) -> Seen {
        let mut masks = [0; 16];
        for (j, m) in masks.iter_mut().enumerate() {
            *m = (0..).find(|&x| Self::slot(x) != j).unwrap();
        }
        Seen {
            masks,
            stack: 0,
            now,
        }
    }

    #[inline(always)]
    fn slot(mask: u32) -> usize {
        (mask.wrapping_mul(0x9E37_79B9) >> 28) as usize
    }

    /// Whether `mask` was found valid already.
    #[inline(always)]
    fn known(&self, mask: u32) -> bool {
        self.masks[Self::slot(mask)] == mask
    }

    fn check_mask(&mut self, i: usize, mask: u32) -> Result<()> {
        if !self.known(mask) {
            gfp::validate(mask).map_err(|e| Error::Trace(format!("op {i}: {}", e.message())))?;
            self.masks[Self::slot(mask)] = mask;
        }
        Ok(())
    }
}

/// What the fast test of a record alone needs to know of its op code.
#[derive(Clone, Copy)]
struct OpRule {
    /// An op the fast test takes (OP_TICK, OP_SLAB_PIN and unknown codes
    /// always go the slow way).
    fast: bool,
    /// The `TF_*` flags it may carry.
    flags: u8,
    /// Its `order` is below this (a page order, a slab cache), or anything.
    order_end: u16,
    /// Its `gfp` is a mask, which must be valid.
    mask: bool,
    /// ... and without a zone modifier (a slab allocation).
    lowmem: bool,
}

/// [`OpRule`] by op code (all 256: an index by a `u8` needs no bounds test).
const RULES: [OpRule; 256] = {
    let none = OpRule {
        fast: false,
        flags: 0,
        order_end: 256,
        mask: false,
        lowmem: false,
    };
    let mut t = [none; 256];
    let any = OpRule { fast: true, ..none };
    t[OP_FREE as usize] = any;
    t[OP_SLAB_FREE as usize] = any;
    t[OP_TOUCH as usize] = any;
    t[OP_ALLOC as usize] = OpRule {
        flags: ALLOWED_FLAGS[OP_ALLOC as usize],
        order_end: MAX_ORDER as u16,
        mask: true,
        ..any
    };
    t[OP_SLAB_ALLOC as usize] = OpRule {
        flags: ALLOWED_FLAGS[OP_SLAB_ALLOC as usize],
        order_end: NR_CACHES as u16,
        mask: true,
        lowmem: true,
        ..any
    };
    t
};

impl Machine {
    /// The trace's view of id `id`: its own if the trace named it already,
    /// else the machine's (an id holding a slot is allocated).
    #[inline(always)]
    fn view_of(&mut self, id: u32) -> Result<u8> {
        let v = self.objs.view.get(id);
        if v != 0 {
            return Ok(v);
        }
        if self.objs.slot(id).is_none() {
            // not allocated in the machine: the common case of a new id
            return Ok(V_SEEN);
        }
        self.machine_view(id)
    }

    /// [`Machine::view_of`] for an id the trace has not named yet.
    #[inline(never)]
    fn machine_view(&mut self, id: u32) -> Result<u8> {
        let o = &mut self.objs;
        let Some(s) = o.slot(id) else {
            return Ok(V_SEEN);
        };
        let mut v = V_SEEN | V_LIVE;
        if o.state[s] & OBJ_SLAB != 0 {
            v |= V_SLAB;
        }
        let (p, np) = (o.pin[s], o.npins[s]);
        if p != NONE || np != 0 {
            let target = if p != NONE {
                o.slot_id[p as usize]
            } else {
                NONE
            };
            // the map, once it holds the id, is the trace's word on its pins
            // (a pinner's free may have changed them without a record naming it)
            o.view.pins.try_reserve(1).map_err(|_| no_memory(1))?;
            o.view.pins.entry(id).or_insert((target, np));
            v |= V_PINS;
        }
        Ok(v)
    }

    /// (the id `id` pins or NONE, how many ids pin it), in the trace's view.
    #[inline]
    fn pins_of(&self, id: u32, v: u8) -> (u32, u32) {
        if v & V_PINS == 0 {
            return (NONE, 0);
        }
        self.objs.view.pins.get(&id).copied().unwrap_or((NONE, 0))
    }

    /// Validate raw trace bytes (a multiple of 24) against this machine:
    /// every record checked, in order, the first bad one an `Err`; `None`
    /// when `interrupted` (called every [`POLL_EVERY`] records) said stop.
    /// Either way nothing has changed. `want_outcomes`: room for the run's
    /// outcomes is taken now.
    pub fn check_trace<'m>(
        &'m mut self,
        bytes: &[u8],
        want_outcomes: bool,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Option<Checked<'m>>> {
        if bytes.len() % TRACE_RECORD_SIZE != 0 {
            return Err(Error::Trace(format!(
                "trace is {} bytes, not a multiple of the {TRACE_RECORD_SIZE}-byte record",
                bytes.len()
            )));
        }
        let n = bytes.len() / TRACE_RECORD_SIZE;
        let mut prog = Program::reusing(&mut self.objs.view);
        prog.reserve(n).map_err(|_| no_memory(n))?;
        let outcomes = if want_outcomes {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| no_memory(n))?;
            Some(v)
        } else {
            None
        };
        self.objs.view.begin();
        let checked = self.check_records(bytes, &mut prog, interrupted);
        if let Ok(true) = checked {
            prog.pad();
            return Ok(Some(Checked {
                m: self,
                prog,
                n,
                outcomes,
            }));
        }
        let view = &mut self.objs.view;
        view.end();
        prog.give_back(view);
        checked.map(|_| None)
    }

    /// The checks of record `i` on its own, one by one, each with its
    /// message: the slow path of [`Machine::check_records`], taken by any
    /// record its fast test does not pass (a tick, a mask or stack not seen
    /// yet, or a bad record). `Ok(true)`: a tick, which has nothing more to check.
    #[cold]
    #[inline(never)]
    fn check_alone(&self, i: usize, r: &TraceOp, st: &mut Seen) -> Result<bool> {
        let max_objects = self.cfg.max_objects;
        if r.flags & !(TF_TASK | TF_UNEVICTABLE) != 0
            || (r.flags != 0 && r.op != OP_ALLOC && r.op != OP_SLAB_ALLOC)
            || (r.flags & TF_UNEVICTABLE != 0 && r.op != OP_ALLOC)
        {
            return Err(Error::Trace(format!(
                "op {i}: flags {:#x}: only TF_TASK (1), on OP_ALLOC or OP_SLAB_ALLOC, \
                 and TF_UNEVICTABLE (2), on OP_ALLOC",
                r.flags
            )));
        }
        if r.op == OP_TICK {
            if r.obj > MAX_TICK_US {
                return Err(Error::Trace(format!(
                    "op {i}: OP_TICK of {} us is absurd (at most {MAX_TICK_US} us, one hour)",
                    r.obj
                )));
            }
            st.now += r.obj as u64 * 1000;
            if st.now > MAX_NOW_NS {
                return Err(Error::Trace(format!(
                    "op {i}: OP_TICK takes the simulated clock past 2^63 ns (292 years)"
                )));
            }
            return Ok(true);
        }
        if !matches!(
            r.op,
            OP_ALLOC | OP_FREE | OP_TOUCH | OP_SLAB_ALLOC | OP_SLAB_FREE | OP_SLAB_PIN
        ) {
            return Err(Error::Trace(format!(
                "op {i}: unknown op code {} (OP_ALLOC=1, OP_FREE=2, OP_TOUCH=3, OP_TICK=4, OP_SLAB_ALLOC=5, OP_SLAB_FREE=6, OP_SLAB_PIN=7)",
                r.op
            )));
        }
        if r.obj >= max_objects {
            return Err(Error::Trace(format!(
                "op {i}: object id {} is beyond the declared range (max_objects = {max_objects})",
                r.obj
            )));
        }
        if r.op == OP_SLAB_PIN && r.gfp >= max_objects {
            return Err(Error::Trace(format!(
                "op {i}: OP_SLAB_PIN target {} is beyond the declared range (max_objects = {max_objects})",
                r.gfp
            )));
        }
        if r.op == OP_SLAB_ALLOC {
            if r.order as usize >= NR_CACHES {
                return Err(Error::Trace(format!(
                    "op {i}: slab cache {} does not exist (caches 0..{})",
                    r.order,
                    NR_CACHES - 1
                )));
            }
            st.check_mask(i, r.gfp)?;
            if r.gfp & ZONE_MODIFIERS != 0 {
                return Err(Error::Trace(format!(
                    "op {i}: OP_SLAB_ALLOC mask {:#x} has a zone modifier (slab caches are lowmem)",
                    r.gfp
                )));
            }
        }
        // traces are portable: stacks are ignored on a machine without page_owner
        if r.stack != 0 && self.owner.is_some() {
            if self.validate_stack(r.stack).is_err() {
                return Err(Error::Trace(format!(
                    "op {i}: stack handle {:#x} is not in this machine's stack depot",
                    r.stack
                )));
            }
            st.stack = r.stack;
        }
        if r.op == OP_ALLOC {
            if r.order as usize >= MAX_ORDER {
                return Err(Error::Trace(format!(
                    "op {i}: order {} is out of range 0..{}",
                    r.order,
                    MAX_ORDER - 1
                )));
            }
            st.check_mask(i, r.gfp)?;
        }
        Ok(false)
    }

    /// The validation pass proper ([`Machine::check_trace`]): the caller's
    /// records are copied to `prog` a block at a time and checked there.
    /// `false`: interrupted.
    fn check_records(
        &mut self,
        bytes: &[u8],
        prog: &mut Program,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<bool> {
        let n = bytes.len() / TRACE_RECORD_SIZE;
        let mut st = Seen::new(self.now_ns);
        let live = self.objs.len() - self.objs.free_slots.len();
        let mut t = Tally {
            live,
            peak: live,
            dense_end: 0,
            sparse_allocs: 0,
        };
        let mut start = 0;
        while start < n {
            if start > 0 && interrupted() {
                return Ok(false);
            }
            let end = (start + POLL_EVERY).min(n);
            let mut b = start;
            while b < end {
                let e = (b + COPY_BLOCK).min(end);
                // copied [`AHEAD`] records past the block, for the prefetches
                let want = (e + AHEAD).min(n);
                let have = prog.recs.len();
                if want > have {
                    prog.append(&bytes[have * TRACE_RECORD_SIZE..want * TRACE_RECORD_SIZE]);
                }
                self.check_block(&prog.recs, b, e, n, &mut st, &mut t)?;
                b = e;
            }
            start = end;
        }
        // what running the trace will need, taken now: running cannot fail
        let o = &mut self.objs;
        o.try_reserve_slots(t.peak.saturating_sub(o.len()))
            .map_err(|_| no_memory(n))?;
        o.try_reserve_ids(t.dense_end, t.sparse_allocs)
            .map_err(|_| no_memory(n))?;
        Ok(true)
    }

    /// Check records `b..e` of the copy `recs`, in order, against the view.
    /// A record passes the fast way (a few tests without branches between
    /// them, and a table for its object's state) or goes to the slow
    /// functions, which check everything one by one and say what is wrong.
    #[inline(always)]
    fn check_block(
        &mut self,
        recs: &[Rec],
        b: usize,
        e: usize,
        n: usize,
        st: &mut Seen,
        t: &mut Tally,
    ) -> Result<()> {
        // ids the fast way takes: below the declared range and direct
        let id_end = self.cfg.max_objects.min(DENSE_IDS);
        let any_stack = self.owner.is_none();
        let (mut live, mut peak, mut dense_end) = (t.live, t.peak, t.dense_end);
        for (i, r) in (b..e).zip(&recs[b..e]) {
            // what the records ahead will read of their objects, on its way
            // from memory meanwhile (a trace naming many live objects at
            // random waits for each in turn otherwise)
            if let Some(a) = recs.get(i + AHEAD) {
                let id = a.obj as usize;
                prefetch(&self.objs.view.dense, id);
                prefetch(&self.objs.dense, id);
                // SAFETY: record `i + AHEAD` is in `recs`, so `i + AHEAD / 2` is
                let s = unsafe { recs.get_unchecked(i + AHEAD / 2) }.obj as usize;
                if let Some(&s @ 1..) = self.objs.dense.get(s) {
                    let s = s as usize - 1;
                    prefetch(&self.objs.state, s);
                    prefetch(&self.objs.pin, s);
                    prefetch(&self.objs.npins, s);
                }
            }
            // the checks of the record alone, at once: what a record of a
            // valid trace passes unless its mask or stack is new
            let k = RULES[r.op as usize];
            let fast = k.fast
                & (r.flags & !k.flags == 0)
                & (r.obj < id_end)
                & ((r.order as u16) < k.order_end)
                & (!k.mask | st.known(r.gfp))
                & (!k.lowmem | (r.gfp & ZONE_MODIFIERS == 0))
                & ((r.stack == 0) | (r.stack == st.stack) | any_stack);
            let id = r.obj;
            let nv = if fast {
                let v = self.view_of(id)?;
                let nv = NEXT[(r.op as usize & 7) << 4 | (v as usize & 15)];
                if nv != BAD {
                    // counted without a branch on the op
                    let was = (v & V_LIVE != 0) as usize;
                    let is = (nv & V_LIVE != 0) as usize;
                    live = live + is - was;
                    peak = peak.max(live);
                    // every direct id a record names: an id freed or touched
                    // is allocated, so the map reaches it already or will
                    dense_end = dense_end.max(id as usize + 1);
                }
                nv
            } else {
                BAD
            };
            if nv == BAD {
                (t.live, t.peak, t.dense_end) = (live, peak, dense_end);
                self.check_slow(i, r, n, st, t)?;
                (live, peak, dense_end) = (t.live, t.peak, t.dense_end);
                continue;
            }
            self.objs.view.set(id, nv).map_err(|_| no_memory(n))?;
        }
        (t.live, t.peak, t.dense_end) = (live, peak, dense_end);
        Ok(())
    }

    /// Record `i` the slow way: [`Machine::check_alone`], then
    /// [`Machine::check_object_slow`].
    #[cold]
    #[inline(never)]
    fn check_slow(
        &mut self,
        i: usize,
        r: &TraceOp,
        n: usize,
        st: &mut Seen,
        t: &mut Tally,
    ) -> Result<()> {
        if self.check_alone(i, r, st)? {
            return Ok(()); // a tick
        }
        let v = self.view_of(r.obj)?;
        self.check_object_slow(i, r, v, n, t)
    }

    /// The object checks of record `i`, whose object is in state `v`, one by
    /// one (the fast way in [`Machine::check_block`] has no answer: an
    /// error, a pin (OP_SLAB_PIN), an object that pins or is pinned, an id
    /// beyond the direct table, a record with a new mask or stack).
    #[cold]
    #[inline(never)]
    fn check_object_slow(
        &mut self,
        i: usize,
        r: &TraceOp,
        v: u8,
        n: usize,
        t: &mut Tally,
    ) -> Result<()> {
        let id = r.obj;
        let live_now = v & V_LIVE != 0;
        let not_allocated = |i: usize, op: u8, id: u32| {
            Error::Trace(format!(
                "op {i}: {} of object {id} that is not allocated (never allocated, or freed already)",
                op_name(op)
            ))
        };
        let v_after = match r.op {
            OP_ALLOC | OP_SLAB_ALLOC => {
                if live_now {
                    return Err(Error::Trace(format!(
                        "op {i}: {} of object {id} that is still allocated",
                        op_name(r.op)
                    )));
                }
                t.live += 1;
                t.peak = t.peak.max(t.live);
                if id < DENSE_IDS {
                    t.dense_end = t.dense_end.max(id as usize + 1);
                } else {
                    t.sparse_allocs += 1;
                }
                let slab = if r.op == OP_SLAB_ALLOC { V_SLAB } else { 0 };
                V_SEEN | V_LIVE | slab | (v & V_PINS)
            }
            OP_FREE | OP_SLAB_FREE => {
                if !live_now {
                    return Err(not_allocated(i, r.op, id));
                }
                let slab = v & V_SLAB != 0;
                if slab != (r.op == OP_SLAB_FREE) {
                    return Err(Error::Trace(format!(
                        "op {i}: {} of object {id}, which is {}",
                        op_name(r.op),
                        if slab {
                            "a slab object (free it with OP_SLAB_FREE)"
                        } else {
                            "a block of pages (free it with OP_FREE)"
                        }
                    )));
                }
                let (pin, np) = self.pins_of(id, v);
                if np > 0 {
                    return Err(Error::Trace(format!(
                        "op {i}: {} of object {id} that {np} objects still pin (free them first)",
                        op_name(r.op)
                    )));
                }
                if pin != NONE {
                    // the target's links are in the map (see `view_of`)
                    self.view_of(pin)?;
                    let pins = &mut self.objs.view.pins;
                    if let Some(t) = pins.get_mut(&pin) {
                        t.1 -= 1;
                    }
                    pins.insert(id, (NONE, 0));
                }
                t.live -= 1;
                V_SEEN | (v & V_PINS)
            }
            OP_TOUCH => {
                if !live_now {
                    return Err(not_allocated(i, r.op, id));
                }
                v
            }
            _ => {
                // OP_SLAB_PIN: `id` pins slab object `r.gfp`
                if !live_now {
                    return Err(not_allocated(i, r.op, id));
                }
                let tg = r.gfp;
                let vt = self.view_of(tg)?;
                if vt & V_LIVE == 0 || vt & V_SLAB == 0 {
                    return Err(Error::Trace(format!(
                        "op {i}: OP_SLAB_PIN target {tg} is not an allocated slab object"
                    )));
                }
                let (pp, pn) = self.pins_of(id, v);
                let (tp, _) = self.pins_of(tg, vt);
                if id == tg || pp != NONE || tp != NONE || pn != 0 {
                    return Err(Error::Trace(format!(
                        "op {i}: OP_SLAB_PIN of {id} on {tg}: an object pins at most one other, and a pinned object pins nothing"
                    )));
                }
                let pins = &mut self.objs.view.pins;
                pins.try_reserve(2).map_err(|_| no_memory(n))?;
                pins.insert(id, (tg, pn));
                let tn = pins.get(&tg).map_or(0, |e| e.1);
                pins.insert(tg, (NONE, tn + 1));
                let view = &mut self.objs.view;
                view.set(tg, vt | V_PINS).map_err(|_| no_memory(n))?;
                view.set(id, v | V_PINS).map_err(|_| no_memory(n))?;
                return Ok(());
            }
        };
        if v_after != v {
            self.objs.view.set(id, v_after).map_err(|_| no_memory(n))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Layout, MachineConfig};
    use crate::mm::objects::LAST_EPOCH;

    fn rec(op: u8, obj: u32) -> TraceOp {
        TraceOp {
            op,
            obj,
            gfp: if op == OP_ALLOC { gfp::GFP_KERNEL } else { 0 },
            ..TraceOp::default()
        }
    }

    fn machine() -> Machine {
        Machine::new(MachineConfig::new(Layout::X86_32, 32 << 20)).unwrap()
    }

    /// What one replay's view says is gone in the next, across the epochs'
    /// wrap-around (when the table is cleared instead).
    #[test]
    fn view_entries_last_one_replay_across_the_wrap() {
        let mut v = crate::mm::objects::TraceView::default();
        for k in 0..2 * LAST_EPOCH as u32 + 5 {
            v.begin();
            assert_eq!(v.get(3), 0, "replay {k}");
            assert_eq!(v.get(10 + k % 5000), 0, "replay {k}");
            v.set(3, V_SEEN | V_LIVE).unwrap();
            v.set(10 + k % 5000, V_SEEN).unwrap();
            assert_eq!(v.get(3), V_SEEN | V_LIVE);
            v.end();
        }
    }

    /// A refused or interrupted trace leaves nothing the next one sees, and
    /// many replays (past the epochs' wrap) validate as the first did.
    #[test]
    fn a_refused_or_interrupted_trace_leaves_no_view() {
        let mut m = machine();
        // refused at its second record: object 7 is not allocated after it
        let e = m.replay_ops(&[rec(OP_ALLOC, 7), rec(OP_ALLOC, 7)], false);
        assert!(e.unwrap_err().to_string().contains("op 1"));
        let e = m.replay_ops(&[rec(OP_FREE, 7)], false).unwrap_err();
        assert!(e.to_string().contains("not allocated"), "{e}");
        // interrupted while validating
        let ops: Vec<_> = (0..POLL_EVERY as u32 + 1)
            .map(|i| rec(OP_ALLOC, i))
            .collect();
        let bytes = TraceOp::to_bytes(&ops);
        assert!(m.check_trace(&bytes, false, &|| true).unwrap().is_none());
        assert!(m.replay_ops(&[rec(OP_FREE, 0)], false).is_err());
        // checked and dropped without running
        drop(m.check_trace(&bytes, false, &|| false).unwrap().unwrap());
        assert!(m.replay_ops(&[rec(OP_FREE, 0)], false).is_err());
        m.check().unwrap();
        // object k % 3 allocated in one replay and freed in the next
        for k in 0..LAST_EPOCH as u32 + 10 {
            let id = k / 2 % 3;
            let op = if k % 2 == 0 { OP_ALLOC } else { OP_FREE };
            m.replay_ops(&[rec(op, id)], false).unwrap();
            let again = m.replay_ops(&[rec(op, id)], false);
            assert!(again.is_err(), "replay {k}: the same op twice");
        }
        m.check().unwrap();
    }
}
