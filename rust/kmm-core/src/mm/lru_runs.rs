//! Runs of kept anonymous pages on an active list: what lets
//! `refill_inactive_zone` (`mm::vmscan`) pass them without visiting each.
//!
//! While 2.6.11's `reclaim_mapped` is off (`mapped_ratio / 2 + distress +
//! vm_swappiness < 100`, or there is no swap), the scan keeps every mapped
//! page on the active list untouched, its referenced bit and all: it only
//! turns the list. Under a load that fills memory with anonymous pages the
//! active list is mostly such pages, scanned in proportion to it at every
//! inactive page reclaimed, so each walks past the same ones again and
//! again (the default `kmm highalloc`, vanilla: 17.5 M active pages scanned
//! in 196 s, 17.2 M of them in the 16 s of attempts, for 161 k deactivated).
//!
//! When the scan has walked `MIN_RUN` or more consecutive mapped objects one
//! by one (keeping each), it records them as a run (of at most `MAX_RUN`:
//! a longer streak makes several) at the first (tailmost):
//! the headmost object, the objects and the pages. A later scan in the same
//! mode that meets a run's first object whose pages still fit what it has
//! left to scan passes the whole run at once: same objects kept in the same
//! order, same pages counted, nothing about them changed. A run stays valid
//! only while it is exactly a segment of the list:
//! * an object leaves the list only through `lru_del` or `deactivate`,
//!   which drop the run it is in (`forget`);
//! * objects join a list only at its head, never inside a segment, and the
//!   scan's splice moves a segment whole (`refill_scan`);
//! * an object visited one by one drops the run it was in before it may
//!   join a new one, so an object is in at most one valid run, the one its
//!   `run_of` names, and the scan's splice can only cut the list after a run
//!   or at an object visited one by one;
//! * a kept mapped object stays mapped, and its block's order, while it is
//!   on the list (migration moves the block, not the object or its order).
//!
//! A stale `run_of` (the run since dropped and another recorded at the same
//! object) only drops a run for nothing. `check` walks every valid run.

use super::machine::Machine;
use crate::NONE;

/// A run, kept at its first object: one cache line's quarter.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// the headmost object (NONE: no valid run starts here)
    end: u32,
    count: u32,
    pages: u64,
}

const NO_RUN: Run = Run {
    end: NONE,
    count: 0,
    pages: 0,
};

/// Runs shorter than this are walked (recording them costs a write an object).
pub(crate) const MIN_RUN: u32 = 8;
/// A longer streak is recorded as several runs: a page freed from the
/// middle of a run drops the whole run, so long ones would rarely survive
/// from one pass of the list to the next.
pub(crate) const MAX_RUN: u32 = 64;

/// Per object slot: the run it was last recorded in, and, at a run's first
/// object, the run (`end` NONE: no valid run starts here).
#[derive(Debug, Clone, Default)]
pub(crate) struct LruRuns {
    run_of: Vec<u32>,
    at: Vec<Run>,
    /// Runs passed whole (the tests' evidence that they were).
    #[cfg(test)]
    pub(crate) passed: u64,
}

impl LruRuns {
    /// Room for `n` object slots (grown with the object table, never per operation).
    #[inline]
    pub(crate) fn fit(&mut self, n: usize) {
        if self.run_of.len() < n {
            let n = n.max(2 * self.run_of.len());
            self.run_of.resize(n, NONE);
            self.at.resize(n, NO_RUN);
        }
    }

    /// Object `obj` leaves its list or is visited one by one: the run it is
    /// in is no longer a run.
    #[inline]
    pub(crate) fn forget(&mut self, obj: u32) {
        if let Some(&s) = self.run_of.get(obj as usize) {
            if s != NONE {
                self.at[s as usize].end = NONE;
            }
        }
    }

    /// The valid run starting at `obj`: (headmost object, objects, pages).
    #[inline]
    pub(crate) fn at(&self, obj: u32) -> Option<(u32, u32, u64)> {
        let r = *self.at.get(obj as usize)?;
        (r.end != NONE).then_some((r.end, r.count, r.pages))
    }

    /// `obj` joins the run being recorded from `start`.
    #[inline]
    pub(crate) fn join(&mut self, obj: u32, start: u32) {
        self.run_of[obj as usize] = start;
    }

    /// Record the run `start ..= end` (tail to head) if long enough.
    #[inline]
    pub(crate) fn record(&mut self, start: u32, end: u32, count: u32, pages: u64) {
        if start != NONE && count >= MIN_RUN {
            self.at[start as usize] = Run { end, count, pages };
        }
    }
}

impl Machine {
    /// Every valid run is a segment of an active list of mapped objects,
    /// tail to head, of the objects and pages it says.
    pub(crate) fn check_lru_runs(&self) -> Result<(), String> {
        for (zi, z) in self.zones.iter().enumerate() {
            let mut x = z.active.tail;
            while x != NONE {
                if let Some((end, count, pages)) = self.lru_runs.at(x) {
                    let (mut y, mut k, mut p) = (x, 0u32, 0u64);
                    loop {
                        if y == NONE || !self.obj_mapped(y) || self.lru_runs.run_of[y as usize] != x
                        {
                            return Err(format!(
                                "zone {zi}: run at object {x} is not a run of its list"
                            ));
                        }
                        k += 1;
                        p += self.obj_pages(y);
                        if y == end {
                            break;
                        }
                        y = self.objs.lru_prev[y as usize];
                    }
                    if (k, p) != (count, pages) {
                        return Err(format!("zone {zi}: run at object {x}: {k} objects {p} pages, recorded {count} {pages}"));
                    }
                }
                x = self.objs.lru_prev[x as usize];
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Layout, MachineConfig};
    use crate::gfp::GFP_HIGHUSER;
    use crate::mm::machine::Machine;
    use crate::replay::{TraceOp, OP_ALLOC, OP_FREE, OP_TOUCH, TF_TASK};

    fn small(swap: bool) -> Machine {
        let mut cfg = MachineConfig::new(Layout::X86_32, 64 << 20);
        cfg.pcp = false;
        cfg.swap = swap;
        Machine::new(cfg).unwrap()
    }

    fn alloc(obj: u32, owned: bool, order: u8) -> TraceOp {
        TraceOp {
            op: OP_ALLOC,
            obj,
            order,
            gfp: GFP_HIGHUSER,
            flags: if owned { TF_TASK } else { 0 },
            pid: 9,
            tgid: 9,
            ..TraceOp::default()
        }
    }

    fn op(op: u8, obj: u32) -> TraceOp {
        TraceOp {
            op,
            obj,
            ..TraceOp::default()
        }
    }
    /// The old one-object-at-a-time rotation (`list_del` + `list_add` of
    /// every kept object), written as 2.6.11's loop: the reference the
    /// spliced scan is checked against.
    fn refill_by_rotation(m: &mut Machine, zi: usize, nr: u64, reclaim_mapped: bool) {
        use crate::mm::objects::OBJ_REF;
        use crate::mm::page::{list_add, list_del};
        let mut done = 0u64;
        while done < nr {
            let obj = m.zones[zi].active.tail;
            if obj == crate::NONE {
                break;
            }
            let pages = m.obj_pages(obj);
            done += pages;
            m.counters.pgrefill += pages;
            let o = obj as usize;
            let keep = if m.obj_mapped(obj) && !(reclaim_mapped && m.cfg.swap) {
                true
            } else if m.objs.state[o] & OBJ_REF != 0 {
                m.objs.state[o] &= !OBJ_REF;
                true
            } else {
                false
            };
            if keep {
                let z = &mut m.zones[zi];
                list_del(
                    &mut m.objs.lru_next,
                    &mut m.objs.lru_prev,
                    &mut z.active,
                    obj,
                );
                list_add(
                    &mut m.objs.lru_next,
                    &mut m.objs.lru_prev,
                    &mut z.active,
                    obj,
                );
            } else {
                m.deactivate(zi, obj);
            }
        }
    }

    /// Both lists head to tail, checked against their tail-to-head links.
    fn lists(m: &Machine, zi: usize) -> (Vec<u32>, Vec<u32>) {
        let walk = |l: &crate::mm::page::ListHead| {
            let (mut v, mut x) = (Vec::new(), l.head);
            while x != crate::NONE {
                v.push(x);
                x = m.objs.lru_next[x as usize];
            }
            let (mut back, mut x) = (Vec::new(), l.tail);
            while x != crate::NONE {
                back.push(x);
                x = m.objs.lru_prev[x as usize];
            }
            back.reverse();
            assert_eq!(v, back, "links disagree");
            assert_eq!(v.len(), l.nr as usize);
            v
        };
        (walk(&m.zones[zi].active), walk(&m.zones[zi].inactive))
    }

    /// The spliced scan (`refill_scan`), passing recorded runs whole, leaves the lists, the objects' bits
    /// and the counters exactly as rotating one object at a time does: random
    /// mixes of anonymous and page-cache objects of orders 0-2, referenced or
    /// not, scans of random lengths (wrapping the list several times) and
    /// `shrink_zone`'s refill-until-one-moves, with and without swap and
    /// `reclaim_mapped`.
    #[test]
    fn refill_scan_is_the_rotation() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move |k: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % k
        };
        let mut passed = 0u64;
        for _case in 0..400 {
            let swap = rnd(2) == 0;
            let mut m = small(swap);
            let n = 1 + rnd(120) as u32;
            let anon = 1 + rnd(10); // in 10: how many objects are anonymous
            let mut live = vec![true; n as usize];
            let mut ops: Vec<TraceOp> = (0..n)
                .map(|o| alloc(o, rnd(10) < anon, rnd(3) as u8))
                .collect();
            for o in 0..n {
                ops.extend((0..rnd(4)).map(|_| op(OP_TOUCH, o)));
            }
            m.replay_ops(&ops, false).unwrap();
            let (pfn, _) = m.object_block(0).unwrap();
            let zi = m.zone_of_pfn(pfn as u64);
            for _step in 0..12 {
                let mut r = m.clone();
                let reclaim_mapped = rnd(2) == 0;
                let active_pages = m.zones[zi].active_pages;
                if rnd(3) == 0 && m.zones[zi].inactive.nr == 0 {
                    let tries = 2 * m.zones[zi].active.nr as u64;
                    let mut t = tries;
                    while r.zones[zi].inactive.nr == 0 && t > 0 {
                        refill_by_rotation(&mut r, zi, 1, reclaim_mapped);
                        t -= 1;
                    }
                    m.refill_until_one_moves(zi, tries, reclaim_mapped);
                } else {
                    let nr = 1 + rnd(3 * active_pages + 2);
                    refill_by_rotation(&mut r, zi, nr, reclaim_mapped);
                    m.refill_inactive_zone(zi, nr, reclaim_mapped);
                }
                assert_eq!(lists(&m, zi), lists(&r, zi));
                assert_eq!(m.objs.state, r.objs.state);
                assert_eq!(m.counters.pgrefill, r.counters.pgrefill);
                assert_eq!(m.counters.pgdeactivate, r.counters.pgdeactivate);
                assert_eq!(m.zones[zi].active_pages, r.zones[zi].active_pages);
                m.check().unwrap(); // with every recorded run (`check_lru_runs`)
                                    // between scans: touches set bits again, frees take objects
                                    // out of the middle of runs, allocations join the heads
                let mut between = Vec::new();
                for _ in 0..rnd(6) {
                    let o = rnd(n as u64) as u32;
                    match (live[o as usize], rnd(3)) {
                        (true, 0) => {
                            between.push(op(OP_FREE, o));
                            live[o as usize] = false;
                        }
                        (true, _) => between.push(op(OP_TOUCH, o)),
                        (false, _) => {
                            between.push(alloc(o, rnd(10) < anon, rnd(3) as u8));
                            live[o as usize] = true;
                        }
                    }
                }
                m.replay_ops(&between, false).unwrap();
                passed += m.lru_runs.passed;
                m.lru_runs.passed = 0;
            }
        }
        // the scans above must have passed runs whole, or the test tests nothing
        assert!(passed > 100, "runs passed whole: {passed}");
    }
}
