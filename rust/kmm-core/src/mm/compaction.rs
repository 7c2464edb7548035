//! Memory compaction (the kernel's `mm/compaction.c`): a migrate scanner
//! walks pageblocks up from the zone start and moves movable pages; a free
//! scanner walks pageblocks down from the zone end and isolates the free pages
//! they move into; the scanners meet in the middle. Also `compaction_suitable`
//! with the fragmentation index, deferral after failure
//! (`defer_compaction`, `compaction_deferred`), pageblock skip hints, direct
//! compaction for the allocation slow path (`try_to_compact_pages`),
//! `/proc/sys/vm/compact_memory` ([`Machine::compact`]). kcompactd, proactive
//! compaction and watermark boosting are in `kcompactd.rs`.
//!
//! Movable pages are the blocks of movable (`__GFP_USERRCLM`, today
//! `__GFP_MOVABLE`) trace objects on the LRU: user pages and page cache.
//! Reclaimable kernel objects (slab) and blocks allocated with
//! `Machine::alloc`, which have no owner to move them, are never migrated.
//! Migration moves the owning object to its new pfn, with the same order and
//! flags and the same LRU position; its page_owner record follows it.

use super::machine::Machine;
use super::page::{forder, ftype, kind, F_LRU, F_OBJ, K_ALLOC, K_FREE, K_TAIL, LT_USERRCLM};
use crate::config::Policy;
use crate::error::{Error, Result};
use crate::gfp;
use crate::{MAX_ORDER, NONE};

/// `COMPACT_MAX_DEFER_SHIFT`: a failing zone skips up to 64 attempts.
pub(super) const COMPACT_MAX_DEFER_SHIFT: u32 = 6;
/// `PAGE_ALLOC_COSTLY_ORDER`.
const COSTLY_ORDER: u32 = 3;

/// `enum compact_result`, ordered as the kernel's so that `max` combines zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CompactResult {
    /// Not worth compacting (watermark or fragmentation index).
    Skipped,
    /// Deferred after earlier failures.
    Deferred,
    /// Still running.
    Continue,
    /// The scanners met over the whole zone.
    Complete,
    /// The scanners met, starting from cached positions.
    PartialSkipped,
    /// A suitable free block exists (or the proactive score is low enough).
    Success,
}

/// Migration and free scanner state of one run (`struct compact_control`).
#[derive(Debug, Clone, Copy)]
pub(super) struct CompactControl {
    zi: usize,
    /// Target order; -1 = compact the whole zone (`compact_memory`, proactive).
    order: i32,
    /// Highest zone type of the request (for the watermark's lowmem_reserve).
    hz: usize,
    migrate_pfn: u64,
    free_pfn: u64,
    pub(super) whole_zone: bool,
    pub(super) ignore_skip_hint: bool,
    /// Async direct compaction migrates only from movable pageblocks.
    asynchronous: bool,
    direct: bool,
    pub(super) proactive: bool,
    migrated: u64,
}

/// Scratch lists compaction reuses between runs, so a run allocates nothing
/// once they have grown, and kcompactd's clock.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompactScratch {
    /// Heads of the movable blocks isolated from the current pageblock.
    migrate: Vec<u32>,
    /// Free blocks the free scanner isolated, by order.
    free: [Vec<u32>; MAX_ORDER],
    /// Simulated time since kcompactd last checked the proactive score.
    pub(super) kcompactd_ns: u64,
    /// Per node: proactive checks still to skip (`proactive_defer`).
    pub(super) proactive_defer: Vec<u32>,
}

impl Machine {
    /// The pageblock order compaction works in: mobility's pageblock, or the
    /// layout's (`HPAGE_PMD_ORDER` 9 on x86_64, 10 on x86_32) under vanilla.
    #[inline]
    pub(crate) fn compact_block_order(&self) -> u32 {
        self.policy
            .compaction_block_order(self.block_order, self.layout.huge_page_order())
    }

    // ---- fragmentation index and suitability ------------------------------

    /// `fragmentation_index` of zone `zi` for `order`, in thousandths:
    /// -1000 when a free block of the order exists, near 0 when the failure
    /// would be for lack of memory, near 1000 when it is fragmentation.
    pub fn fragmentation_index(&self, zi: usize, order: u32) -> i64 {
        let z = &self.zones[zi];
        let (mut free_pages, mut blocks, mut suitable) = (0u64, 0u64, 0u64);
        for o in 0..MAX_ORDER {
            let n = z.nr_free(o);
            free_pages += n << o;
            blocks += n;
            if o as u32 >= order {
                suitable += n << (o as u32 - order);
            }
        }
        if blocks == 0 {
            return 0;
        }
        if suitable > 0 {
            return -1000;
        }
        let requested = 1u64 << order;
        1000 - ((1000 + free_pages * 1000 / requested) / blocks) as i64
    }

    /// `extfrag_for_order`: percent of the zone's free memory in blocks
    /// smaller than `order`.
    pub(super) fn extfrag_for_order(&self, zi: usize, order: u32) -> u64 {
        let z = &self.zones[zi];
        let suitable: u64 = (order as usize..MAX_ORDER)
            .map(|o| z.nr_free(o) << (o as u32 - order))
            .sum();
        if z.free_pages == 0 {
            return 0;
        }
        z.free_pages.saturating_sub(suitable << order) * 100 / z.free_pages
    }

    /// `compaction_suitable`: enough free memory to migrate into (order-0
    /// watermark plus `compact_gap` = 2 << order), and for a costly order a
    /// fragmentation index above `extfrag_threshold` (below it the failure is
    /// for lack of memory and reclaim is the answer).
    pub(crate) fn compaction_suitable(&self, zi: usize, order: u32, hz: usize) -> bool {
        let z = &self.zones[zi];
        let mark = if order > COSTLY_ORDER {
            z.pages_low
        } else {
            z.pages_min
        } + (2u64 << order);
        if !self.zone_watermark_ok(zi, 0, mark, hz, false, false) {
            return false;
        }
        if order > COSTLY_ORDER {
            let fi = self.fragmentation_index(zi, order);
            if (0..=self.cfg.extfrag_threshold as i64).contains(&fi) {
                return false;
            }
        }
        true
    }

    // ---- deferral ---------------------------------------------------------

    /// `defer_compaction`: after a failure at `order`, skip the next
    /// 1 << defer_shift attempts (up to 64).
    pub(super) fn defer_compaction(&mut self, zi: usize, order: u32) {
        let c = &mut self.zones[zi].compact;
        c.considered = 0;
        c.defer_shift = (c.defer_shift + 1).min(COMPACT_MAX_DEFER_SHIFT);
        if order < c.order_failed {
            c.order_failed = order;
        }
    }

    /// `compaction_deferred`: whether this attempt at `order` is skipped.
    pub(super) fn compaction_deferred(&mut self, zi: usize, order: u32) -> bool {
        let c = &mut self.zones[zi].compact;
        if order < c.order_failed {
            return false;
        }
        let limit = 1u32 << c.defer_shift;
        c.considered += 1;
        if c.considered >= limit {
            c.considered = limit;
            return false;
        }
        true
    }

    /// `compaction_defer_reset`: compaction at `order` worked.
    pub(super) fn compaction_defer_reset(&mut self, zi: usize, order: u32, alloc_success: bool) {
        let c = &mut self.zones[zi].compact;
        if alloc_success {
            c.considered = 0;
            c.defer_shift = 0;
        }
        if order >= c.order_failed {
            c.order_failed = order + 1;
        }
    }

    /// `compaction_restarting`: the zone was deferred as long as it can be
    /// for this order; start again from scratch.
    fn compaction_restarting(&self, zi: usize, order: i32) -> bool {
        let c = &self.zones[zi].compact;
        order >= 0
            && order as u32 >= c.order_failed
            && c.defer_shift == COMPACT_MAX_DEFER_SHIFT
            && c.considered >= 1 << COMPACT_MAX_DEFER_SHIFT
    }

    // ---- skip hints -------------------------------------------------------

    #[inline]
    fn skip_bit(&self, zi: usize, rel: u64) -> bool {
        let b = (rel >> self.compact_block_order()) as usize;
        self.zones[zi]
            .compact
            .skip
            .get(b / 64)
            .is_some_and(|w| w >> (b % 64) & 1 != 0)
    }

    #[inline]
    fn set_skip_bit(&mut self, zi: usize, rel: u64) {
        let b = (rel >> self.compact_block_order()) as usize;
        let nb = (self.zones[zi].spanned >> self.compact_block_order()) as usize + 1;
        let skip = &mut self.zones[zi].compact.skip;
        if skip.is_empty() {
            skip.resize(nb.div_ceil(64), 0);
        }
        skip[b / 64] |= 1 << (b % 64);
    }

    /// `__reset_isolation_suitable`: forget the skip hints and cached scanner
    /// positions of zone `zi`.
    fn reset_isolation_suitable(&mut self, zi: usize) {
        let c = &mut self.zones[zi].compact;
        c.skip.fill(0);
        c.blockskip_flush = false;
        c.cached_migrate_pfn = 0;
        c.cached_free_pfn = 0;
    }

    // ---- the scanners ------------------------------------------------------

    /// Zone-relative start of the zone's last pageblock (where the free scanner starts).
    #[inline]
    fn last_block_rel(&self, zi: usize) -> u64 {
        let cbo = self.compact_block_order();
        ((self.zones[zi].spanned - 1) >> cbo) << cbo
    }

    /// `compact_scanners_met`: both scanners in the same pageblock or crossed.
    #[inline]
    fn scanners_met(&self, cc: &CompactControl) -> bool {
        let cbo = self.compact_block_order();
        let zs = self.zones[cc.zi].start_pfn;
        (cc.free_pfn.saturating_sub(zs) >> cbo) <= ((cc.migrate_pfn - zs) >> cbo)
    }

    /// `__compact_finished`.
    fn compact_finished(&mut self, cc: &CompactControl) -> CompactResult {
        let zi = cc.zi;
        if self.scanners_met(cc) {
            let c = &mut self.zones[zi].compact;
            c.cached_migrate_pfn = 0;
            c.cached_free_pfn = 0;
            if cc.direct {
                c.blockskip_flush = true;
            }
            return if cc.whole_zone {
                CompactResult::Complete
            } else {
                CompactResult::PartialSkipped
            };
        }
        if cc.proactive {
            let node = self.zones[zi].node;
            return if self.fragmentation_score_node(node) > self.fragmentation_score_wmark(true) {
                CompactResult::Continue
            } else {
                CompactResult::Success
            };
        }
        if cc.order < 0 {
            return CompactResult::Continue;
        }
        // the request would now succeed here (a suitable free block above the
        // min watermark; any type, as the fallback may take it)
        let min = self.zones[zi].pages_min;
        if self.zone_watermark_ok(zi, cc.order as u32, min, cc.hz, false, false) {
            return CompactResult::Success;
        }
        CompactResult::Continue
    }

    /// `isolate_migratepages` for one pageblock at zone-relative `rel`:
    /// collect the heads of its movable blocks smaller than the target into
    /// the scratch list. Returns false when the block was skipped by hint or
    /// type (nothing scanned).
    fn isolate_migratepages_block(&mut self, cc: &CompactControl, rel: u64) -> bool {
        let zi = cc.zi;
        let cbo = self.compact_block_order();
        let z = &self.zones[zi];
        let (zs, spanned) = (z.start_pfn, z.spanned);
        if !cc.ignore_skip_hint && self.skip_bit(zi, rel) {
            return false;
        }
        if cc.asynchronous && self.policy == Policy::Mobility {
            // suitable_migration_source: async compaction for a movable
            // request migrates only out of movable pageblocks
            if z.block_type[(rel >> self.block_order) as usize] as usize != LT_USERRCLM {
                return false;
            }
        }
        // blocks of at least this order are left where they are
        let keep_order = if cc.order < 0 { cbo } else { cc.order as u32 };
        let start = zs + rel;
        let end = zs + (rel + (1u64 << cbo)).min(spanned);
        self.compact_scratch.migrate.clear();
        let mut p = start;
        let mut scanned = 0u64;
        while p < end {
            let f = self.flags[p as usize];
            let step = match kind(f) {
                K_FREE | K_ALLOC => 1u64 << forder(f),
                // the pageblock lies inside a larger block: nothing to do here
                K_TAIL if p == start => end - start,
                _ => 1,
            };
            if kind(f) == K_ALLOC
                && f & (F_LRU | F_OBJ) == (F_LRU | F_OBJ)
                && ftype(f) == LT_USERRCLM
                && forder(f) < keep_order
            {
                self.compact_scratch.migrate.push(p as u32);
            }
            scanned += step;
            p += step;
        }
        self.counters.compact_migrate_scanned += scanned.min(end - start);
        if self.compact_scratch.migrate.is_empty() {
            self.set_skip_bit(zi, rel);
        } else {
            self.counters.compact_isolated += self.compact_scratch.migrate.len() as u64;
        }
        true
    }

    /// `isolate_freepages`: walk pageblocks down from the free scanner until
    /// one gives free pages (or the scanners meet); its free blocks go to the
    /// scratch lists, off the buddy lists. A free block of a whole pageblock
    /// or more is never taken (`suitable_migration_target`), nor, under
    /// mobility, a free page in a pageblock that is not movable.
    fn isolate_freepages(&mut self, cc: &mut CompactControl) -> bool {
        let zi = cc.zi;
        let cbo = self.compact_block_order();
        let (zs, spanned) = (self.zones[zi].start_pfn, self.zones[zi].spanned);
        loop {
            if self.scanners_met(cc) {
                return false;
            }
            // scan the block at the free scanner, which then moves one block down
            let rel = cc.free_pfn - zs;
            cc.free_pfn -= 1 << cbo;
            if !cc.ignore_skip_hint && self.skip_bit(zi, rel) {
                continue;
            }
            if self.policy == Policy::Mobility
                && self.zones[zi].block_type[(rel >> self.block_order) as usize] as usize
                    != LT_USERRCLM
            {
                continue;
            }
            let start = zs + rel;
            let end = zs + (rel + (1u64 << cbo)).min(spanned);
            let f0 = self.flags[start as usize];
            if kind(f0) == K_TAIL || (kind(f0) == K_FREE && forder(f0) >= cbo) {
                continue;
            }
            let mut p = start;
            let mut isolated = 0u64;
            while p < end {
                let f = self.flags[p as usize];
                match kind(f) {
                    K_FREE => {
                        let o = forder(f);
                        self.del_free(zi, p as u32, o, ftype(f));
                        self.compact_scratch.free[o as usize].push(p as u32);
                        isolated += 1 << o;
                        p += 1 << o;
                    }
                    K_ALLOC => p += 1 << forder(f),
                    _ => p += 1,
                }
            }
            self.counters.compact_free_scanned += end - start;
            if isolated == 0 {
                self.set_skip_bit(zi, rel);
                continue;
            }
            self.counters.compact_isolated += isolated;
            return true;
        }
    }

    /// `compaction_alloc`: a free block of `order` from the isolated free
    /// pages, isolating more when none is big enough; the unused halves of a
    /// split stay isolated.
    fn compaction_alloc(&mut self, cc: &mut CompactControl, order: u32) -> Option<u32> {
        loop {
            if let Some(o) =
                (order as usize..MAX_ORDER).find(|&o| !self.compact_scratch.free[o].is_empty())
            {
                let p = self.compact_scratch.free[o].pop().unwrap();
                for h in (order as usize..o).rev() {
                    self.compact_scratch.free[h].push(p + (1 << h));
                }
                return Some(p);
            }
            if !self.isolate_freepages(cc) {
                return None;
            }
        }
    }

    /// `release_freepages`: the isolated free pages not used go back to the
    /// buddy lists.
    fn release_freepages(&mut self, zi: usize) {
        for o in 0..MAX_ORDER {
            while let Some(p) = self.compact_scratch.free[o].pop() {
                self.free_one_page(zi, p, o as u32, None);
            }
        }
    }

    /// `migrate_pages` of one block: the object holding the block at `old`
    /// moves to `new` with the same order and flags; the old block is freed.
    fn migrate_block(&mut self, zi: usize, old: u32, new: u32) {
        let f = self.flags[old as usize];
        let obj = self.next[old as usize];
        let order = forder(f);
        self.flags[new as usize] = f;
        self.next[new as usize] = obj;
        self.objs.pfn[obj as usize] = new;
        if let Some(o) = self.owner.as_mut() {
            o.on_migrate(old, new, crate::page_owner::MigrateReason::Compaction);
        }
        self.flags[old as usize] = K_TAIL;
        self.next[old as usize] = NONE;
        self.free_one_page(zi, old, order, None);
        self.counters.pgmigrate_success += 1 << order;
    }

    /// `compact_zone`: run the scanners over zone `zi` until they meet or
    /// [`Machine::compact_finished`] says stop.
    pub(super) fn compact_zone(&mut self, cc: &mut CompactControl) -> CompactResult {
        let zi = cc.zi;
        let cbo = self.compact_block_order();
        if self.zones[zi].compact.blockskip_flush || self.compaction_restarting(zi, cc.order) {
            self.reset_isolation_suitable(zi);
        }
        let zs = self.zones[zi].start_pfn;
        let last = zs + self.last_block_rel(zi);
        let c = &self.zones[zi].compact;
        if cc.whole_zone {
            cc.migrate_pfn = zs;
            cc.free_pfn = last;
        } else {
            cc.migrate_pfn = if c.cached_migrate_pfn == 0 {
                zs
            } else {
                c.cached_migrate_pfn
            };
            cc.free_pfn = if c.cached_free_pfn == 0 {
                last
            } else {
                c.cached_free_pfn
            };
            if cc.migrate_pfn == zs && cc.free_pfn == last {
                cc.whole_zone = true;
            }
        }
        let ret = loop {
            let r = self.compact_finished(cc);
            if r != CompactResult::Continue {
                break r;
            }
            let rel = cc.migrate_pfn - zs;
            let next = zs + (((rel >> cbo) + 1) << cbo);
            let scanned = self.isolate_migratepages_block(cc, rel);
            cc.migrate_pfn = next;
            if !scanned {
                continue;
            }
            let mut i = 0;
            while i < self.compact_scratch.migrate.len() {
                let old = self.compact_scratch.migrate[i];
                let order = forder(self.flags[old as usize]);
                let Some(new) = self.compaction_alloc(cc, order) else {
                    break;
                };
                self.migrate_block(zi, old, new);
                cc.migrated += 1 << order;
                i += 1;
            }
            if i < self.compact_scratch.migrate.len() {
                // out of free pages: the free scanner has met the migrate scanner
                cc.free_pfn = cc.free_pfn.min(cc.migrate_pfn);
            }
            if !cc.ignore_skip_hint {
                let c = &mut self.zones[zi].compact;
                c.cached_migrate_pfn = cc.migrate_pfn;
                c.cached_free_pfn = cc.free_pfn;
            }
        };
        self.release_freepages(zi);
        if cc.migrated > 0 {
            self.drain_zone_pages(zi);
        }
        ret
    }

    pub(super) fn new_cc(zi: usize, order: i32, hz: usize) -> CompactControl {
        CompactControl {
            zi,
            order,
            hz,
            migrate_pfn: 0,
            free_pfn: 0,
            whole_zone: false,
            ignore_skip_hint: false,
            asynchronous: false,
            direct: false,
            proactive: false,
            migrated: 0,
        }
    }

    // ---- direct compaction ------------------------------------------------

    /// `__alloc_pages_direct_compact`: compact the zonelist's zones for
    /// `order` (`try_to_compact_pages`), then try the free lists again.
    /// `asynchronous` is the first, lightest priority (before direct reclaim).
    pub(crate) fn alloc_pages_direct_compact(
        &mut self,
        node: usize,
        hz: usize,
        order: u32,
        t: usize,
        gfp_mask: u32,
        asynchronous: bool,
    ) -> Option<u32> {
        let mut rc = CompactResult::Skipped;
        for i in 0..self.zonelists[node][hz].len() {
            let zi = self.zonelists[node][hz][i] as usize;
            if !asynchronous && self.compaction_deferred(zi, order) {
                rc = rc.max(CompactResult::Deferred);
                continue;
            }
            if !self.compaction_suitable(zi, order, hz) {
                continue;
            }
            let mut cc = Self::new_cc(zi, order as i32, hz);
            cc.direct = true;
            cc.asynchronous = asynchronous;
            let status = self.compact_zone(&mut cc);
            rc = rc.max(status);
            if status == CompactResult::Success {
                self.compaction_defer_reset(zi, order, false);
                break;
            }
            if !asynchronous
                && matches!(
                    status,
                    CompactResult::Complete | CompactResult::PartialSkipped
                )
            {
                self.defer_compaction(zi, order);
            }
        }
        if rc == CompactResult::Skipped {
            return None;
        }
        self.counters.compact_stall += 1;
        let page = self.get_page_from_freelist(node, hz, order, t, gfp_mask, false);
        match page {
            Some(p) => {
                let zi = self.zone_of_pfn(p as u64);
                self.compaction_defer_reset(zi, order, true);
                self.counters.compact_success += 1;
            }
            None => self.counters.compact_fail += 1,
        }
        page
    }

    /// Direct reclaim for a high-order request when compaction is on
    /// (`shrink_node` looping on `should_continue_reclaim`, as it is since
    /// Linux 5.4, "mm, reclaim: make should_continue_reclaim perform dryrun
    /// detection"): after the SWAP_CLUSTER_MAX round, keep reclaiming the
    /// zonelist's zones, oldest first, SWAP_CLUSTER_MAX at a time, until the
    /// request would succeed at the min watermark or a zone is
    /// [`compaction_suitable`](Machine::compaction_suitable), stopping when a
    /// round reclaims nothing or the zone's LRU holds no more than
    /// `compact_gap` = 2 << order pages. Returns pages reclaimed.
    pub(crate) fn reclaim_for_compaction(&mut self, node: usize, hz: usize, order: u32) -> u64 {
        let gap = 2u64 << order;
        let n = self.zonelists[node][hz].len();
        let ready = |m: &Self| {
            (0..n).any(|i| {
                let zi = m.zonelists[node][hz][i] as usize;
                let min = m.zones[zi].pages_min;
                m.zone_watermark_ok(zi, order, min, hz, false, false)
                    || m.compaction_suitable(zi, order, hz)
            })
        };
        let mut got = 0;
        for i in 0..n {
            let zi = self.zonelists[node][hz][i] as usize;
            while !ready(self) && self.zones[zi].lru_pages > gap {
                let r = self.shrink_zone(zi, crate::SWAP_CLUSTER_MAX, false, false);
                if r == 0 {
                    break;
                }
                got += r;
            }
        }
        got
    }

    // ---- compact_memory ---------------------------------------------------

    /// Compact every zone (`order` = -1, as writing
    /// `/proc/sys/vm/compact_memory`), or each zone until it has a free block
    /// of `order`; returns the pages migrated. Works whether or not the
    /// machine was built with `compaction=True` (that switch is for the
    /// allocator and kcompactd).
    pub fn compact(&mut self, order: i32) -> Result<u64> {
        if !(-1..MAX_ORDER as i32).contains(&order) {
            return Err(Error::Order(format!(
                "compaction order {order} is out of range -1..{} (-1 = every zone, whole)",
                MAX_ORDER - 1
            )));
        }
        if self.policy == Policy::AntiFrag {
            return Err(Error::Config(
                "compaction applies to allocator=\"vanilla\" or \"mobility\"".into(),
            ));
        }
        let mut moved = 0;
        for zi in 0..self.zones.len() {
            let mut cc = Self::new_cc(zi, order, self.zones[zi].zt);
            cc.whole_zone = true;
            cc.ignore_skip_hint = true;
            self.compact_zone(&mut cc);
            moved += cc.migrated;
        }
        Ok(moved)
    }
}

/// Whether a request of `order` with `gfp` tries direct compaction before
/// direct reclaim (`__alloc_pages_slowpath`: costly orders, and non-movable
/// requests of any order above 0).
#[inline]
pub(crate) fn compact_first(order: u32, t: usize, gfp_mask: u32) -> bool {
    gfp_mask & gfp::__GFP_WAIT != 0 && (order > COSTLY_ORDER || (order > 0 && t != LT_USERRCLM))
}
