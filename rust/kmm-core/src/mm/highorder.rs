//! Read-only scans of aligned high-order blocks: what a block would cost to
//! free, the ceiling of blocks that could be freed right now, and the
//! perfect-packing limit.

use super::machine::Machine;
use super::page::{forder, kind, F_LRU, F_OBJ, K_ALLOC, K_FREE, K_PCP, K_RESERVED};
use crate::error::Result;
use crate::MAX_ORDER;

impl Machine {
    /// Whether reclaim could free the allocated block at head `pfn` (flag
    /// word `f`): an LRU page that is not unevictable, nor anonymous on a
    /// machine without swap (`Machine::obj_evictable`).
    #[inline]
    pub(crate) fn evictable_head(&self, pfn: u64, f: u16) -> bool {
        f & F_LRU != 0 && (f & F_OBJ == 0 || self.obj_evictable(self.next[pfn as usize]))
    }

    /// Classify the aligned block of `order` at zone-relative `rel`:
    /// `None` if it holds a reserved or non-reclaimable page, else the number of
    /// pages that would have to be reclaimed to free it.
    pub(crate) fn block_cost(&self, zi: usize, rel: u64, order: u32) -> Option<u64> {
        let zs = self.zones[zi].start_pfn;
        let start = zs + rel;
        let end = start + (1u64 << order);
        // inside a larger allocated or free block?
        if let Some((h, o)) = self.containing_head(zi, rel, order) {
            let f = self.flags[h as usize];
            return match kind(f) {
                K_FREE => Some(0),
                _ if self.evictable_head(h, f) => Some(1u64 << o),
                _ => None,
            };
        }
        let mut cost = 0u64;
        let mut p = start;
        while p < end {
            let f = self.flags[p as usize];
            match kind(f) {
                K_FREE => p += 1 << forder(f),
                K_PCP => p += 1,
                K_ALLOC if self.evictable_head(p, f) => {
                    cost += 1 << forder(f);
                    p += 1 << forder(f);
                }
                _ => return None,
            }
        }
        Some(cost)
    }

    /// The allocated or free block of a higher order than `order` that contains the
    /// aligned block at zone-relative `rel`, as (head pfn, its order).
    pub(crate) fn containing_head(&self, zi: usize, rel: u64, order: u32) -> Option<(u64, u32)> {
        let zs = self.zones[zi].start_pfn;
        for o in order + 1..MAX_ORDER as u32 {
            let h = zs + (rel & !((1u64 << o) - 1));
            let f = self.flags[h as usize];
            if forder(f) == o
                && (kind(f) == K_FREE || kind(f) == K_ALLOC)
                && h + (1 << o) <= self.zones[zi].end_pfn()
            {
                return Some((h, o));
            }
        }
        None
    }

    /// Aligned blocks of `order` (in the zones `gfp` may use, all nodes) that hold
    /// no reserved or non-reclaimable page right now; blocks inside an allocated
    /// block of at least `order` count as achievable.
    pub fn highorder_ceiling(&self, order: u32, gfp: u32) -> Result<u64> {
        self.validate_alloc(order, gfp, None)?;
        let hz = self.gfp_zone(gfp);
        let mut n = 0;
        for zi in 0..self.zones.len() {
            if self.zones[zi].zt > hz {
                continue;
            }
            let size = 1u64 << order;
            let mut rel = 0;
            while rel + size <= self.zones[zi].spanned {
                if self.held_or_cost(zi, rel, order) {
                    n += 1;
                }
                rel += size;
            }
        }
        Ok(n)
    }

    /// Whether the aligned block at zone-relative `rel` is held whole by an
    /// allocated block of at least `order`, or could be freed at some cost.
    fn held_or_cost(&self, zi: usize, rel: u64, order: u32) -> bool {
        let zs = self.zones[zi].start_pfn;
        for o in order..MAX_ORDER as u32 {
            let h = zs + (rel & !((1u64 << o) - 1));
            let f = self.flags[h as usize];
            if kind(f) == K_ALLOC && forder(f) == o {
                return true;
            }
        }
        self.block_cost(zi, rel, order).is_some()
    }

    /// The perfect-packing limit: per zone, aligned blocks minus
    /// ceil(non-reclaimable pages / block size), summed over the zones `gfp` may use.
    pub fn highorder_limit(&self, order: u32, gfp: u32) -> Result<u64> {
        self.validate_alloc(order, gfp, None)?;
        let hz = self.gfp_zone(gfp);
        let size = 1u64 << order;
        let mut n = 0u64;
        for zi in 0..self.zones.len() {
            let z = &self.zones[zi];
            if z.zt > hz {
                continue;
            }
            let blocks = z.spanned / size;
            // pinned pages in the zone's partial tail block do not cost a whole block
            let full_end = z.start_pfn + blocks * size;
            let mut pinned = 0u64;
            let mut p = z.start_pfn;
            while p < full_end {
                let f = self.flags[p as usize];
                let o = forder(f);
                match kind(f) {
                    K_RESERVED => {
                        pinned += 1;
                        p += 1
                    }
                    K_ALLOC => {
                        if !self.evictable_head(p, f) && o < order {
                            pinned += 1 << o;
                        }
                        p += 1 << o;
                    }
                    K_FREE => p += 1 << o,
                    _ => p += 1,
                }
            }
            n += blocks.saturating_sub(pinned.div_ceil(size));
        }
        Ok(n)
    }
}
