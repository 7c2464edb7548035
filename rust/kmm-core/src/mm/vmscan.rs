//! Reclaim (the kernel's `mm/vmscan.c`): `shrink_zone` over the per-zone
//! active and inactive lists (`mm::swap`), `refill_inactive_zone`, direct reclaim (`try_to_free_pages`), and kswapd
//! (`wakeup_kswapd`, `kswapd`, `balance_pgdat`), each calling `shrink_slab`
//! (`mm::slab`) after its LRU scan as 2.6.11 does. Reclaimed blocks are freed
//! through the allocator's free path (`mm::page_alloc`).

use super::machine::Machine;
use super::objects::{OBJ_RECLAIMED, OBJ_REF};
use super::page::{forder, list_add, list_del};
use crate::{NONE, SWAP_CLUSTER_MAX};

/// `DEF_PRIORITY` of 2.6.11's `mm/vmscan.c`: kswapd's first pass scans
/// `lru >> DEF_PRIORITY` of each zone.
const DEF_PRIORITY: u32 = 12;

impl Machine {
    /// After an allocation from zone `zi`: wake kswapd if the zone fell below
    /// its low watermark (and kswapd is not already working at this order).
    #[inline]
    pub(crate) fn check_kswapd(&mut self, zi: usize, order: u32) {
        let z = &self.zones[zi];
        if z.free_pages < z.pages_low && z.kswapd_order < order as i32 {
            self.wakeup_kswapd(zi, order);
        }
    }

    /// `wakeup_kswapd`: ask kswapd to balance zone `zi` for `order` (a zone with
    /// nothing to reclaim is left alone).
    pub(crate) fn wakeup_kswapd(&mut self, zi: usize, order: u32) {
        if !self.cfg.reclaim || !self.zone_reclaimable(zi) {
            return;
        }
        let z = &mut self.zones[zi];
        if z.kswapd_order < 0 {
            self.counters.kswapd_wakeups += 1;
        }
        z.kswapd_order = z.kswapd_order.max(order as i32);
    }

    /// `shrink_zone` of 2.6.11: scan zone `zi`'s inactive list from its tail
    /// until `nr` pages are reclaimed, the active list scanned in proportion
    /// (both lists are scanned at `size >> priority`, so `active_pages /
    /// inactive_pages` active pages per inactive page, the remainder carried
    /// in `nr_scan_active`). An inactive page referenced since it was last
    /// scanned is activated instead of reclaimed (`shrink_list`'s
    /// `page_referenced` test). Returns pages reclaimed. `direct_free`
    /// bypasses the per-cpu lists (active freeing needs the pages on the
    /// buddy lists at once).
    pub(crate) fn shrink_zone(
        &mut self,
        zi: usize,
        nr: u64,
        kswapd: bool,
        direct_free: bool,
    ) -> u64 {
        let mut got = 0u64;
        let mut scanned = 0u64;
        while got < nr {
            if self.zones[zi].inactive.nr == 0 {
                if self.zones[zi].active.nr == 0 {
                    break;
                }
                self.refill_inactive_zone(zi, 1);
                continue;
            }
            let obj = self.zones[zi].inactive.tail;
            let pages = self.obj_pages(obj);
            let refill = {
                let z = &mut self.zones[zi];
                let inactive = z.lru_pages - z.active_pages;
                z.scan_credit += z.active_pages * pages;
                let n = z.scan_credit / inactive;
                z.scan_credit %= inactive;
                n
            };
            if refill > 0 {
                self.refill_inactive_zone(zi, refill);
            }
            scanned += pages;
            self.zones[zi].pgscan += pages;
            if self.objs.state[obj as usize] & OBJ_REF != 0 {
                self.objs.state[obj as usize] &= !OBJ_REF;
                self.activate(zi, obj);
            } else {
                got += self.reclaim_object(obj, direct_free);
            }
        }
        if kswapd {
            self.counters.pgscan_kswapd += scanned;
            self.counters.pgsteal_kswapd += got;
        } else {
            self.counters.pgscan_direct += scanned;
            self.counters.pgsteal_direct += got;
        }
        got
    }

    /// `refill_inactive_zone`: scan `nr` pages from the tail of zone `zi`'s
    /// active list; a page referenced since the last scan has its bit cleared
    /// and goes back to the active head, any other moves to the inactive head.
    pub(crate) fn refill_inactive_zone(&mut self, zi: usize, nr: u64) {
        let mut done = 0u64;
        while done < nr {
            let obj = self.zones[zi].active.tail;
            if obj == NONE {
                break;
            }
            let pages = self.obj_pages(obj);
            done += pages;
            self.counters.pgrefill += pages;
            let o = obj as usize;
            if self.objs.state[o] & OBJ_REF != 0 {
                self.objs.state[o] &= !OBJ_REF;
                let z = &mut self.zones[zi];
                let (n, p) = (&mut self.objs.lru_next, &mut self.objs.lru_prev);
                list_del(n, p, &mut z.active, obj);
                list_add(n, p, &mut z.active, obj);
            } else {
                self.deactivate(zi, obj);
            }
        }
    }

    /// Drop an object's block: off the LRU, freed, object marked reclaimed.
    /// Returns the pages freed.
    pub(crate) fn reclaim_object(&mut self, obj: u32, direct_free: bool) -> u64 {
        let pfn = self.objs.pfn[obj as usize];
        let zi = self.zone_of_pfn(pfn as u64);
        self.lru_del(zi, obj);
        let pages = 1u64 << forder(self.flags[pfn as usize]);
        self.release_hold(obj);
        self.free_block(pfn, direct_free, 0);
        self.objs.pfn[obj as usize] = NONE;
        self.objs.state[obj as usize] |= OBJ_RECLAIMED;
        pages
    }

    /// Has zone `zi` anything reclaim could free: LRU pages, or (the slab
    /// caches being global) reclaimable slab objects anywhere.
    #[inline]
    pub(crate) fn zone_reclaimable(&self, zi: usize) -> bool {
        self.zones[zi].lru_pages > 0 || self.reclaimable_slab_objs() > 0
    }

    /// Direct reclaim (`try_to_free_pages`): at falling priority, scan the
    /// zonelist's LRUs, then the slab caches in proportion (`shrink_slab`),
    /// until SWAP_CLUSTER_MAX pages are reclaimed.
    pub(crate) fn try_to_free_pages(&mut self, node: usize, hz: usize) -> u64 {
        let mut got = 0u64;
        let n = self.zonelists[node][hz].len();
        for prio in (0..=12u32).rev() {
            let mut scanned = 0u64;
            let mut lru_pages = 0u64;
            for i in 0..n {
                let zi = self.zonelists[node][hz][i] as usize;
                let lru = self.zones[zi].lru_pages;
                lru_pages += lru;
                if lru == 0 || got + scanned >= SWAP_CLUSTER_MAX {
                    continue;
                }
                let want = (lru >> prio).max(1).min(SWAP_CLUSTER_MAX - got - scanned);
                scanned += self.shrink_zone(zi, want, false, false);
            }
            got += scanned;
            got += self.shrink_slab(scanned, lru_pages, false);
            if got >= SWAP_CLUSTER_MAX {
                return got;
            }
        }
        got
    }

    /// Let simulated time pass: `dt_ns` more nanoseconds, during which
    /// `kswapd` runs.
    pub fn advance(&mut self, dt_ns: u64) {
        self.now_ns += dt_ns;
        if self.cfg.reclaim {
            self.kswapd(dt_ns);
        }
        if self.cfg.compaction {
            self.kcompactd(dt_ns);
        }
    }

    /// `kswapd` for `dt_ns` of simulated time: it earns
    /// `kswapd_pages_per_ms` pages of reclaim per millisecond, notices zones
    /// below their low watermark on its own, and runs `balance_pgdat`.
    fn kswapd(&mut self, dt_ns: u64) {
        // kswapd runs on CPU 0: the pages it reclaims go to CPU 0's lists
        self.switch_cpu(0);
        self.kswapd_credit_ns += dt_ns;
        let budget = (self.kswapd_credit_ns / 1_000_000) * self.cfg.kswapd_pages_per_ms;
        self.kswapd_credit_ns %= 1_000_000;
        for zi in 0..self.zones.len() {
            let z = &self.zones[zi];
            if z.kswapd_order < 0 && z.free_pages < z.pages_low && self.zone_reclaimable(zi) {
                self.wakeup_kswapd(zi, 0);
            }
        }
        self.balance_pgdat(budget);
    }

    /// `balance_pgdat` of 2.6.11, within `budget` pages: pass after pass over
    /// the zones kswapd was woken for, each unbalanced zone (order-aware high
    /// watermark) owed `(lru >> DEF_PRIORITY) + 1` pages a pass
    /// (`shrink_zone`'s `nr_scan_inactive`), and reclaimed by up to
    /// `SWAP_CLUSTER_MAX` once that reaches `SWAP_CLUSTER_MAX`, then
    /// `shrink_slab`. So every unbalanced zone is reclaimed at once, in
    /// proportion to its LRU (capped at a cluster a pass), not one zone after
    /// another. A balanced or exhausted zone puts kswapd back to sleep for it.
    fn balance_pgdat(&mut self, mut budget: u64) {
        loop {
            let mut awake = false;
            for zi in 0..self.zones.len() {
                let order = self.zones[zi].kswapd_order;
                if order < 0 {
                    continue;
                }
                let high = self.zones[zi].pages_high;
                if self.zone_watermark_ok(zi, order as u32, high, 0, false, false)
                    || !self.zone_reclaimable(zi)
                {
                    self.zones[zi].kswapd_order = -1;
                    self.zones[zi].kswapd_scan = 0;
                    self.kswapd_zone_sleeps(zi, order as u32);
                    continue;
                }
                awake = true;
                if budget == 0 {
                    return;
                }
                let z = &mut self.zones[zi];
                z.kswapd_scan += (z.lru_pages >> DEF_PRIORITY) + 1;
                if z.kswapd_scan < SWAP_CLUSTER_MAX {
                    continue;
                }
                z.kswapd_scan = 0;
                let want = budget.min(SWAP_CLUSTER_MAX);
                let mut got = self.shrink_zone(zi, want, true, false);
                let lru_pages = self.zones.iter().map(|z| z.lru_pages).sum();
                got += self.shrink_slab(got, lru_pages, false);
                budget -= want;
                if got == 0 {
                    self.zones[zi].kswapd_order = -1;
                    self.kswapd_zone_sleeps(zi, order as u32);
                    continue;
                }
                // today's kswapd: once it has reclaimed compact_gap(order) pages
                // for a high-order request, balance for order 0 and leave the
                // rest to kcompactd
                if self.cfg.compaction && order > 0 {
                    self.kswapd_high_order_done(zi, order as u32, got);
                }
            }
            if !awake {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Layout, MachineConfig};
    use crate::gfp::GFP_HIGHUSER;
    use crate::mm::machine::Machine;
    use crate::replay::{TraceOp, OP_ALLOC};

    /// 2.6.11's `balance_pgdat` reclaims every zone kswapd was woken for in
    /// the same pass, each in proportion to its LRU (`(lru >> 12) + 1` owed a
    /// pass, a cluster at a time), not one zone after the other.
    #[test]
    fn kswapd_reclaims_the_woken_zones_together_in_proportion() {
        let mut cfg = MachineConfig::new(Layout::X86_32, 1 << 30);
        cfg.max_objects = 300_000;
        cfg.pcp = false;
        let mut m = Machine::new(cfg).unwrap();
        let zone = |m: &Machine, n: &str| m.zones.iter().position(|z| z.name == n).unwrap();
        let (normal, high) = (zone(&m, "Normal"), zone(&m, "HighMem"));
        // fill HighMem, then Normal, with user pages (GFP_HIGHUSER's
        // zonelist) until the first direct reclaim: both are at their marks
        let mut id = 0u32;
        while m.counters.allocstall == 0 {
            let op = TraceOp {
                op: OP_ALLOC,
                obj: id,
                gfp: GFP_HIGHUSER,
                ..TraceOp::default()
            };
            m.replay_ops(&[op], false).unwrap();
            id += 1;
        }
        assert!(m.zones[high].lru_pages > 0 && m.zones[normal].lru_pages > m.zones[high].lru_pages);
        let free0: Vec<u64> = m.zones.iter().map(|z| z.free_pages).collect();
        let steal0 = m.counters.pgsteal_kswapd;
        // a failed order-10 request wakes kswapd at order 10 in every zone
        for zi in 0..m.zones.len() {
            m.wakeup_kswapd(zi, 10);
        }
        m.advance(20_000_000); // 20 ms: 640 pages of kswapd budget
        m.check().unwrap();
        let got = |zi: usize| m.zones[zi].free_pages - free0[zi];
        assert!(got(high) > 0, "HighMem not reclaimed while Normal was");
        assert!(
            got(normal) > got(high),
            "Normal {} HighMem {}",
            got(normal),
            got(high)
        );
        let total: u64 = (0..m.zones.len()).map(got).sum();
        assert_eq!(total, m.counters.pgsteal_kswapd - steal0);
        assert!(total <= 640, "{total} pages reclaimed on a 640-page budget");
    }
}
