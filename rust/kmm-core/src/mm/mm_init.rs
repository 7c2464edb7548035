//! Boot (the kernel's `mm_init.c` and `free_area_init`): nodes and zones,
//! `build_zonelists`, the boot reservations, and `memmap_init` freeing the
//! rest as the largest aligned blocks.

use super::events::Counters;
use super::machine::Machine;
use super::mmzone::{Zone, ZNONE};
use super::objects::Objects;
use super::page::{kind, mkflags, pfn_array, K_RESERVED};
use super::policy::has_block_types;
use crate::config::{MachineConfig, Policy};
use crate::error::{Error, Result};
use crate::{MAX_ORDER, PAGE_SHIFT};

impl Machine {
    /// Boot a machine: lay out nodes and zones, reserve boot memory, free the rest
    /// as the largest aligned blocks, compute watermarks and lowmem_reserve.
    pub fn new(cfg: MachineConfig) -> Result<Machine> {
        let node_pages = cfg.validate()?;
        let nr_pages = cfg.mem_bytes >> PAGE_SHIFT;
        host_memory_check(nr_pages, cfg.page_owner)?;
        let block_order = cfg.effective_pageblock_order();
        let (zones, zone_index, node_ranges) =
            free_area_init(&cfg, &node_pages, block_order, cfg.policy);
        let zonelists = build_zonelists(&cfg, &zone_index);
        let reserved = boot_reservations(&cfg, &node_ranges);

        let mut m = Machine::empty(cfg, zones, zone_index, zonelists, 0u16);

        for &(s, e) in &reserved {
            for pfn in s..e.min(nr_pages) {
                m.flags[pfn as usize] = mkflags(K_RESERVED, 0, 0);
            }
        }
        for zi in 0..m.zones.len() {
            let (zs, ze) = (m.zones[zi].start_pfn, m.zones[zi].end_pfn());
            m.zones[zi].reserved = reserved
                .iter()
                .map(|&(s, e)| e.min(ze).saturating_sub(s.max(zs)))
                .sum();
            m.memmap_init_zone(zi, &reserved);
        }
        if m.cfg.page_owner {
            m.owner = Some(crate::page_owner::PageOwner::new(
                nr_pages,
                m.cfg.page_owner_free_stacks,
            ));
        }
        m.setup_per_zone_wmarks();
        m.setup_per_zone_lowmem_reserve();
        m.setup_pagesets();
        m.policy_init();
        Ok(m)
    }

    /// A machine of `zones` with every page's flag word `flags` and nothing
    /// else set up yet: the part of boot that [`Machine::new`] and a machine
    /// built from a real snapshot share. `nofragment` is decided here, once
    /// the config is known.
    pub(super) fn empty(
        cfg: MachineConfig,
        zones: Vec<Zone>,
        zone_index: Vec<[u16; 3]>,
        zonelists: Vec<[Vec<u16>; 3]>,
        flags: u16,
    ) -> Machine {
        let nr_pages = cfg.mem_bytes >> PAGE_SHIFT;
        let n = nr_pages as usize;
        let mut m = Machine {
            layout: cfg.layout,
            policy: cfg.policy,
            block_order: cfg.effective_pageblock_order(),
            nr_nodes: cfg.nodes,
            nr_pages,
            zone_starts: zones.iter().map(|z| z.start_pfn).collect(),
            zones,
            zone_index,
            zonelists,
            flags: pfn_array(n, flags),
            // links start zeroed (lazily mapped); only list members are ever read
            next: pfn_array(n, 0u32),
            prev: pfn_array(n, 0u32),
            objs: Objects::default(),
            slab: Default::default(),
            oom_killed: Default::default(),
            counters: Counters::default(),
            now_ns: 0,
            fallback_reserve_blocks: Vec::new(),
            kswapd_credit_ns: 0,
            owner: None,
            compact_scratch: Default::default(),
            nofragment: false,
            extfrag_log: cfg.trace_extfrag.then(Vec::new),
            current_pid: 0,
            cpu: 0,
            cfg,
        };
        m.nofragment = m.alloc_flags_nofragment();
        m
    }

    /// `memmap_init_zone` and the boot-time free: mark the pageblocks as the
    /// policy wants, then free every unreserved page of the zone as the largest
    /// aligned block that overlaps no reservation.
    fn memmap_init_zone(&mut self, zi: usize, reserved: &[(u64, u64)]) {
        self.memmap_init_block_types(zi);
        let (zs, spanned) = (self.zones[zi].start_pfn, self.zones[zi].spanned);
        let overlaps = |a: u64, b: u64| reserved.iter().any(|&(s, e)| s < b && a < e);
        let mut rel = 0u64;
        while rel < spanned {
            let pfn = zs + rel;
            if kind(self.flags[pfn as usize]) == K_RESERVED {
                rel += 1;
                continue;
            }
            let mut o = (MAX_ORDER - 1) as u32;
            loop {
                let size = 1u64 << o;
                if rel % size == 0 && rel + size <= spanned && !overlaps(pfn, pfn + size) {
                    break;
                }
                o -= 1;
            }
            let lt = self.boot_free_type(zi, rel, o);
            self.add_free(zi, pfn as u32, o, lt);
            rel += 1 << o;
        }
    }
}

/// `free_area_init_node` for every node: the zones each node's pfn range
/// covers, the (node, zone type) -> zone index, and each node's pfn range.
#[allow(clippy::type_complexity)]
fn free_area_init(
    cfg: &MachineConfig,
    node_pages: &[u64],
    block_order: u32,
    policy: Policy,
) -> (Vec<Zone>, Vec<[u16; 3]>, Vec<(u64, u64)>) {
    let limits = cfg.layout.zone_limits();
    let names = cfg.layout.zone_names();
    let mut zones: Vec<Zone> = Vec::new();
    let mut zone_index = vec![[ZNONE; 3]; cfg.nodes];
    let mut node_start = 0u64;
    let mut node_ranges = Vec::new();
    for (nid, &np) in node_pages.iter().enumerate() {
        let node_end = node_start + np;
        node_ranges.push((node_start, node_end));
        let mut zlo = 0u64;
        for zt in 0..3 {
            let zhi = limits[zt];
            let s = node_start.max(zlo);
            let e = node_end.min(zhi);
            if e > s {
                zone_index[nid][zt] = zones.len() as u16;
                let nblocks = ((e - s) >> block_order) + 1;
                let nr_blocks = if has_block_types(policy) {
                    nblocks as usize
                } else {
                    0
                };
                zones.push(Zone::new(nid, zt, names[zt], s, e - s, e - s, nr_blocks));
            }
            zlo = zhi;
        }
        node_start = node_end;
    }
    (zones, zone_index, node_ranges)
}

/// `build_zonelists`: per node and highest allowed zone type, the zones to try:
/// the local node first, then by distance; within a node from the highest
/// allowed zone down.
pub(super) fn build_zonelists(cfg: &MachineConfig, zone_index: &[[u16; 3]]) -> Vec<[Vec<u16>; 3]> {
    let mut zonelists = Vec::new();
    for nid in 0..cfg.nodes {
        let mut order: Vec<usize> = (0..cfg.nodes).collect();
        order.sort_by_key(|&n| (cfg.distance(nid, n), if n == nid { 0 } else { 1 }, n));
        let mut lists: [Vec<u16>; 3] = Default::default();
        for (hz, list) in lists.iter_mut().enumerate() {
            for &n in &order {
                for zt in (0..=hz).rev() {
                    if zone_index[n][zt] != ZNONE {
                        list.push(zone_index[n][zt]);
                    }
                }
            }
        }
        zonelists.push(lists);
    }
    zonelists
}

/// The boot reservations, as sorted pfn ranges: page 0, the ISA hole, the
/// kernel image at 1 MiB, and each node's mem_map (struct page per page) at the
/// start of its memory (node 0's above 16 MiB when it fits, bootmem's goal of
/// MAX_DMA_ADDRESS).
fn boot_reservations(cfg: &MachineConfig, node_ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let layout = cfg.layout;
    let mut reserved: Vec<(u64, u64)> = vec![(0, 1), (160, 256)];
    let kimg = cfg.kernel_image_bytes >> PAGE_SHIFT;
    let mut cursor = 256 + kimg;
    reserved.push((256, cursor));
    let dma_end = layout.zone_limits()[0];
    for (nid, &(s, e)) in node_ranges.iter().enumerate() {
        let memmap_pages = ((e - s) * layout.struct_page_size()).div_ceil(1 << PAGE_SHIFT);
        let start = if nid == 0 {
            if e >= dma_end + memmap_pages + (8 << 8) {
                cursor.max(dma_end)
            } else {
                cursor
            }
        } else {
            s
        };
        let end = (start + memmap_pages).min(e);
        reserved.push((start, end));
        if nid == 0 {
            cursor = end;
        }
    }
    reserved.sort();
    reserved
}

/// Bytes of host memory per simulated page: the flag word and the two list
/// links, and page_owner's per-page context and timestamp.
const BYTES_PER_PAGE: u64 = 2 + 4 + 4;
const OWNER_BYTES_PER_PAGE: u64 = 4 + 2;

/// Refuse a machine whose per-page arrays the host cannot hold (memory
/// available plus free swap, and the address-space limit), before allocating
/// any: an allocation failure would abort the process.
fn host_memory_check(nr_pages: u64, page_owner: bool) -> Result<()> {
    let per = BYTES_PER_PAGE + if page_owner { OWNER_BYTES_PER_PAGE } else { 0 };
    let need = nr_pages.saturating_mul(per);
    if let Some(have) = super::page::host_bytes_available() {
        if need > have {
            return Err(Error::Config(format!(
                "a machine of {nr_pages} pages needs {} MiB of host memory for its page arrays{}; this host has {} MiB available",
                need >> 20,
                if page_owner { " (with page_owner)" } else { "" },
                have >> 20
            )));
        }
    }
    Ok(())
}
