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
    /// (both lists are scanned at `(size >> priority) + 1` a call, so
    /// `(nr_active >> 12) + 1` active pages per `(nr_inactive >> 12) + 1`
    /// inactive ones, the remainder carried in `nr_scan_active`). An inactive
    /// page referenced since it was last scanned is activated instead of
    /// reclaimed (`shrink_list`'s `page_referenced` test), and so is an
    /// anonymous page on a machine without swap (`add_to_swap` fails). Whether
    /// `refill_inactive_zone` may move mapped pages is decided once a call, as
    /// 2.6.11 decides it once a `refill_inactive_zone` call. Returns pages
    /// reclaimed. `direct_free` bypasses the per-cpu lists (active freeing
    /// needs the pages on the buddy lists at once).
    pub(crate) fn shrink_zone(
        &mut self,
        zi: usize,
        nr: u64,
        kswapd: bool,
        direct_free: bool,
    ) -> u64 {
        let reclaim_mapped = self.reclaim_mapped(zi);
        let mut got = 0u64;
        let mut scanned = 0u64;
        while got < nr {
            if self.zones[zi].inactive.nr == 0 {
                let z = &self.zones[zi];
                if z.lru_pages == z.anon_lru && !(reclaim_mapped && self.cfg.swap) {
                    // only mapped pages, all active and kept there: scanning
                    // them would only rotate them (their bits untouched)
                    break;
                }
                // refill a page at a time until one moves; a page that stays
                // active loses its referenced bit (or is mapped and kept), so
                // two lengths of the active list bound the search
                let mut tries = 2 * self.zones[zi].active.nr as u64;
                while self.zones[zi].inactive.nr == 0 && tries > 0 {
                    self.refill_inactive_zone(zi, 1, reclaim_mapped);
                    tries -= 1;
                }
                if self.zones[zi].inactive.nr == 0 {
                    break;
                }
                continue;
            }
            let obj = self.zones[zi].inactive.tail;
            let pages = self.obj_pages(obj);
            let refill = {
                let z = &mut self.zones[zi];
                let inactive = z.lru_pages - z.active_pages;
                z.scan_credit += ((z.active_pages >> DEF_PRIORITY) + 1) * pages;
                let per = (inactive >> DEF_PRIORITY) + 1;
                let n = z.scan_credit / per;
                z.scan_credit %= per;
                n
            };
            if refill > 0 {
                self.refill_inactive_zone(zi, refill, reclaim_mapped);
            }
            scanned += pages;
            self.zones[zi].pgscan += pages;
            let referenced = self.objs.state[obj as usize] & OBJ_REF != 0;
            if referenced || !self.obj_evictable(obj) {
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

    /// 2.6.11's `refill_inactive_zone` decision: may mapped pages leave zone
    /// `zi`'s active list? Yes when `mapped_ratio / 2 + distress +
    /// vm_swappiness >= 100`, with `distress = 100 >> zone->prev_priority`
    /// and `mapped_ratio = nr_mapped * 100 / total_memory` (`total_memory`
    /// being `nr_free_pagecache_pages()`: every zone's present pages above
    /// its high watermark).
    /// Always yes without the rule (`MachineConfig::mapped_rule` off).
    pub(crate) fn reclaim_mapped(&self, zi: usize) -> bool {
        if !self.cfg.mapped_rule {
            return true;
        }
        let distress = 100u64 >> self.zones[zi].prev_priority.min(63);
        let (mut mapped, mut total) = (0u64, 0u64);
        for z in &self.zones {
            mapped += z.nr_mapped;
            total += z.present.saturating_sub(z.pages_high);
        }
        let mapped_ratio = mapped * 100 / total.max(1);
        mapped_ratio / 2 + distress + self.cfg.swappiness as u64 >= 100
    }

    /// `refill_inactive_zone`: scan `nr` pages from the tail of zone `zi`'s
    /// active list. A mapped (anonymous) page stays active, its referenced
    /// bit untouched, unless `reclaim_mapped` and there is swap; then, as any
    /// unmapped page, a page referenced since the last scan has its bit
    /// cleared and goes back to the active head, any other moves to the
    /// inactive head.
    pub(crate) fn refill_inactive_zone(&mut self, zi: usize, nr: u64, reclaim_mapped: bool) {
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
            let keep = if self.obj_mapped(obj) && !(reclaim_mapped && self.cfg.swap) {
                true
            } else if self.objs.state[o] & OBJ_REF != 0 {
                self.objs.state[o] &= !OBJ_REF;
                true
            } else {
                false
            };
            if keep {
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

    /// Has zone `zi` anything reclaim could free: LRU pages (without swap,
    /// other than anonymous ones), or (the slab caches being global)
    /// reclaimable slab objects anywhere.
    #[inline]
    pub(crate) fn zone_reclaimable(&self, zi: usize) -> bool {
        let z = &self.zones[zi];
        let anon = if self.cfg.swap { 0 } else { z.anon_lru };
        z.lru_pages > anon || self.reclaimable_slab_objs() > 0
    }

    /// Direct reclaim (`try_to_free_pages`): at falling priority, scan the
    /// zonelist's LRUs, then the slab caches in proportion (`shrink_slab`),
    /// until SWAP_CLUSTER_MAX pages are reclaimed. As in 2.6.11, each zone of
    /// the zonelist records the priority it is scanned at (`temp_priority`,
    /// and `prev_priority` lowered to it while the run lasts: `shrink_caches`)
    /// and keeps the last one as `prev_priority` when the run ends.
    pub(crate) fn try_to_free_pages(&mut self, node: usize, hz: usize) -> u64 {
        let mut got = 0u64;
        let n = self.zonelists[node][hz].len();
        for i in 0..n {
            let zi = self.zonelists[node][hz][i] as usize;
            self.zones[zi].temp_priority = DEF_PRIORITY;
        }
        for prio in (0..=DEF_PRIORITY).rev() {
            let mut scanned = 0u64;
            let mut lru_pages = 0u64;
            for i in 0..n {
                let zi = self.zonelists[node][hz][i] as usize;
                let z = &mut self.zones[zi];
                z.temp_priority = prio;
                z.prev_priority = z.prev_priority.min(prio);
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
                break;
            }
        }
        for i in 0..n {
            let z = &mut self.zones[self.zonelists[node][hz][i] as usize];
            z.prev_priority = z.temp_priority;
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
    /// kmm's kswapd stays at `DEF_PRIORITY`, so each pass ends as 2.6.11's
    /// `balance_pgdat` ends a run that met its target at that priority: every
    /// zone of the node gets `prev_priority = DEF_PRIORITY` (its
    /// `temp_priority`, reset to `DEF_PRIORITY` at `loop_again`).
    fn balance_pgdat(&mut self, mut budget: u64) {
        loop {
            let mut awake = false;
            let mut nodes = 0u64;
            for zi in 0..self.zones.len() {
                let order = self.zones[zi].kswapd_order;
                if order < 0 {
                    continue;
                }
                nodes |= 1 << self.zones[zi].node;
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
                    self.kswapd_pass_done(nodes);
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
            self.kswapd_pass_done(nodes);
            if !awake {
                return;
            }
        }
    }

    /// The end of a `balance_pgdat` run at `DEF_PRIORITY` for the nodes in
    /// mask `nodes`: `prev_priority = temp_priority = DEF_PRIORITY`.
    fn kswapd_pass_done(&mut self, nodes: u64) {
        if nodes == 0 {
            return;
        }
        for z in self.zones.iter_mut() {
            if nodes & (1 << z.node) != 0 {
                z.prev_priority = DEF_PRIORITY;
                z.temp_priority = DEF_PRIORITY;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Layout, MachineConfig};
    use crate::gfp::GFP_HIGHUSER;
    use crate::mm::machine::Machine;
    use crate::replay::{TraceOp, OP_ALLOC, OP_TOUCH, TF_TASK};

    /// A 64 MiB x86_32 machine (one zone below HighMem... DMA and Normal),
    /// no per-cpu lists, with or without swap.
    fn small(swap: bool) -> Machine {
        let mut cfg = MachineConfig::new(Layout::X86_32, 64 << 20);
        cfg.pcp = false;
        cfg.swap = swap;
        Machine::new(cfg).unwrap()
    }

    fn alloc(obj: u32, owned: bool) -> TraceOp {
        TraceOp {
            op: OP_ALLOC,
            obj,
            gfp: GFP_HIGHUSER,
            flags: if owned { TF_TASK } else { 0 },
            pid: 9,
            tgid: 9,
            ..TraceOp::default()
        }
    }

    fn touch(obj: u32) -> TraceOp {
        TraceOp {
            op: OP_TOUCH,
            obj,
            ..TraceOp::default()
        }
    }

    /// Objects 0..n/2 anonymous (owned by task 9), the rest page cache
    /// touched twice (active); returns the zone they went to.
    fn fill(m: &mut Machine, n: u32) -> usize {
        let mut ops: Vec<TraceOp> = (0..n).map(|o| alloc(o, o < n / 2)).collect();
        for _ in 0..2 {
            ops.extend((n / 2..n).map(touch));
        }
        m.replay_ops(&ops, false).unwrap();
        let (pfn, _) = m.object_block(0).unwrap();
        m.zone_of_pfn(pfn as u64)
    }

    fn active(m: &Machine, id: u32) -> bool {
        let s = m.objs.slot(id).unwrap();
        m.objs.state[s] & crate::mm::objects::OBJ_ACTIVE != 0
    }

    /// 2.6.11's `do_anonymous_page` adds an anonymous page to the active
    /// list, and the zone counts it mapped; page cache starts inactive.
    #[test]
    fn anonymous_pages_start_active_and_are_counted_mapped() {
        let mut m = small(false);
        let zi = fill(&mut m, 64);
        m.check().unwrap();
        assert_eq!(m.zones[zi].nr_mapped, 32);
        assert_eq!(m.zones[zi].anon_lru, 32);
        assert!((0..32).all(|o| active(&m, o)));
        let mut ops: Vec<TraceOp> = (0..8)
            .map(|o| crate::replay::TraceOp {
                op: crate::replay::OP_FREE,
                obj: o,
                ..TraceOp::default()
            })
            .collect();
        ops.push(alloc(100, false));
        m.replay_ops(&ops, false).unwrap();
        m.check().unwrap();
        assert_eq!(m.zones[zi].nr_mapped, 24);
        assert!(!active(&m, 100));
    }

    /// At `prev_priority` 12 (distress 0) with little memory mapped,
    /// `swap_tendency = mapped_ratio / 2 + 0 + 60 < 100`: refill keeps every
    /// mapped page on the active list and moves the unreferenced page cache.
    #[test]
    fn a_mapped_page_stays_active_at_low_distress() {
        let mut m = small(true);
        let zi = fill(&mut m, 64);
        assert_eq!(m.zones[zi].prev_priority, 12);
        assert!(!m.reclaim_mapped(zi));
        let before = m.counters.pgdeactivate;
        m.refill_inactive_zone(zi, 2 * 64, false);
        // the page cache (activated by its second touch, bit clear) moved
        assert!((32..64).all(|o| !active(&m, o)));
        assert!((0..32).all(|o| active(&m, o)));
        assert_eq!(m.counters.pgdeactivate - before, 32);
        m.check().unwrap();
    }

    /// `distress = 100 >> prev_priority`: with almost nothing mapped, the
    /// tendency reaches 100 at priority 1 (distress 50), not at 2 (25);
    /// `vm_swappiness` 100 reaches it at any priority. Once it does (and
    /// there is swap), an unreferenced mapped page is deactivated.
    #[test]
    fn a_mapped_page_is_deactivated_when_swap_tendency_reaches_100() {
        let mut m = small(true);
        let zi = fill(&mut m, 64);
        m.zones[zi].prev_priority = 2;
        assert!(!m.reclaim_mapped(zi));
        m.zones[zi].prev_priority = 1;
        assert!(m.reclaim_mapped(zi));
        m.refill_inactive_zone(zi, 64, true);
        assert!((0..32).all(|o| !active(&m, o)), "mapped pages left active");
        m.check().unwrap();
        m.zones[zi].prev_priority = 12;
        m.cfg.swappiness = 100;
        assert!(m.reclaim_mapped(zi));
        m.cfg.swappiness = 39;
        m.zones[zi].prev_priority = 0; // distress 100: 0 / 2 + 100 + 39
        assert!(m.reclaim_mapped(zi));
    }

    /// Without the rule (`mapped_rule` off, today's kernel), `reclaim_mapped`
    /// holds at any distress: a mapped page at `prev_priority` 12 is
    /// deactivated like the page cache when there is swap, and kept when there
    /// is none.
    #[test]
    fn without_the_rule_a_mapped_page_goes_at_low_distress_only_with_swap() {
        for swap in [true, false] {
            let mut m = small(swap);
            m.cfg.mapped_rule = false;
            let zi = fill(&mut m, 64);
            assert_eq!(m.zones[zi].prev_priority, 12);
            assert!(m.reclaim_mapped(zi));
            let reclaim_mapped = m.reclaim_mapped(zi);
            m.refill_inactive_zone(zi, 2 * 64, reclaim_mapped);
            assert!((32..64).all(|o| !active(&m, o)));
            assert_eq!((0..32).all(|o| !active(&m, o)), swap, "swap {swap}");
            m.check().unwrap();
        }
    }

    /// Without swap an anonymous page is never deactivated (2.6.11's
    /// `total_swap_pages == 0 && PageAnon`) nor reclaimed (`add_to_swap`
    /// fails): reclaim asked for more than the page cache frees only the
    /// page cache, and the zone has nothing left to reclaim.
    #[test]
    fn without_swap_reclaim_never_takes_an_anonymous_page() {
        let mut m = small(false);
        let zi = fill(&mut m, 64);
        m.zones[zi].prev_priority = 0;
        assert!(m.reclaim_mapped(zi));
        let got = m.shrink_zone(zi, 1000, true, false);
        assert_eq!(got, 32);
        assert!((0..32).all(|o| m.object_block(o).is_some() && active(&m, o)));
        assert!(!m.zone_reclaimable(zi) || m.reclaimable_slab_objs() > 0);
        m.check().unwrap();
        // with swap, the same request takes them too
        let mut m = small(true);
        let zi = fill(&mut m, 64);
        m.zones[zi].prev_priority = 0;
        assert_eq!(m.shrink_zone(zi, 1000, true, false), 64);
        m.check().unwrap();
    }

    /// `prev_priority` as 2.6.11 keeps it: direct reclaim leaves each zone of
    /// its zonelist at the priority it last scanned it at, and a kswapd pass
    /// (at `DEF_PRIORITY`) sets every zone of the node back to 12.
    #[test]
    fn prev_priority_follows_direct_reclaim_and_kswapd() {
        let mut m = small(false);
        let zi = fill(&mut m, 64);
        // 32 page-cache pages: direct reclaim must go below priority 12 to
        // find 32 (it owes (lru >> prio).max(1) a zone a priority)
        let got = m.try_to_free_pages(0, m.zones[zi].zt);
        assert!(got > 0);
        let p = m.zones[zi].prev_priority;
        assert!(p < 12, "prev_priority {p}");
        m.check().unwrap();
        m.wakeup_kswapd(zi, 10);
        let mut ops: Vec<TraceOp> = (200..232).map(|o| alloc(o, false)).collect();
        ops.extend((200..232).map(touch));
        m.replay_ops(&ops, false).unwrap();
        m.wakeup_kswapd(zi, 10);
        m.advance(2_000_000);
        assert_eq!(m.zones[zi].prev_priority, 12);
        m.check().unwrap();
    }

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
