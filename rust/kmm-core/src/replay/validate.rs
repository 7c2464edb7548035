//! Replay's validation: pass 1 checks each record on its own and turns its
//! object id into a slot (`mm::objects`), pass 2 checks the objects against
//! the machine's, and both are undone exactly when the trace will not run.

use super::*;

pub(super) fn no_memory(n: usize) -> Error {
    Error::Trace(format!(
        "not enough memory to replay a trace of {n} records"
    ))
}

/// What pass 1 of a replay changed in the id -> slot map, to undo on error.
/// Pass 1's verdict: the first record naming an id that holds no slot (with
/// its message), if any; or the interrupt poll said stop.
pub(super) enum Pass1 {
    Checked(Option<(usize, String)>),
    Interrupted,
}

/// The state bits validation flips for record `r` (its slot is `r.obj`):
/// recomputed from the record wherever a flip is undone, so no list of
/// flips is kept.
#[inline]
pub(super) fn flip_mask(r: &TraceOp) -> u8 {
    match r.op {
        OP_ALLOC | OP_FREE => OBJ_LIVE,
        OP_SLAB_ALLOC | OP_SLAB_FREE => OBJ_LIVE | OBJ_SLAB,
        _ => 0,
    }
}

#[derive(Default)]
pub(super) struct NewIds {
    /// The slot table's length before the trace.
    pub(super) old_len: usize,
    /// Ids given a slot by this trace, with the slot.
    pub(super) ids: Vec<(u32, u32)>,
    /// Free slots they took, in order.
    pub(super) popped: Vec<u32>,
}

impl Machine {
    /// Undo validation's state flips of records `ops`.
    pub(super) fn unflip(&mut self, ops: &[TraceOp]) {
        for r in ops {
            let mask = flip_mask(r);
            if mask != 0 {
                self.objs.state[r.obj as usize] ^= mask;
            }
        }
    }

    /// Forget the slots pass 1 gave out for a trace that will not run.
    pub(super) fn undo_new_ids(&mut self, new: NewIds) {
        let o = &mut self.objs;
        for &(id, _) in &new.ids {
            o.remove_slot(id);
        }
        for &s in new.popped.iter().rev() {
            o.slot_id[s as usize] = NONE;
            o.free_slots.push(s);
        }
        o.truncate(new.old_len);
    }

    /// Pass 1: the checks of each record on its own, and each object id
    /// turned into its slot (a new slot for an id the trace allocates).
    /// Stops at the first record naming an id that holds no slot (pass 2
    /// decides whether an earlier record fails first); `Err` for a bad record.
    pub(super) fn validate_records(
        &mut self,
        ops: &mut [TraceOp],
        new: &mut NewIds,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Pass1> {
        let max_objects = self.cfg.max_objects;
        let mut last_gfp: Option<u32> = None;
        // a mask is validated once per run of records that share it
        let check_mask = |i: usize, mask: u32, last: &mut Option<u32>| -> Result<()> {
            if *last != Some(mask) {
                gfp::validate(mask)
                    .map_err(|e| Error::Trace(format!("op {i}: {}", e.message())))?;
                *last = Some(mask);
            }
            Ok(())
        };
        // room for every id the trace may allocate, up front (one rehash at most)
        let allocs = ops
            .iter()
            .filter(|r| r.op == OP_ALLOC || r.op == OP_SLAB_ALLOC)
            .count();
        new.ids
            .try_reserve(allocs)
            .map_err(|_| no_memory(ops.len()))?;
        advise_huge(&new.ids);
        let mut now = self.now_ns;
        let mut fresh = self.objs.len();
        let mut miss = None;
        for i in 0..ops.len() {
            if i % POLL_EVERY == 0 && i > 0 && interrupted() {
                return Ok(Pass1::Interrupted);
            }
            let r = ops[i];
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
            match r.op {
                OP_ALLOC | OP_FREE | OP_TOUCH | OP_SLAB_ALLOC | OP_SLAB_FREE | OP_SLAB_PIN => {
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
                        check_mask(i, r.gfp, &mut last_gfp)?;
                        if r.gfp & (gfp::__GFP_DMA | gfp::__GFP_DMA32 | gfp::__GFP_HIGHMEM) != 0 {
                            return Err(Error::Trace(format!(
                                "op {i}: OP_SLAB_ALLOC mask {:#x} has a zone modifier (slab caches are lowmem)",
                                r.gfp
                            )));
                        }
                    }
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
                        check_mask(i, r.gfp, &mut last_gfp)?;
                    }
                    // the id's slot; an allocation gives a new id one
                    let o = &mut self.objs;
                    let slot = match o.slot(r.obj) {
                        Some(s) => s as u32,
                        None if r.op == OP_ALLOC || r.op == OP_SLAB_ALLOC => {
                            let s = match o.free_slots.pop() {
                                Some(s) => {
                                    new.popped.push(s);
                                    o.slot_id[s as usize] = r.obj;
                                    s
                                }
                                None => {
                                    fresh += 1;
                                    (fresh - 1) as u32
                                }
                            };
                            o.set_slot(r.obj, s).map_err(|_| no_memory(ops.len()))?;
                            new.ids.push((r.obj, s));
                            s
                        }
                        None => {
                            miss = Some((
                                i,
                                format!(
                                    "op {i}: {} of object {} that is not allocated (never allocated, or freed already)",
                                    op_name(r.op),
                                    r.obj
                                ),
                            ));
                            break;
                        }
                    };
                    ops[i].obj = slot;
                    if r.op == OP_SLAB_PIN {
                        match o.slot(r.gfp) {
                            Some(t) => ops[i].gfp = t as u32,
                            None => {
                                miss = Some((
                                    i,
                                    format!(
                                        "op {i}: OP_SLAB_PIN target {} is not an allocated slab object",
                                        r.gfp
                                    ),
                                ));
                                break;
                            }
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
                    now += r.obj as u64 * 1000;
                    if now > MAX_NOW_NS {
                        return Err(Error::Trace(format!(
                            "op {i}: OP_TICK takes the simulated clock past 2^63 ns (292 years)"
                        )));
                    }
                }
                o => {
                    return Err(Error::Trace(format!(
                        "op {i}: unknown op code {o} (OP_ALLOC=1, OP_FREE=2, OP_TOUCH=3, OP_TICK=4, OP_SLAB_ALLOC=5, OP_SLAB_FREE=6, OP_SLAB_PIN=7)"
                    )))
                }
            }
        }
        // the slots this trace needs; the table is as it was if they cannot be had
        let o = &mut self.objs;
        o.try_ensure(fresh).map_err(|_| no_memory(ops.len()))?;
        for &(id, s) in &new.ids {
            o.slot_id[s as usize] = id;
        }
        Ok(Pass1::Checked(miss))
    }

    /// Pass 2: object consistency against the machine's objects, records
    /// `0..miss` (the first record pass 1 found naming an unknown id, whose
    /// message is the error if nothing fails before it). State flips are
    /// kept (the engine reads them; [`flip_mask`] gives each record's);
    /// everything is undone on error. `false`: interrupted, nothing changed.
    pub(super) fn validate_objects(
        &mut self,
        ops: &[TraceOp],
        miss: Option<(usize, String)>,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<bool> {
        let end = miss.as_ref().map_or(ops.len(), |m| m.0);
        // records whose flips are in the state table
        let mut flipped = 0;
        let mut pins: Vec<(u32, u32, bool)> = Vec::new();
        let mut fail = None;
        let mut stop = false;
        for (i, r) in ops[..end].iter().enumerate() {
            flipped = i;
            if i % POLL_EVERY == 0 && i > 0 && interrupted() {
                stop = true;
                break;
            }
            if r.op == OP_TICK {
                continue;
            }
            let o = &mut self.objs;
            let st = o.state[r.obj as usize];
            let live = st & OBJ_LIVE != 0;
            let slab = st & OBJ_SLAB != 0;
            let name = op_name(r.op);
            match r.op {
                OP_ALLOC | OP_SLAB_ALLOC if live => {
                    fail = Some(format!(
                        "op {i}: {name} of object {} that is still allocated",
                        o.slot_id[r.obj as usize]
                    ));
                }
                OP_FREE | OP_TOUCH | OP_SLAB_FREE | OP_SLAB_PIN if !live => {
                    fail = Some(format!(
                        "op {i}: {name} of object {} that is not allocated (never allocated, or freed already)",
                        o.slot_id[r.obj as usize]
                    ));
                }
                OP_FREE | OP_SLAB_FREE if slab != (r.op == OP_SLAB_FREE) => {
                    fail = Some(format!(
                        "op {i}: {name} of object {}, which is {}",
                        o.slot_id[r.obj as usize],
                        if slab {
                            "a slab object (free it with OP_SLAB_FREE)"
                        } else {
                            "a block of pages (free it with OP_FREE)"
                        }
                    ));
                }
                OP_FREE | OP_SLAB_FREE if o.npins[r.obj as usize] > 0 => {
                    fail = Some(format!(
                        "op {i}: {name} of object {} that {} objects still pin (free them first)",
                        o.slot_id[r.obj as usize], o.npins[r.obj as usize]
                    ));
                }
                OP_SLAB_PIN => {
                    let (p, t) = (r.obj as usize, r.gfp as usize);
                    let ts = o.state[t];
                    let (pid, tid) = (o.slot_id[p], o.slot_id[t]);
                    fail = if ts & OBJ_LIVE == 0 || ts & OBJ_SLAB == 0 {
                        Some(format!(
                            "op {i}: OP_SLAB_PIN target {tid} is not an allocated slab object"
                        ))
                    } else if p == t || o.pin[p] != NONE || o.pin[t] != NONE || o.npins[p] != 0 {
                        Some(format!(
                            "op {i}: OP_SLAB_PIN of {pid} on {tid}: an object pins at most one other, and a pinned object pins nothing"
                        ))
                    } else {
                        o.pin[p] = t as u32;
                        o.npins[t] += 1;
                        pins.push((p as u32, t as u32, true));
                        None
                    };
                }
                OP_ALLOC | OP_FREE | OP_SLAB_ALLOC | OP_SLAB_FREE => {
                    o.state[r.obj as usize] ^= flip_mask(r);
                    let t = o.pin[r.obj as usize];
                    if (r.op == OP_FREE || r.op == OP_SLAB_FREE) && t != NONE {
                        o.pin[r.obj as usize] = NONE;
                        o.npins[t as usize] -= 1;
                        pins.push((r.obj, t, false));
                    }
                }
                _ => {}
            }
            if fail.is_some() {
                break;
            }
        }
        for &(p, t, set) in pins.iter().rev() {
            if set {
                self.objs.pin[p as usize] = NONE;
                self.objs.npins[t as usize] -= 1;
            } else {
                self.objs.pin[p as usize] = t;
                self.objs.npins[t as usize] += 1;
            }
        }
        if fail.is_none() && !stop {
            flipped = end;
            fail = miss.map(|m| m.1);
        }
        if fail.is_some() || stop {
            self.unflip(&ops[..flipped]);
        }
        match fail {
            Some(msg) => Err(Error::Trace(msg)),
            None => Ok(!stop),
        }
    }
}
