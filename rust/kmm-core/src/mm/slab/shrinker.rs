//! The slab shrinker: `shrink_slab` (2.6.11's in `mm/vmscan.c`, today's in
//! `mm/shrinker.c`) and the dcache/icache `prune_*` scan it drives, by the
//! 2.6.11 proportion described in the [module docs](super).

use super::{CACHES, NR_CACHES};
use crate::mm::machine::Machine;
use crate::mm::objects::{OBJ_RECLAIMED, OBJ_REF};
use crate::mm::page::{list_add, list_del};

/// `SHRINK_BATCH`: objects a shrinker is asked to scan per call.
pub const SHRINK_BATCH: u64 = 128;
/// `DEFAULT_SEEKS` of the dcache and icache shrinkers.
pub const DEFAULT_SEEKS: u64 = 2;

impl Machine {
    /// Reclaimable slab objects present in all caches.
    pub(crate) fn reclaimable_slab_objs(&self) -> u64 {
        (0..NR_CACHES)
            .filter(|&c| CACHES[c].reclaimable)
            .map(|c| self.slab.nr_objs[c])
            .sum()
    }

    /// `shrink_slab` after reclaim scanned `scanned` LRU pages of `lru_pages`:
    /// each reclaimable cache scans its share of objects, oldest first; returns
    /// the slab pages freed.
    pub(crate) fn shrink_slab(&mut self, scanned: u64, lru_pages: u64, direct_free: bool) -> u64 {
        // 2.6.11: a pass that scanned nothing still counts as SWAP_CLUSTER_MAX
        let scanned = if scanned == 0 {
            crate::SWAP_CLUSTER_MAX
        } else {
            scanned
        };
        let mut freed = 0u64;
        for (c, info) in CACHES.iter().enumerate() {
            if !info.reclaimable || self.slab.nr_objs[c] == 0 {
                continue;
            }
            let max_pass = self.slab.nr_objs[c];
            let delta = (4 * scanned / DEFAULT_SEEKS) * max_pass / (lru_pages + 1);
            let mut nr = (self.slab.shrink_nr[c] + delta).min(2 * max_pass);
            while nr >= SHRINK_BATCH {
                freed += self.shrink_cache(c, SHRINK_BATCH, direct_free);
                nr -= SHRINK_BATCH;
            }
            self.slab.shrink_nr[c] = nr;
        }
        freed
    }

    /// Scan `nr` objects of cache `c` from the oldest: referenced ones lose the
    /// bit and go back to the head, pinned ones go back to the head, the rest
    /// are freed (marked reclaimed). Returns the slab pages freed.
    pub(crate) fn shrink_cache(&mut self, c: usize, nr: u64, direct_free: bool) -> u64 {
        let mut freed = 0u64;
        for _ in 0..nr.min(self.slab.lru[c].nr as u64) {
            let obj = self.slab.lru[c].tail;
            let o = obj as usize;
            self.counters.slabs_scanned += 1;
            if self.objs.state[o] & OBJ_REF != 0 || self.objs.held[o] > 0 {
                self.objs.state[o] &= !OBJ_REF;
                let l = &mut self.slab.lru[c];
                list_del(&mut self.objs.lru_next, &mut self.objs.lru_prev, l, obj);
                list_add(&mut self.objs.lru_next, &mut self.objs.lru_prev, l, obj);
                continue;
            }
            freed += self.slab_free_obj(obj, direct_free);
            self.objs.state[o] |= OBJ_RECLAIMED;
            self.counters.slab_reclaimed += 1;
        }
        freed
    }
}
