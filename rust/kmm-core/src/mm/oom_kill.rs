//! The OOM killer (the kernel's `mm/oom_kill.c` of 2.6.11): when an allocation
//! that may not fail finds nothing to reclaim, `out_of_memory` kills the task
//! holding the most memory (`badness`: the task's own pages), frees what
//! belongs to it, and the allocation starts again. Task identity comes from
//! the trace: an object allocated with `TF_TASK` belongs to its `tgid`
//! (anonymous memory, page tables, kernel stack, task slab objects); page
//! cache and the dentry/inode caches belong to no task and stay. The killed
//! task's remaining trace work (allocations, faults) is dropped; its frees
//! find nothing and are counted as no-ops, as for any object without a block.

use super::machine::Machine;
use super::objects::{OBJ_IS_SLAB, OBJ_RECLAIMED};
use super::page::{forder, F_LRU, F_OBJ};
use crate::replay::{TraceOp, OP_SLAB_ALLOC, OP_TOUCH};
use crate::NONE;
use std::collections::HashMap;

/// Tasks the OOM killer never picks: the kernel (tgid 0) and init (1).
const UNKILLABLE: [u32; 2] = [0, 1];

impl Machine {
    /// `out_of_memory`: kill the task of the load holding the most pages
    /// (ties: the lowest tgid) and free its memory. False when there is no
    /// task left to kill.
    pub(crate) fn out_of_memory(&mut self) -> bool {
        let mut size: HashMap<u32, u64> = HashMap::new();
        for o in 0..self.objs.len() {
            let t = self.objs.owner[o];
            let p = self.objs.pfn[o];
            if t == NONE || p == NONE || UNKILLABLE.contains(&t) || self.oom_killed.contains(&t) {
                continue;
            }
            let pages = if self.objs.state[o] & OBJ_IS_SLAB != 0 {
                0
            } else {
                1u64 << forder(self.flags[p as usize])
            };
            *size.entry(t).or_default() += pages;
        }
        let Some((&victim, _)) = size.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) else {
            return false;
        };
        self.oom_kill_task(victim);
        true
    }

    /// Kill task `tgid`: every object of it present is freed.
    pub(crate) fn oom_kill_task(&mut self, tgid: u32) {
        self.oom_killed.insert(tgid);
        self.counters.oom_kill += 1;
        for o in 0..self.objs.len() {
            let p = self.objs.pfn[o];
            if self.objs.owner[o] != tgid || p == NONE {
                continue;
            }
            let obj = o as u32;
            if self.objs.state[o] & OBJ_IS_SLAB != 0 {
                self.counters.oom_kill_pages += self.slab_free_obj(obj, false);
            } else {
                if self.flags[p as usize] & F_LRU != 0 {
                    let zi = self.zone_of_pfn(p as u64);
                    self.lru_del(zi, obj);
                }
                self.release_hold(obj);
                self.counters.oom_kill_pages += 1u64 << forder(self.flags[p as usize]);
                self.flags[p as usize] &= !F_OBJ;
                self.free_block(p, false, 0);
                self.objs.pfn[o] = NONE;
            }
        }
    }

    /// An allocation or fault of a killed task: dropped. Returns the outcome
    /// (the block a touched object still holds, else -1).
    pub(crate) fn drop_killed_op(&mut self, r: &TraceOp) -> i64 {
        self.counters.oom_dropped += 1;
        let o = r.obj as usize;
        if r.op == OP_TOUCH {
            let p = self.objs.pfn[o];
            return if p == NONE { -1 } else { p as i64 };
        }
        // as a failed allocation leaves it (see `replay`'s apply)
        self.objs.pfn[o] = NONE;
        self.objs.owner[o] = NONE;
        self.objs.order[o] = r.order;
        self.objs.gfp[o] = r.gfp;
        if r.op == OP_SLAB_ALLOC {
            self.objs.state[o] = (self.objs.state[o] | OBJ_IS_SLAB) & !OBJ_RECLAIMED;
        } else {
            self.objs.state[o] &= !(OBJ_RECLAIMED | OBJ_IS_SLAB);
        }
        -1
    }
}
