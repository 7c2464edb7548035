//! The simulated machine (the kernel's `pglist_data`s and `mem_map` in one):
//! the struct and its small accessors. Each mechanism adds its own
//! `impl Machine` in the file named for it.

use super::events::Counters;
use super::mmzone::Zone;
use super::objects::Objects;
use crate::config::{Layout, MachineConfig, Policy};
use crate::gfp;

/// The simulated machine.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cfg: MachineConfig,
    pub layout: Layout,
    pub policy: Policy,
    /// Order of the unit that carries a type: usemap block (antifrag), pageblock (mobility).
    pub block_order: u32,
    pub nr_nodes: usize,
    pub nr_pages: u64,
    pub zones: Vec<Zone>,
    /// (node, zone type) -> index in `zones`.
    pub(crate) zone_index: Vec<[u16; 3]>,
    /// [node][highest zone type] -> zones to try, in order.
    pub(crate) zonelists: Vec<[Vec<u16>; 3]>,
    pub(crate) zone_starts: Vec<u64>,
    /// The memory map, one entry per pfn: the flag word (`mm::page`) and the list
    /// links (`page->lru`; an allocated trace block keeps its object id in `next`).
    pub(crate) flags: Vec<u16>,
    pub(crate) next: Vec<u32>,
    pub(crate) prev: Vec<u32>,
    pub(crate) objs: Objects,
    pub counters: Counters,
    pub now_ns: u64,
    /// Antifrag v8 reserve, in maximum-order blocks, per zone.
    pub(crate) fallback_reserve_blocks: Vec<u64>,
    pub(crate) kswapd_credit_ns: u64,
    /// page_owner records (None unless the machine was built with page_owner).
    pub owner: Option<crate::page_owner::PageOwner>,
    /// Compaction's reusable scanner lists and kcompactd's clock.
    pub(crate) compact_scratch: super::compaction::CompactScratch,
    /// Whether allocations ask for `ALLOC_NOFRAGMENT` (fallbacks only take
    /// whole pageblocks), decided at boot (on with compaction, see
    /// `mm::compaction`); each pass passes it down as a parameter.
    pub(crate) nofragment: bool,
    /// Slab caches (`mm::slab`).
    pub(crate) slab: super::slab::Slabs,
    /// `mm_page_alloc_extfrag` events, when the machine keeps them (`trace_extfrag`).
    pub extfrag_log: Option<Vec<super::events::ExtfragEvent>>,
    /// The pid of the trace record being applied (the kernel's `current`).
    pub(crate) current_pid: u32,
    /// The CPU the machine runs on now (`smp_processor_id()`): whose per-cpu
    /// lists are in each zone's `pcp` (`mm::pcp`).
    pub(crate) cpu: u32,
    /// Tasks (tgids) the OOM killer killed: their later trace work is dropped.
    pub(crate) oom_killed: std::collections::HashSet<u32>,
}

impl Machine {
    /// Index in `zones` of the zone holding `pfn` (`page_zone`).
    #[inline]
    pub fn zone_of_pfn(&self, pfn: u64) -> usize {
        let starts = &self.zone_starts;
        if let [_, s1, s2] = starts[..] {
            // one node's three zones (both layouts): two compares, no loop
            return (s1 <= pfn) as usize + (s2 <= pfn) as usize;
        }
        if starts.len() <= 8 {
            // a few zones: count the later zones starting at or below `pfn`
            // (compares that do not wait on each other, as a search's steps do)
            starts[1..].iter().filter(|&&s| s <= pfn).count()
        } else {
            starts.partition_point(|&s| s <= pfn) - 1
        }
    }

    /// Index of `pfn`'s pageblock (usemap block) in its zone's `block_type`.
    #[inline]
    pub(crate) fn block_index(&self, zi: usize, pfn: u32) -> usize {
        ((pfn as u64 - self.zones[zi].start_pfn) >> self.block_order) as usize
    }

    /// Highest zone type the mask allows (`gfp_zone`).
    #[inline]
    pub fn gfp_zone(&self, gfp: u32) -> usize {
        if gfp & gfp::__GFP_DMA != 0 {
            0
        } else if gfp & gfp::__GFP_DMA32 != 0 {
            1
        } else if gfp & gfp::__GFP_HIGHMEM != 0 {
            2
        } else {
            match self.layout {
                Layout::X86_32 => 1,
                Layout::X86_64 => 2,
            }
        }
    }

    /// The zones an allocation from `node` with `gfp` tries, in order (`node_zonelist`).
    pub fn zonelist(&self, node: usize, gfp: u32) -> &[u16] {
        &self.zonelists[node][self.gfp_zone(gfp)]
    }

    /// The flag word of `pfn` (`mm::page` encoding).
    pub fn page_flags(&self, pfn: u64) -> u16 {
        self.flags[pfn as usize]
    }

    /// One past the largest trace object id that holds a slot (0 when none does).
    pub fn objects_len(&self) -> usize {
        self.objs.ids_end()
    }
}
