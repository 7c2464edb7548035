//! Active freeing: when reclaim alone fails a high-order request, pick the
//! aligned block that costs the fewest reclaimed pages, reclaim exactly its
//! pages, and allocate it (the "linear scanner" variant of Gorman's 2005 post).

use super::machine::Machine;
use super::page::{forder, ftype, kind, K_ALLOC, K_FREE, K_PCP};
use crate::MAX_ORDER;

impl Machine {
    /// Find the aligned block of `order` in the zonelist that costs the fewest
    /// reclaimed pages, reclaim them, and allocate it for type `t`.
    pub(crate) fn active_free(
        &mut self,
        node: usize,
        hz: usize,
        order: u32,
        t: usize,
    ) -> Option<u32> {
        self.counters.active_free_attempts += 1;
        for i in 0..self.zonelists[node][hz].len() {
            let zi = self.zonelists[node][hz][i] as usize;
            let z = &self.zones[zi];
            // a zone that cannot stay above min with the block taken is skipped
            if z.free_pages + z.lru_pages < z.pages_min + z.lowmem_reserve[hz] + (1u64 << order) {
                continue;
            }
            let size = 1u64 << order;
            let mut best: Option<(u64, u64)> = None; // (cost, rel)
            let mut rel = 0;
            while rel + size <= z.spanned {
                if let Some(c) = self.block_cost(zi, rel, order) {
                    if best.is_none_or(|(bc, _)| c < bc) {
                        best = Some((c, rel));
                    }
                }
                rel += size;
            }
            if let Some((cost, rel)) = best {
                if let Some(p) = self.active_free_block(zi, hz, rel, order, t, cost) {
                    return Some(p);
                }
            }
        }
        None
    }

    /// Reclaim the block at zone-relative `rel` (expected to cost `cost` pages) and
    /// allocate it.
    fn active_free_block(
        &mut self,
        zi: usize,
        hz: usize,
        rel: u64,
        order: u32,
        t: usize,
        cost: u64,
    ) -> Option<u32> {
        let start = self.zones[zi].start_pfn + rel;
        let end = start + (1u64 << order);
        let mut reclaimed = 0;
        // a candidate inside a larger reclaimable block: reclaim that block whole
        if let Some((h, _)) = self.containing_head(zi, rel, order) {
            if kind(self.flags[h as usize]) == K_ALLOC {
                let obj = self.next[h as usize];
                reclaimed += self.reclaim_object(obj, true);
            }
        }
        // reclaim the reclaimable pages and push pcp pages back to the buddy lists
        let mut p = start;
        while p < end {
            let f = self.flags[p as usize];
            match kind(f) {
                K_ALLOC => {
                    let obj = self.next[p as usize];
                    let o = forder(f);
                    reclaimed += self.reclaim_object(obj, true);
                    p += 1 << o;
                }
                K_PCP => {
                    self.pcp_page_to_buddy(zi, p as u32, f);
                    p += 1;
                }
                K_FREE => p += 1 << forder(f),
                _ => p += 1,
            }
        }
        debug_assert_eq!(reclaimed, cost);
        self.counters.pgscan_direct += reclaimed;
        self.counters.pgsteal_direct += reclaimed;
        self.counters.active_free_pages += reclaimed;
        // the block must not take the zone below its min watermark: reclaim the
        // deficit from the LRU (oldest first), and count it as this success's cost
        let need = {
            let z = &self.zones[zi];
            (z.pages_min + z.lowmem_reserve[hz] + (1u64 << order)).saturating_sub(z.free_pages)
        };
        if need > 0 {
            let got = self.shrink_zone(zi, need, false, true);
            self.counters.active_free_pages += got;
            if got < need {
                return None;
            }
        }
        let pfn = self.take_block(zi, start as u32, order, t)?;
        self.counters.active_free_success += 1;
        Some(pfn)
    }

    /// Take the specific aligned block at `target` out of the free block that
    /// holds it, the halves not taken going on the list the policy says
    /// (`Machine::claim_free_block`).
    fn take_block(&mut self, zi: usize, target: u32, order: u32, t: usize) -> Option<u32> {
        let zs = self.zones[zi].start_pfn;
        let rel = target as u64 - zs;
        let (h, o, lt) = (order..MAX_ORDER as u32).find_map(|o| {
            let h = (zs + (rel & !((1u64 << o) - 1))) as u32;
            let f = self.flags[h as usize];
            (kind(f) == K_FREE && forder(f) == o).then(|| (h, o, ftype(f)))
        })?;
        self.del_free(zi, h, o, lt);
        let put_lt = self.claim_free_block(zi, h, lt, target, order, t);
        let mut cur = h;
        let mut co = o;
        while co > order {
            co -= 1;
            let half = 1u32 << co;
            if target >= cur + half {
                self.add_free(zi, cur, co, put_lt);
                cur += half;
            } else {
                self.add_free(zi, cur + half, co, put_lt);
            }
        }
        self.set_allocated(target, order, t);
        Some(target)
    }
}
