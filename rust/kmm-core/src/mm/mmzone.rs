//! Zones and their per-cpu lists (the kernel's `include/linux/mmzone.h`).

use super::page::{ListHead, NR_LISTS};
use crate::MAX_ORDER;

/// "No zone" in the (node, zone type) index.
pub(crate) const ZNONE: u16 = u16::MAX;

/// Per-cpu order-0 page lists of a zone on one CPU (`struct per_cpu_pages`).
#[derive(Debug, Clone, Default)]
pub struct Pcp {
    pub lists: [ListHead; 3],
    pub count: u32,
    pub batch: u32,
    pub high: u32,
}

/// A zone of one node (`struct zone`).
#[derive(Debug, Clone)]
pub struct Zone {
    pub node: usize,
    /// Zone type index in the layout (0 DMA, 1 Normal/DMA32, 2 HighMem/Normal).
    pub zt: usize,
    pub name: &'static str,
    /// kmm's frame for the zone's buddy arithmetic: pfns `start_pfn ..
    /// start_pfn + spanned`, all of kmm's zone-relative arithmetic (buddy
    /// pairs, alignment, pageblock indices) counts from `start_pfn`. A booted
    /// zone's frame is the zone; a zone from a real snapshot that starts off a
    /// maximum-order boundary (x86_64's DMA starts at pfn 1) has its frame
    /// start at the boundary below, so zone-relative alignment is the
    /// kernel's absolute alignment (`__find_buddy_pfn` is `pfn ^ (1 << order)`);
    /// the frame's pfns before `zone_start_pfn` are in no zone and reserved,
    /// so no block is ever made of them and no merge reaches them.
    pub start_pfn: u64,
    pub spanned: u64,
    /// The zone as the kernel has it (`zone_start_pfn`, `spanned_pages`):
    /// what `/proc/zoneinfo` and kmm's views show.
    pub zone_start_pfn: u64,
    pub spanned_pages: u64,
    pub present: u64,
    pub reserved: u64,
    /// Free pages on the buddy lists (pcp pages are not counted, as in the kernel).
    pub free_pages: u64,
    pub free_area: [[ListHead; MAX_ORDER]; NR_LISTS],
    /// Per list type, bit `o` set when `free_area[type][o]` is not empty.
    pub(crate) nonempty: [u16; NR_LISTS],
    pub pages_min: u64,
    pub pages_low: u64,
    pub pages_high: u64,
    pub lowmem_reserve: [u64; 3],
    /// The per-cpu lists of the CPU the machine runs on now (`Machine::cpu`).
    pub pcp: Pcp,
    /// Every CPU's lists, by CPU; the running CPU's slot holds an empty
    /// placeholder while its lists are in `pcp` (`Machine::switch_cpu`).
    pub pcp_parked: Vec<Pcp>,
    /// Usemap (antifrag: per maximum-order block) or pageblock migratetypes (mobility).
    pub block_type: Vec<u8>,
    /// 2.6.11's two LRU lists of trace objects holding reclaimable blocks in
    /// this zone (object ids, `mm::vmscan`): pages used more than once since
    /// they were last scanned sit on `active`, the rest on `inactive`.
    pub active: ListHead,
    pub inactive: ListHead,
    /// Pages on both lists (`nr_active + nr_inactive`), and on `active`.
    pub lru_pages: u64,
    pub active_pages: u64,
    /// The unevictable list (`LRU_UNEVICTABLE`): movable blocks reclaim
    /// cannot take (`TF_UNEVICTABLE`: mlocked, or anonymous and shmem pages
    /// with no swap); compaction still migrates them. Not in `lru_pages`.
    pub unevictable: ListHead,
    pub unevictable_pages: u64,
    /// `nr_scan_active`: active pages owed a scan, in units of inactive pages
    /// (the active list is scanned in proportion to the inactive one).
    pub(crate) scan_credit: u64,
    /// Pages of the inactive list scanned since boot (the per-zone
    /// `pgscan_*_{dma,normal,high}` of 2.6.11, kswapd and direct together).
    pub pgscan: u64,
    /// kswapd was woken for this zone at this order (-1: asleep).
    pub kswapd_order: i32,
    /// `nr_scan_inactive` of 2.6.11's kswapd: pages this zone is owed at
    /// `DEF_PRIORITY`, `(lru >> 12) + 1` a `balance_pgdat` pass, reclaimed
    /// once they reach `SWAP_CLUSTER_MAX` (`mm::vmscan`).
    pub(crate) kswapd_scan: u64,
    /// Mapped pages in this zone (2.6.11's `nr_mapped`, per zone here; the
    /// kernel's is global and kmm sums the zones): blocks of trace objects
    /// that belong to their task (`TF_TASK`) on any of the zone's lists,
    /// i.e. anonymous memory, `page_mapped` and `PageAnon` (`mm::swap`).
    pub nr_mapped: u64,
    /// Of `nr_mapped`, the pages on `active`/`inactive` (not unevictable):
    /// with no swap, reclaim cannot free them (`mm::vmscan`).
    pub anon_lru: u64,
    /// `zone->prev_priority` of 2.6.11: the scanning priority at which the
    /// last `try_to_free_pages` or `balance_pgdat` met its target here
    /// (`DEF_PRIORITY`, 12, at boot); `distress = 100 >> prev_priority`.
    pub prev_priority: u32,
    /// `zone->temp_priority`: the priority this zone was last scanned at in
    /// the reclaim run under way, copied to `prev_priority` at its end.
    pub(crate) temp_priority: u32,
    /// Compaction state (`mm::compaction`).
    pub compact: ZoneCompact,
}

/// A zone's compaction state (the `compact_*` fields of `struct zone` and the
/// pageblock skip bits).
#[derive(Debug, Clone, Default)]
pub struct ZoneCompact {
    /// Where the next direct compaction's migrate scanner starts (0 = zone start).
    pub cached_migrate_pfn: u64,
    /// Where the next free scanner starts (0 = the zone's last pageblock).
    pub cached_free_pfn: u64,
    /// `compact_considered`, `compact_defer_shift`, `compact_order_failed`.
    pub considered: u32,
    pub defer_shift: u32,
    pub order_failed: u32,
    /// The scanners met: clear the skip bits before the next run.
    pub blockskip_flush: bool,
    /// `PB_migrate_skip`, one bit per pageblock (sized on first use).
    pub skip: Vec<u64>,
    /// kcompactd was woken for this zone at this order (-1: asleep).
    pub kcompactd_order: i32,
    /// `watermark_boost`: pages added to min, low and high.
    pub watermark_boost: u64,
    /// Pages kswapd has reclaimed here since it was woken for a high order
    /// (`balance_pgdat`'s `sc.nr_reclaimed`).
    pub kswapd_reclaimed: u64,
}

impl Zone {
    /// An empty zone (no free page, no watermark yet) of zone type `zt` in
    /// `node`, spanning `spanned` pfns from `start_pfn` of which `present`
    /// exist, with `nr_blocks` pageblock types (0: the policy keeps none).
    pub fn new(
        node: usize,
        zt: usize,
        name: &'static str,
        start_pfn: u64,
        spanned: u64,
        present: u64,
        nr_blocks: usize,
    ) -> Zone {
        Zone {
            node,
            zt,
            name,
            start_pfn,
            spanned,
            zone_start_pfn: start_pfn,
            spanned_pages: spanned,
            present,
            reserved: 0,
            free_pages: 0,
            free_area: [[ListHead::default(); MAX_ORDER]; NR_LISTS],
            nonempty: [0; NR_LISTS],
            pages_min: 0,
            pages_low: 0,
            pages_high: 0,
            lowmem_reserve: [0; 3],
            pcp: Pcp::default(),
            pcp_parked: Vec::new(),
            block_type: vec![0u8; nr_blocks],
            active: ListHead::default(),
            inactive: ListHead::default(),
            lru_pages: 0,
            active_pages: 0,
            unevictable: ListHead::default(),
            unevictable_pages: 0,
            scan_credit: 0,
            pgscan: 0,
            kswapd_order: -1,
            kswapd_scan: 0,
            nr_mapped: 0,
            anon_lru: 0,
            prev_priority: 12,
            temp_priority: 12,
            compact: ZoneCompact {
                kcompactd_order: -1,
                ..ZoneCompact::default()
            },
        }
    }

    #[inline]
    pub fn end_pfn(&self) -> u64 {
        self.start_pfn + self.spanned
    }

    /// Free blocks of `order` on all of the zone's lists.
    pub fn nr_free(&self, order: usize) -> u64 {
        (0..NR_LISTS)
            .map(|t| self.free_area[t][order].nr as u64)
            .sum()
    }
}
