//! kcompactd, the background half of compaction (in the kernel it lives in
//! `mm/compaction.c` beside the scanners; here it has its own file): the
//! work kswapd hands it when it goes to sleep (`wakeup_kcompactd`,
//! `kcompactd_do_work`), proactive compaction on the node fragmentation
//! score in simulated time (`fragmentation_score_node`,
//! `proactive_compact_node`), watermark boosting after fragmenting
//! fallbacks (`boost_watermark`), and the `ALLOC_NOFRAGMENT` /
//! `defrag_mode` decision. The scanners themselves are in
//! [`super::compaction`].

use super::compaction::{CompactResult, COMPACT_MAX_DEFER_SHIFT};
use super::machine::Machine;
use super::mmzone::ZNONE;
use crate::config::{Layout, Policy};

/// kcompactd checks the proactive score every `HPAGE_FRAG_CHECK_INTERVAL_MSEC`.
const PROACTIVE_INTERVAL_NS: u64 = 500_000_000;

impl Machine {
    /// `fragmentation_score_node`: the node's zones' `extfrag_for_order` at
    /// the huge page order, weighted by their share of the node.
    pub fn fragmentation_score_node(&self, node: usize) -> u64 {
        let cbo = self.compact_block_order();
        let present: u64 = self
            .zones
            .iter()
            .filter(|z| z.node == node)
            .map(|z| z.present)
            .sum();
        (0..self.zones.len())
            .filter(|&zi| self.zones[zi].node == node)
            .map(|zi| self.zones[zi].present * self.extfrag_for_order(zi, cbo) / (present + 1))
            .sum()
    }

    /// `fragmentation_score_wmark`: low = max(100 - proactiveness, 5), high = low + 10.
    pub(super) fn fragmentation_score_wmark(&self, low: bool) -> u64 {
        let wmark_low = 100u64
            .saturating_sub(self.cfg.compaction_proactiveness as u64)
            .max(5);
        if low {
            wmark_low
        } else {
            (wmark_low + 10).min(100)
        }
    }

    // ---- kcompactd --------------------------------------------------------

    /// `wakeup_kcompactd`: kswapd went to sleep after balancing zone `zi` for
    /// `order`; kcompactd compacts it at the next tick if compaction could help.
    pub(crate) fn wakeup_kcompactd(&mut self, zi: usize, order: u32) {
        if !self.cfg.compaction || order == 0 {
            return;
        }
        let c = &mut self.zones[zi].compact;
        c.kcompactd_order = c.kcompactd_order.max(order as i32);
    }

    /// kswapd stops working on zone `zi` (balanced at `order`, or nothing left
    /// to reclaim): a boosted zone drops its boost and kcompactd is woken at
    /// the pageblock order (`balance_pgdat`); otherwise kcompactd is woken for
    /// `order` (`kswapd_try_to_sleep`).
    pub(crate) fn kswapd_zone_sleeps(&mut self, zi: usize, order: u32) {
        self.zones[zi].compact.kswapd_reclaimed = 0;
        if self.zones[zi].compact.watermark_boost > 0 {
            self.set_watermark_boost(zi, 0);
            let cbo = self.compact_block_order();
            self.wakeup_kcompactd(zi, cbo);
        } else {
            self.wakeup_kcompactd(zi, order);
        }
    }

    /// `boost_watermark`: after a fallback that fragmented a pageblock, raise
    /// zone `zi`'s watermarks by a pageblock, up to `watermark_boost_factor`
    /// ten-thousandths of the high mark (at least a pageblock), and wake kswapd.
    pub(crate) fn boost_watermark(&mut self, zi: usize) {
        let factor = self.cfg.watermark_boost_factor as u64;
        if factor == 0 {
            return;
        }
        let pb = 1u64 << self.compact_block_order();
        let z = &self.zones[zi];
        let base_high = z.pages_high - z.compact.watermark_boost;
        let max_boost = (base_high * factor / 10000).max(pb);
        let boost = (z.compact.watermark_boost + pb).min(max_boost);
        self.set_watermark_boost(zi, boost);
        self.wakeup_kswapd(zi, 0);
        if self.zones[zi].kswapd_order < 0 {
            // kswapd has nothing to reclaim here (or reclaim is off): no boost
            self.set_watermark_boost(zi, 0);
        }
    }

    /// Set zone `zi`'s `watermark_boost`; min, low and high carry it, as
    /// `wmark_pages()` adds it to each.
    fn set_watermark_boost(&mut self, zi: usize, boost: u64) {
        let z = &mut self.zones[zi];
        let old = z.compact.watermark_boost;
        z.pages_min = z.pages_min - old + boost;
        z.pages_low = z.pages_low - old + boost;
        z.pages_high = z.pages_high - old + boost;
        z.compact.watermark_boost = boost;
    }

    /// `alloc_flags_nofragment`, decided once per machine: with compaction
    /// on, `defrag_mode`, or a node whose Normal zone sits above a DMA32 zone
    /// (the kernel sets `ALLOC_NOFRAGMENT` when the preferred zone is Normal
    /// and DMA32 is populated; kmm applies it to every request on such a
    /// machine).
    pub(crate) fn alloc_flags_nofragment(&self) -> bool {
        if !self.cfg.compaction || self.policy != Policy::Mobility {
            return false;
        }
        self.cfg.defrag_mode
            || (self.layout == Layout::X86_64
                && self
                    .zone_index
                    .iter()
                    .any(|zi| zi[1] != ZNONE && zi[2] != ZNONE))
    }

    /// kswapd reclaimed `got` pages from zone `zi` for a request of `order`
    /// (today's `kswapd_shrink_node`): once it has reclaimed `compact_gap(order)`
    /// = 2 << order pages since it was woken, it balances for order 0 and wakes
    /// kcompactd for the order instead of reclaiming on ("If twice the
    /// allocation size has been reclaimed then recheck watermarks only at
    /// order-0").
    pub(crate) fn kswapd_high_order_done(&mut self, zi: usize, order: u32, got: u64) {
        let c = &mut self.zones[zi].compact;
        c.kswapd_reclaimed += got;
        if c.kswapd_reclaimed >= 2u64 << order {
            c.kswapd_reclaimed = 0;
            self.zones[zi].kswapd_order = 0;
            self.wakeup_kcompactd(zi, order);
        }
    }

    /// `defrag_mode`'s kswapd/kcompactd assistance (6.15, "mm: page_alloc:
    /// defrag_mode kswapd/kcompactd assistance"): the watermarks are kept in
    /// whole free pageblocks, so an allocation that leaves zone `zi` with
    /// fewer free pages in free pageblocks than its low mark wakes kswapd at
    /// the pageblock order; kswapd reclaims a compaction gap and hands over to
    /// kcompactd ([`Machine::kswapd_high_order_done`]), which compacts until a
    /// pageblock is free.
    pub(crate) fn defrag_mode_wake(&mut self, zi: usize) {
        let cbo = self.compact_block_order();
        let z = &self.zones[zi];
        if z.kswapd_order >= cbo as i32 {
            return;
        }
        let in_blocks: u64 = (cbo as usize..crate::MAX_ORDER)
            .map(|o| z.nr_free(o) << o)
            .sum();
        if in_blocks < z.pages_low {
            self.wakeup_kswapd(zi, cbo);
        }
    }

    /// kcompactd for `dt_ns` of simulated time: the work kswapd asked for
    /// (`kcompactd_do_work`), and every 500 ms the proactive score.
    pub(crate) fn kcompactd(&mut self, dt_ns: u64) {
        for zi in 0..self.zones.len() {
            let order = self.zones[zi].compact.kcompactd_order;
            if order > 0 {
                self.zones[zi].compact.kcompactd_order = -1;
                self.kcompactd_do_work(zi, order as u32);
            }
        }
        if self.cfg.compaction_proactiveness == 0 {
            return;
        }
        self.compact_scratch.kcompactd_ns += dt_ns;
        while self.compact_scratch.kcompactd_ns >= PROACTIVE_INTERVAL_NS {
            self.compact_scratch.kcompactd_ns -= PROACTIVE_INTERVAL_NS;
            for node in 0..self.nr_nodes {
                self.proactive_check(node);
            }
        }
    }

    /// `kcompactd_do_work` for one zone.
    fn kcompactd_do_work(&mut self, zi: usize, order: u32) {
        let (hz, min) = (self.zones[zi].zt, self.zones[zi].pages_min);
        if self.zone_watermark_ok(zi, order, min, hz, false, false)
            || self.compaction_deferred(zi, order)
            || !self.compaction_suitable(zi, order, hz)
        {
            return;
        }
        self.counters.compact_daemon_wake += 1;
        let mut cc = Self::new_cc(zi, order as i32, hz);
        match self.compact_zone(&mut cc) {
            CompactResult::Success => self.compaction_defer_reset(zi, order, false),
            CompactResult::Complete | CompactResult::PartialSkipped => {
                self.defer_compaction(zi, order)
            }
            _ => {}
        }
    }

    /// `should_proactive_compact_node` and `proactive_compact_node`.
    fn proactive_check(&mut self, node: usize) {
        if self.compact_scratch.proactive_defer.len() < self.nr_nodes {
            self.compact_scratch
                .proactive_defer
                .resize(self.nr_nodes, 0);
        }
        let kswapd_active = self
            .zones
            .iter()
            .any(|z| z.node == node && z.kswapd_order >= 0);
        let prev = self.fragmentation_score_node(node);
        if kswapd_active || prev <= self.fragmentation_score_wmark(false) {
            return;
        }
        let pd = &mut self.compact_scratch.proactive_defer[node];
        if *pd > 0 {
            *pd -= 1;
            return;
        }
        for zi in 0..self.zones.len() {
            if self.zones[zi].node != node {
                continue;
            }
            let mut cc = Self::new_cc(zi, -1, self.zones[zi].zt);
            cc.whole_zone = true;
            cc.ignore_skip_hint = true;
            cc.proactive = true;
            self.compact_zone(&mut cc);
        }
        let score = self.fragmentation_score_node(node);
        self.compact_scratch.proactive_defer[node] = if score < prev {
            0
        } else {
            1 << COMPACT_MAX_DEFER_SHIFT
        };
    }
}
