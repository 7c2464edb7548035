//! The machine: nodes, zones, the per-page arrays, the allocator policies,
//! per-cpu lists, LRU reclaim and active freeing.

use crate::config::{Layout, MachineConfig, Policy};
use crate::error::{Error, Result};
use crate::gfp::{self, AllocType};
use crate::{MAX_ORDER, NONE, PAGE_SHIFT, SWAP_CLUSTER_MAX};

// ---- per-page flags (u16) -------------------------------------------------
// bits 0-2 kind, 3-6 order, 7-9 list/alloc type, 10 on-LRU, 11 owned by a trace object
pub(crate) const KIND_MASK: u16 = 0b111;
pub(crate) const K_TAIL: u16 = 0;
pub(crate) const K_FREE: u16 = 1;
pub(crate) const K_ALLOC: u16 = 2;
pub(crate) const K_PCP: u16 = 3;
pub(crate) const K_RESERVED: u16 = 4;
const ORDER_SHIFT: u16 = 3;
const TYPE_SHIFT: u16 = 7;
pub(crate) const F_LRU: u16 = 1 << 10;
pub(crate) const F_OBJ: u16 = 1 << 11;

#[inline]
pub(crate) fn kind(f: u16) -> u16 {
    f & KIND_MASK
}
#[inline]
pub(crate) fn forder(f: u16) -> u32 {
    ((f >> ORDER_SHIFT) & 0xf) as u32
}
#[inline]
pub(crate) fn ftype(f: u16) -> usize {
    ((f >> TYPE_SHIFT) & 0x7) as usize
}
#[inline]
fn mkflags(k: u16, order: u32, t: usize) -> u16 {
    k | ((order as u16) << ORDER_SHIFT) | ((t as u16) << TYPE_SHIFT)
}

// ---- free list types ------------------------------------------------------
/// KernNoRclm (2005) / Unmovable (today); vanilla keeps all free blocks here.
pub const LT_NORCLM: usize = 0;
/// KernRclm / Reclaimable.
pub const LT_KERNRCLM: usize = 1;
/// UserRclm / Movable.
pub const LT_USERRCLM: usize = 2;
/// Antifrag v8 fallback reserve blocks.
pub const LT_FALLBACK: usize = 3;
/// Antifrag `free_area_global`: maximum-order blocks owned by no type.
pub const LT_GLOBAL: usize = 4;
pub const NR_LISTS: usize = 5;

/// `page_map()` codes.
pub const PM_FREE: u8 = 0;
pub const PM_PCP: u8 = 1;
pub const PM_RESERVED: u8 = 2;
/// Allocated pages: `PM_ALLOC + AllocType` (3 KernNoRclm, 4 KernRclm, 5 UserRclm).
pub const PM_ALLOC: u8 = 3;

/// v7 fallback order (FACTS 2).
const ANTIFRAG_FALLBACK: [[usize; 2]; 3] = [
    [LT_KERNRCLM, LT_USERRCLM],
    [LT_NORCLM, LT_USERRCLM],
    [LT_NORCLM, LT_KERNRCLM],
];
/// Modern fallback table (FACTS 3), in kmm type numbering.
const MOBILITY_FALLBACK: [[usize; 2]; 3] = [
    [LT_KERNRCLM, LT_USERRCLM], // Unmovable -> Reclaimable, Movable
    [LT_NORCLM, LT_USERRCLM],   // Reclaimable -> Unmovable, Movable
    [LT_KERNRCLM, LT_NORCLM],   // Movable -> Reclaimable, Unmovable
];

/// An intrusive doubly linked list over pfns (or object ids, for the LRU).
#[derive(Debug, Clone, Copy)]
pub struct ListHead {
    pub head: u32,
    pub tail: u32,
    pub nr: u32,
}

impl Default for ListHead {
    fn default() -> Self {
        ListHead {
            head: NONE,
            tail: NONE,
            nr: 0,
        }
    }
}

#[inline]
fn list_add(next: &mut [u32], prev: &mut [u32], l: &mut ListHead, x: u32) {
    prev[x as usize] = NONE;
    next[x as usize] = l.head;
    if l.head != NONE {
        prev[l.head as usize] = x;
    } else {
        l.tail = x;
    }
    l.head = x;
    l.nr += 1;
}

#[inline]
fn list_add_tail(next: &mut [u32], prev: &mut [u32], l: &mut ListHead, x: u32) {
    next[x as usize] = NONE;
    prev[x as usize] = l.tail;
    if l.tail != NONE {
        next[l.tail as usize] = x;
    } else {
        l.head = x;
    }
    l.tail = x;
    l.nr += 1;
}

#[inline]
fn list_del(next: &mut [u32], prev: &mut [u32], l: &mut ListHead, x: u32) {
    let n = next[x as usize];
    let p = prev[x as usize];
    if p != NONE {
        next[p as usize] = n;
    } else {
        l.head = n;
    }
    if n != NONE {
        prev[n as usize] = p;
    } else {
        l.tail = p;
    }
    l.nr -= 1;
}

/// Per-cpu order-0 page lists of a zone (one CPU is modelled).
#[derive(Debug, Clone, Default)]
pub struct Pcp {
    pub lists: [ListHead; 3],
    pub count: u32,
    pub batch: u32,
    pub high: u32,
}

/// A zone of one node.
#[derive(Debug, Clone)]
pub struct Zone {
    pub node: usize,
    /// Zone type index in the layout (0 DMA, 1 Normal/DMA32, 2 HighMem/Normal).
    pub zt: usize,
    pub name: &'static str,
    pub start_pfn: u64,
    pub spanned: u64,
    pub present: u64,
    pub reserved: u64,
    /// Free pages on the buddy lists (pcp pages are not counted, as in the kernel).
    pub free_pages: u64,
    pub free_area: [[ListHead; MAX_ORDER]; NR_LISTS],
    nonempty: [u16; NR_LISTS],
    pub pages_min: u64,
    pub pages_low: u64,
    pub pages_high: u64,
    pub lowmem_reserve: [u64; 3],
    pub pcp: Pcp,
    /// Usemap (antifrag: per maximum-order block) or pageblock migratetypes (mobility).
    pub block_type: Vec<u8>,
    /// LRU of trace objects holding reclaimable blocks in this zone (object ids).
    pub lru: ListHead,
    pub lru_pages: u64,
    /// kswapd was woken for this zone at this order (-1: asleep).
    pub kswapd_order: i32,
}

impl Zone {
    #[inline]
    pub fn end_pfn(&self) -> u64 {
        self.start_pfn + self.spanned
    }
    pub fn nr_free(&self, order: usize) -> u64 {
        (0..NR_LISTS)
            .map(|t| self.free_area[t][order].nr as u64)
            .sum()
    }
}

/// Event counters, named as the kernel's vmstat where there is one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub alloc: u64,
    pub alloc_fail: u64,
    pub free: u64,
    /// A trace freed an object whose allocation had failed.
    pub free_noop: u64,
    /// A trace freed an object that reclaim had already taken.
    pub free_reclaimed: u64,
    pub touch: u64,
    pub refaults: u64,
    pub refault_fail: u64,
    pub pgscan_kswapd: u64,
    pub pgscan_direct: u64,
    pub pgsteal_kswapd: u64,
    pub pgsteal_direct: u64,
    pub allocstall: u64,
    pub kswapd_wakeups: u64,
    pub fallbacks: u64,
    pub steals: u64,
    pub pageblock_relabels: u64,
    pub global_takes: u64,
    pub pcp_refills: u64,
    pub pcp_drains: u64,
    pub active_free_attempts: u64,
    pub active_free_success: u64,
    pub active_free_pages: u64,
}

impl Counters {
    pub fn as_pairs(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("alloc", self.alloc),
            ("alloc_fail", self.alloc_fail),
            ("free", self.free),
            ("free_noop", self.free_noop),
            ("free_reclaimed", self.free_reclaimed),
            ("touch", self.touch),
            ("refaults", self.refaults),
            ("refault_fail", self.refault_fail),
            ("pgscan", self.pgscan_kswapd + self.pgscan_direct),
            ("pgscan_kswapd", self.pgscan_kswapd),
            ("pgscan_direct", self.pgscan_direct),
            ("pgsteal", self.pgsteal_kswapd + self.pgsteal_direct),
            ("pgsteal_kswapd", self.pgsteal_kswapd),
            ("pgsteal_direct", self.pgsteal_direct),
            ("allocstall", self.allocstall),
            ("kswapd_wakeups", self.kswapd_wakeups),
            ("fallbacks", self.fallbacks),
            ("steals", self.steals),
            ("pageblock_relabels", self.pageblock_relabels),
            ("global_takes", self.global_takes),
            ("pcp_refills", self.pcp_refills),
            ("pcp_drains", self.pcp_drains),
            ("active_free_attempts", self.active_free_attempts),
            ("active_free_success", self.active_free_success),
            ("active_free_pages", self.active_free_pages),
        ]
    }
}

/// Zone statistics as plain data.
#[derive(Debug, Clone)]
pub struct ZoneStats {
    pub node: usize,
    pub zone: &'static str,
    pub start_pfn: u64,
    pub spanned: u64,
    pub present: u64,
    pub managed: u64,
    pub free: u64,
    pub pcp: u64,
    pub min: u64,
    pub low: u64,
    pub high: u64,
    pub lowmem_reserve: [u64; 3],
    pub lru_pages: u64,
}

/// Trace objects: which block each holds, its flags, and its LRU links.
#[derive(Debug, Default, Clone)]
pub(crate) struct Objects {
    pub pfn: Vec<u32>,
    pub gfp: Vec<u32>,
    pub order: Vec<u8>,
    /// OBJ_LIVE: between OP_ALLOC and OP_FREE in the trace; OBJ_RECLAIMED.
    pub state: Vec<u8>,
    pub lru_next: Vec<u32>,
    pub lru_prev: Vec<u32>,
}
pub(crate) const OBJ_LIVE: u8 = 1;
pub(crate) const OBJ_RECLAIMED: u8 = 2;

impl Objects {
    pub fn ensure(&mut self, n: usize) {
        if self.pfn.len() < n {
            self.pfn.resize(n, NONE);
            self.gfp.resize(n, 0);
            self.order.resize(n, 0);
            self.state.resize(n, 0);
            self.lru_next.resize(n, NONE);
            self.lru_prev.resize(n, NONE);
        }
    }
    pub fn len(&self) -> usize {
        self.pfn.len()
    }
    /// Shrink back to `n` objects (undoing an `ensure` for a rejected trace).
    pub fn truncate(&mut self, n: usize) {
        self.pfn.truncate(n);
        self.gfp.truncate(n);
        self.order.truncate(n);
        self.state.truncate(n);
        self.lru_next.truncate(n);
        self.lru_prev.truncate(n);
    }
}

/// Who asked for an allocation: used by page_owner (issue-level: pid/tgid/stack).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllocCtx {
    pub stack: u32,
    pub pid: u32,
    pub tgid: u32,
}

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
    zone_index: Vec<[u16; 3]>,
    /// [node][highest zone type] -> zones to try, in order.
    zonelists: Vec<[Vec<u16>; 3]>,
    zone_starts: Vec<u64>,
    pub(crate) flags: Vec<u16>,
    pub(crate) next: Vec<u32>,
    pub(crate) prev: Vec<u32>,
    pub(crate) objs: Objects,
    pub counters: Counters,
    pub now_ns: u64,
    /// Antifrag v8 reserve, in maximum-order blocks, per zone.
    fallback_reserve_blocks: Vec<u64>,
    kswapd_credit_ns: u64,
    /// page_owner records (None unless the machine was built with page_owner).
    pub owner: Option<crate::page_owner::PageOwner>,
}

const ZNONE: u16 = u16::MAX;

impl Machine {
    /// Boot a machine: lay out nodes and zones, reserve boot memory, free the rest
    /// as the largest aligned blocks, compute watermarks and lowmem_reserve.
    pub fn new(cfg: MachineConfig) -> Result<Machine> {
        let node_pages = cfg.validate()?;
        let layout = cfg.layout;
        let nr_pages = cfg.mem_bytes >> PAGE_SHIFT;
        let policy = cfg.policy;
        let block_order = cfg.effective_pageblock_order();
        let limits = layout.zone_limits();
        let names = layout.zone_names();

        // zones
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
                    zones.push(Zone {
                        node: nid,
                        zt,
                        name: names[zt],
                        start_pfn: s,
                        spanned: e - s,
                        present: e - s,
                        reserved: 0,
                        free_pages: 0,
                        free_area: [[ListHead::default(); MAX_ORDER]; NR_LISTS],
                        nonempty: [0; NR_LISTS],
                        pages_min: 0,
                        pages_low: 0,
                        pages_high: 0,
                        lowmem_reserve: [0; 3],
                        pcp: Pcp::default(),
                        block_type: if policy == Policy::Vanilla {
                            Vec::new()
                        } else {
                            vec![0u8; nblocks as usize]
                        },
                        lru: ListHead::default(),
                        lru_pages: 0,
                        kswapd_order: -1,
                    });
                }
                zlo = zhi;
            }
            node_start = node_end;
        }
        let zone_starts = zones.iter().map(|z| z.start_pfn).collect();

        // zonelists: local node first, then by distance; within a node from the
        // highest allowed zone down
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

        // boot reservations: page 0, the ISA hole, the kernel image at 1 MiB, and
        // each node's mem_map (struct page per page) at the start of its memory
        let mut reserved: Vec<(u64, u64)> = vec![(0, 1), (160, 256)];
        let kimg = cfg.kernel_image_bytes >> PAGE_SHIFT;
        let mut cursor = 256 + kimg;
        reserved.push((256, cursor));
        for (nid, &(s, e)) in node_ranges.iter().enumerate() {
            let memmap_pages = ((e - s) * layout.struct_page_size()).div_ceil(1 << PAGE_SHIFT);
            // bootmem's goal is MAX_DMA_ADDRESS: mem_map is placed above 16 MiB when it can be
            let dma_end = layout.zone_limits()[0];
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
        let _ = cursor;
        reserved.sort();

        let n = nr_pages as usize;
        let mut m = Machine {
            layout,
            policy,
            block_order,
            nr_nodes: cfg.nodes,
            nr_pages,
            zones,
            zone_index,
            zonelists,
            zone_starts,
            flags: pfn_array(n, 0u16),
            next: Vec::new(),
            prev: Vec::new(),
            objs: Objects::default(),
            counters: Counters::default(),
            now_ns: 0,
            fallback_reserve_blocks: Vec::new(),
            kswapd_credit_ns: 0,
            owner: None,
            cfg,
        };
        // links start zeroed (lazily mapped); only list members are ever read
        m.next = pfn_array(n, 0u32);
        m.prev = pfn_array(n, 0u32);

        for &(s, e) in &reserved {
            for pfn in s..e.min(nr_pages) {
                m.flags[pfn as usize] = mkflags(K_RESERVED, 0, 0);
            }
        }
        for zi in 0..m.zones.len() {
            let (zs, ze) = (m.zones[zi].start_pfn, m.zones[zi].end_pfn());
            let mut res = 0u64;
            for &(s, e) in &reserved {
                let (a, b) = (s.max(zs), e.min(ze));
                if b > a {
                    res += b - a;
                }
            }
            m.zones[zi].reserved = res;
            m.boot_free_zone(zi, &reserved);
        }
        if m.cfg.page_owner {
            m.owner = Some(crate::page_owner::PageOwner::new(
                nr_pages,
                m.cfg.page_owner_free_stacks,
            ));
        }
        m.setup_watermarks();
        m.setup_pcp();
        m.fallback_reserve_blocks = m
            .zones
            .iter()
            .map(|z| ((z.spanned >> (MAX_ORDER - 1)) as f64 * m.cfg.fallback_reserve).ceil() as u64)
            .collect();
        Ok(m)
    }

    fn boot_free_zone(&mut self, zi: usize, reserved: &[(u64, u64)]) {
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
            let lt = match self.policy {
                Policy::Vanilla => LT_NORCLM,
                Policy::AntiFrag => {
                    if o as usize == MAX_ORDER - 1 {
                        self.zones[zi].block_type[(rel >> self.block_order) as usize] =
                            LT_GLOBAL as u8;
                        LT_GLOBAL
                    } else {
                        LT_NORCLM
                    }
                }
                Policy::Mobility => {
                    // memmap_init marks every pageblock MOVABLE at boot
                    let b0 = rel >> self.block_order;
                    let b1 = (rel + (1 << o) - 1) >> self.block_order;
                    for b in b0..=b1 {
                        self.zones[zi].block_type[b as usize] = LT_USERRCLM as u8;
                    }
                    LT_USERRCLM
                }
            };
            self.add_free(zi, pfn as u32, o, lt);
            rel += 1 << o;
        }
        // mobility: pageblocks that hold only reserved pages stay Movable too
        if self.policy == Policy::Mobility {
            for b in self.zones[zi].block_type.iter_mut() {
                *b = LT_USERRCLM as u8;
            }
        }
    }

    fn setup_watermarks(&mut self) {
        let layout = self.layout;
        let lowmem_pages: u64 = self
            .zones
            .iter()
            .filter(|z| !layout.is_highmem(z.zt))
            .map(|z| z.present)
            .sum();
        let lowmem_kb = lowmem_pages << (PAGE_SHIFT - 10);
        let min_free_kbytes = isqrt(lowmem_kb * 16).clamp(128, 65536);
        let pages_min = min_free_kbytes >> (PAGE_SHIFT - 10);
        for z in self.zones.iter_mut() {
            let min = if layout.is_highmem(z.zt) {
                (z.present / 1024).clamp(SWAP_CLUSTER_MAX, 128)
            } else {
                pages_min * z.present / lowmem_pages.max(1)
            };
            z.pages_min = min;
            z.pages_low = min + min / 4;
            z.pages_high = min + min / 2;
        }
        // lowmem_reserve, per node
        for nid in 0..self.nr_nodes {
            let present = |zt: usize, zs: &Vec<Zone>, zi: &Vec<[u16; 3]>| -> u64 {
                let i = zi[nid][zt];
                if i == ZNONE {
                    0
                } else {
                    zs[i as usize].present
                }
            };
            for j in 0..3 {
                let mut acc = present(j, &self.zones, &self.zone_index);
                for idx in (0..j).rev() {
                    let ratio = layout.lowmem_reserve_ratio(idx);
                    let zi = self.zone_index[nid][idx];
                    if zi != ZNONE {
                        self.zones[zi as usize].lowmem_reserve[j] = acc / ratio;
                    }
                    acc += present(idx, &self.zones, &self.zone_index);
                }
            }
        }
    }

    fn setup_pcp(&mut self) {
        for z in self.zones.iter_mut() {
            // 2.6.11 zone_batchsize: present/1024, at most 256 KiB worth, /4, at least 1
            let mut batch = z.present / 1024;
            if batch * 4096 > 256 * 1024 {
                batch = (256 * 1024) / 4096;
            }
            batch /= 4;
            let batch = batch.max(1) as u32;
            let batch = if self.cfg.pcp_batch != 0 {
                self.cfg.pcp_batch
            } else {
                batch
            };
            let high = if self.cfg.pcp_high != 0 {
                self.cfg.pcp_high
            } else {
                6 * batch
            };
            z.pcp.batch = batch;
            z.pcp.high = high.max(batch);
        }
    }

    // ---- small helpers --------------------------------------------------

    #[inline]
    pub fn zone_of_pfn(&self, pfn: u64) -> usize {
        self.zone_starts.partition_point(|&s| s <= pfn) - 1
    }

    #[inline]
    fn block_index(&self, zi: usize, pfn: u32) -> usize {
        ((pfn as u64 - self.zones[zi].start_pfn) >> self.block_order) as usize
    }

    /// Highest zone type the mask allows (gfp_zone).
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

    pub fn zonelist(&self, node: usize, gfp: u32) -> &[u16] {
        &self.zonelists[node][self.gfp_zone(gfp)]
    }

    #[inline]
    fn add_free(&mut self, zi: usize, pfn: u32, order: u32, lt: usize) {
        self.flags[pfn as usize] = mkflags(K_FREE, order, lt);
        let z = &mut self.zones[zi];
        list_add(
            &mut self.next,
            &mut self.prev,
            &mut z.free_area[lt][order as usize],
            pfn,
        );
        z.nonempty[lt] |= 1 << order;
        z.free_pages += 1 << order;
    }

    #[inline]
    fn del_free(&mut self, zi: usize, pfn: u32, order: u32, lt: usize) {
        let z = &mut self.zones[zi];
        let l = &mut z.free_area[lt][order as usize];
        list_del(&mut self.next, &mut self.prev, l, pfn);
        if l.nr == 0 {
            z.nonempty[lt] &= !(1 << order);
        }
        z.free_pages -= 1 << order;
        self.flags[pfn as usize] = K_TAIL;
    }

    /// Split a block of order `high` at `pfn` down to `low`, the upper halves going
    /// on the `lt` lists (the kernel's `expand`).
    #[inline]
    fn expand(&mut self, zi: usize, pfn: u32, low: u32, high: u32, lt: usize) {
        let mut h = high;
        while h > low {
            h -= 1;
            self.add_free(zi, pfn + (1 << h), h, lt);
        }
    }

    /// Take the smallest block of at least `order` from the `lt` lists.
    #[inline]
    fn rmqueue_smallest(&mut self, zi: usize, order: u32, lt: usize) -> Option<u32> {
        let mask = self.zones[zi].nonempty[lt] & !((1u16 << order) - 1);
        if mask == 0 {
            return None;
        }
        let o = mask.trailing_zeros();
        let pfn = self.zones[zi].free_area[lt][o as usize].head;
        self.del_free(zi, pfn, o, lt);
        self.expand(zi, pfn, order, o, lt);
        Some(pfn)
    }

    /// `__rmqueue`: take a block of `order` for type `t` under the machine's policy.
    fn rmqueue(&mut self, zi: usize, order: u32, t: usize) -> Option<u32> {
        match self.policy {
            Policy::Vanilla => self.rmqueue_smallest(zi, order, LT_NORCLM),
            Policy::AntiFrag => self.rmqueue_antifrag(zi, order, t),
            Policy::Mobility => self.rmqueue_mobility(zi, order, t),
        }
    }

    fn take_global(&mut self, zi: usize, order: u32, owner: usize) -> Option<u32> {
        let g = self.zones[zi].free_area[LT_GLOBAL][MAX_ORDER - 1].head;
        if g == NONE {
            return None;
        }
        self.del_free(zi, g, (MAX_ORDER - 1) as u32, LT_GLOBAL);
        let b = self.block_index(zi, g);
        self.zones[zi].block_type[b] = owner as u8;
        self.counters.global_takes += 1;
        self.expand(zi, g, order, (MAX_ORDER - 1) as u32, owner);
        Some(g)
    }

    fn rmqueue_antifrag(&mut self, zi: usize, order: u32, t: usize) -> Option<u32> {
        if let Some(p) = self.rmqueue_smallest(zi, order, t) {
            return Some(p);
        }
        let reserve = self.fallback_reserve_blocks[zi];
        let nglobal = self.zones[zi].free_area[LT_GLOBAL][MAX_ORDER - 1].nr as u64;
        if nglobal > reserve {
            return self.take_global(zi, order, t);
        }
        // fallbacks from here on
        self.counters.fallbacks += 1;
        if reserve > 0 {
            if let Some(p) = self.rmqueue_smallest(zi, order, LT_FALLBACK) {
                return Some(p);
            }
            if let Some(p) = self.take_global(zi, order, LT_FALLBACK) {
                return Some(p);
            }
        }
        for &ft in &ANTIFRAG_FALLBACK[t] {
            if let Some(p) = self.rmqueue_smallest(zi, order, ft) {
                return Some(p);
            }
        }
        None
    }

    fn rmqueue_mobility(&mut self, zi: usize, order: u32, t: usize) -> Option<u32> {
        if let Some(p) = self.rmqueue_smallest(zi, order, t) {
            return Some(p);
        }
        let pb = self.block_order;
        let can_steal = |o: u32| o >= pb || o >= pb / 2 || t != LT_USERRCLM;
        // steal big: from the highest order down
        let mut found: Option<(u32, usize)> = None;
        for o in (order..MAX_ORDER as u32).rev() {
            if let Some(&ft) = MOBILITY_FALLBACK[t]
                .iter()
                .find(|&&ft| self.zones[zi].nonempty[ft] & (1 << o) != 0)
            {
                if !can_steal(o) && o > order {
                    // a movable request that may not steal takes the smallest fitting block
                    found = None;
                    for o2 in order..MAX_ORDER as u32 {
                        if let Some(&ft2) = MOBILITY_FALLBACK[t]
                            .iter()
                            .find(|&&f| self.zones[zi].nonempty[f] & (1 << o2) != 0)
                        {
                            found = Some((o2, ft2));
                            break;
                        }
                    }
                } else {
                    found = Some((o, ft));
                }
                break;
            }
        }
        let (o, ft) = found?;
        self.counters.fallbacks += 1;
        let pfn = self.zones[zi].free_area[ft][o as usize].head;
        if o >= pb {
            // a whole pageblock or more changes owner
            let rel = pfn as u64 - self.zones[zi].start_pfn;
            let b0 = (rel >> pb) as usize;
            let nb = 1usize << (o - pb);
            for b in b0..b0 + nb {
                self.zones[zi].block_type[b] = t as u8;
            }
            self.counters.steals += 1;
            self.counters.pageblock_relabels += nb as u64;
        } else if can_steal(o) {
            self.steal_pageblock(zi, pfn, t);
        }
        // the found block now belongs on the requester's lists
        self.del_free(zi, pfn, o, ft);
        self.expand(zi, pfn, order, o, t);
        Some(pfn)
    }

    /// Move every free block of `pfn`'s pageblock to type `t` lists and relabel the
    /// pageblock if free + compatible pages are at least half of it.
    fn steal_pageblock(&mut self, zi: usize, pfn: u32, t: usize) {
        let pb = self.block_order;
        let zs = self.zones[zi].start_pfn;
        let rel = pfn as u64 - zs;
        let b = (rel >> pb) as usize;
        let start = zs + ((b as u64) << pb);
        let end = (start + (1u64 << pb)).min(self.zones[zi].end_pfn());
        let mut free = 0u64;
        let mut alike = 0u64;
        let mut p = start;
        while p < end {
            let f = self.flags[p as usize];
            let o = forder(f);
            match kind(f) {
                K_FREE => {
                    let lt = ftype(f);
                    if lt != t && p as u32 != pfn {
                        self.del_free(zi, p as u32, o, lt);
                        self.add_free(zi, p as u32, o, t);
                    }
                    free += 1 << o;
                    p += 1 << o;
                }
                K_ALLOC => {
                    if ftype(f) == t {
                        alike += 1 << o;
                    }
                    p += 1 << o;
                }
                _ => p += 1,
            }
        }
        self.counters.steals += 1;
        if free + alike >= 1u64 << (pb.max(1) - 1) {
            self.zones[zi].block_type[b] = t as u8;
            self.counters.pageblock_relabels += 1;
        }
    }

    // ---- watermarks -----------------------------------------------------

    /// `zone_watermark_ok` of 2.6.11 (order-aware, Nick Piggin 2004).
    #[inline]
    pub fn zone_watermark_ok(
        &self,
        zi: usize,
        order: u32,
        mark: u64,
        classzone: usize,
        harder: bool,
        high: bool,
    ) -> bool {
        let z = &self.zones[zi];
        let mut min = mark as i64;
        if high {
            min -= min / 2;
        }
        if harder {
            min -= min / 4;
        }
        let mut free = z.free_pages as i64 - (1i64 << order) + 1;
        if free <= min + z.lowmem_reserve[classzone] as i64 {
            return false;
        }
        for o in 0..order as usize {
            free -= (z.nr_free(o) << o) as i64;
            min >>= 1;
            if free <= min {
                return false;
            }
        }
        true
    }

    // ---- allocation -----------------------------------------------------

    #[inline]
    fn pcp_eligible(&self, order: u32, t: usize) -> bool {
        self.cfg.pcp && order == 0 && (self.policy != Policy::AntiFrag || t == LT_USERRCLM)
    }

    #[inline]
    fn pcp_list(&self, t: usize) -> usize {
        if self.policy == Policy::Mobility {
            t
        } else {
            0
        }
    }

    /// `buffered_rmqueue`: order-0 through the per-cpu lists, else the buddy lists.
    #[inline]
    fn buffered_rmqueue(&mut self, zi: usize, order: u32, t: usize, cold: bool) -> Option<u32> {
        if self.pcp_eligible(order, t) {
            let li = self.pcp_list(t);
            if self.zones[zi].pcp.lists[li].nr == 0 {
                let batch = self.zones[zi].pcp.batch;
                let mut got = 0;
                for _ in 0..batch {
                    match self.rmqueue(zi, 0, t) {
                        Some(p) => {
                            self.flags[p as usize] = mkflags(K_PCP, 0, t);
                            let z = &mut self.zones[zi];
                            list_add_tail(&mut self.next, &mut self.prev, &mut z.pcp.lists[li], p);
                            z.pcp.count += 1;
                            got += 1;
                        }
                        None => break,
                    }
                }
                if got == 0 {
                    return None;
                }
                self.counters.pcp_refills += 1;
            }
            let z = &mut self.zones[zi];
            let l = &mut z.pcp.lists[li];
            let p = if cold { l.tail } else { l.head };
            list_del(&mut self.next, &mut self.prev, l, p);
            z.pcp.count -= 1;
            return Some(p);
        }
        self.rmqueue(zi, order, t)
    }

    /// Mark `pfn` as the head of an allocated block.
    #[inline]
    fn set_allocated(&mut self, pfn: u32, order: u32, t: usize) {
        self.flags[pfn as usize] = mkflags(K_ALLOC, order, t);
        self.next[pfn as usize] = NONE;
    }

    /// One pass over the zonelist at watermark `which` (0 min, 1 low).
    #[inline]
    fn get_page_from_freelist(
        &mut self,
        node: usize,
        hz: usize,
        order: u32,
        t: usize,
        gfp: u32,
        use_low: bool,
    ) -> Option<u32> {
        let wait = gfp & gfp::__GFP_WAIT != 0;
        let harder = !use_low && !wait;
        let high = !use_low && gfp & gfp::__GFP_HIGH != 0;
        let n = self.zonelists[node][hz].len();
        for i in 0..n {
            let zi = self.zonelists[node][hz][i] as usize;
            let z = &self.zones[zi];
            let mark = if use_low { z.pages_low } else { z.pages_min };
            // the common case (order 0, plenty free) passes without the order-aware walk
            let plenty =
                order == 0 && !harder && !high && z.free_pages > mark + z.lowmem_reserve[hz] + 1;
            if !plenty && !self.zone_watermark_ok(zi, order, mark, hz, harder, high) {
                continue;
            }
            if let Some(p) = self.buffered_rmqueue(zi, order, t, gfp & gfp::__GFP_COLD != 0) {
                self.set_allocated(p, order, t);
                self.check_kswapd(zi, order);
                return Some(p);
            }
        }
        None
    }

    /// The allocator entry (`__alloc_pages`), for already-validated arguments;
    /// records the owner when page_owner is on.
    #[inline]
    pub(crate) fn alloc_inner(
        &mut self,
        order: u32,
        gfp: u32,
        node: usize,
        ctx: AllocCtx,
    ) -> Option<u32> {
        let p = self.alloc_pages(order, gfp, node);
        if let (Some(pfn), Some(o)) = (p, self.owner.as_mut()) {
            o.on_alloc(pfn, order, gfp, ctx, self.now_ns);
        }
        p
    }

    fn alloc_pages(&mut self, order: u32, gfp: u32, node: usize) -> Option<u32> {
        let t = AllocType::from_gfp(gfp) as usize;
        let hz = self.gfp_zone(gfp);
        if let Some(p) = self.get_page_from_freelist(node, hz, order, t, gfp, true) {
            self.counters.alloc += 1;
            return Some(p);
        }
        self.wake_kswapd(node, hz, order);
        if let Some(p) = self.get_page_from_freelist(node, hz, order, t, gfp, false) {
            self.counters.alloc += 1;
            return Some(p);
        }
        if gfp & gfp::__GFP_WAIT != 0 {
            // direct reclaim, retried for small orders while it makes progress
            let retry = order <= 3 || gfp & (gfp::__GFP_REPEAT | gfp::__GFP_NOFAIL) != 0;
            for _round in 0..16 {
                if !self.cfg.reclaim {
                    break;
                }
                self.counters.allocstall += 1;
                let got = self.try_to_free_pages(node, hz);
                if let Some(p) = self.get_page_from_freelist(node, hz, order, t, gfp, false) {
                    self.counters.alloc += 1;
                    return Some(p);
                }
                if got == 0 || !retry || gfp & gfp::__GFP_NORETRY != 0 {
                    break;
                }
            }
            if self.cfg.active_freeing && order > 0 {
                if let Some(p) = self.active_free(node, hz, order, t) {
                    self.counters.alloc += 1;
                    return Some(p);
                }
            }
        }
        self.counters.alloc_fail += 1;
        None
    }

    /// Validate and allocate a block; `Ok(None)` is an ordinary failure.
    pub fn alloc(&mut self, order: u32, gfp: u32, node: Option<usize>) -> Result<Option<u64>> {
        self.alloc_ctx(order, gfp, node, AllocCtx::default())
    }

    /// [`Machine::alloc`] on behalf of a task and call chain (page_owner).
    pub fn alloc_ctx(
        &mut self,
        order: u32,
        gfp: u32,
        node: Option<usize>,
        ctx: AllocCtx,
    ) -> Result<Option<u64>> {
        self.validate_alloc(order, gfp, node)?;
        self.validate_stack(ctx.stack)?;
        Ok(self
            .alloc_inner(order, gfp, node.unwrap_or(0), ctx)
            .map(|p| p as u64))
    }

    /// A stack handle must be known to the depot (0 = none is always fine).
    pub fn validate_stack(&self, handle: u32) -> Result<()> {
        match &self.owner {
            Some(o) if !o.valid_handle(handle) => Err(Error::PageOwner(format!(
                "stack handle {handle:#x} is not in this machine's stack depot"
            ))),
            None if handle != 0 => Err(Error::PageOwner(format!(
                "stack handle {handle:#x} given, but the machine was built without page_owner"
            ))),
            _ => Ok(()),
        }
    }

    pub fn validate_alloc(&self, order: u32, gfp: u32, node: Option<usize>) -> Result<()> {
        if order as usize >= MAX_ORDER {
            return Err(Error::Order(format!(
                "order {order} is out of range 0..{}",
                MAX_ORDER - 1
            )));
        }
        gfp::validate(gfp)?;
        if let Some(n) = node {
            if n >= self.nr_nodes {
                return Err(Error::Config(format!(
                    "node {n} does not exist (machine has {} nodes)",
                    self.nr_nodes
                )));
            }
        }
        Ok(())
    }

    // ---- freeing --------------------------------------------------------

    /// Free the block headed by `pfn` (validated).
    pub fn free(&mut self, pfn: u64) -> Result<()> {
        self.free_stack(pfn, 0)
    }

    /// [`Machine::free`] recording the freeing call chain (page_owner).
    pub fn free_stack(&mut self, pfn: u64, free_stack: u32) -> Result<()> {
        self.validate_stack(free_stack)?;
        let f = self.head_flags(pfn)?;
        if f & F_OBJ != 0 {
            return Err(Error::Pfn(format!(
                "pfn {pfn} belongs to trace object {}: free it with an OP_FREE in a trace",
                self.next[pfn as usize]
            )));
        }
        self.free_block(pfn as u32, false, free_stack);
        self.counters.free += 1;
        Ok(())
    }

    /// Flags of an allocated head, or the error that explains why `pfn` is not one.
    pub fn head_flags(&self, pfn: u64) -> Result<u16> {
        if pfn >= self.nr_pages {
            return Err(Error::Pfn(format!(
                "pfn {pfn} is out of range (machine has {} pages)",
                self.nr_pages
            )));
        }
        let f = self.flags[pfn as usize];
        match kind(f) {
            K_ALLOC => Ok(f),
            K_FREE | K_PCP => Err(Error::DoubleFree(format!(
                "pfn {pfn} is already free (double free)"
            ))),
            K_RESERVED => Err(Error::Pfn(format!(
                "pfn {pfn} is reserved at boot and never freed"
            ))),
            _ => {
                // a tail page: inside a free block (it was freed and merged), or not a head
                let zi = self.zone_of_pfn(pfn);
                let zs = self.zones[zi].start_pfn;
                for o in 1..MAX_ORDER as u32 {
                    let h = zs + ((pfn - zs) & !((1u64 << o) - 1));
                    let hf = self.flags[h as usize];
                    if kind(hf) == K_FREE && forder(hf) == o {
                        return Err(Error::DoubleFree(format!(
                            "pfn {pfn} is already free, inside the free order-{o} block at pfn {h} (double free)"
                        )));
                    }
                }
                Err(Error::Pfn(format!(
                    "pfn {pfn} is not the head of an allocated block"
                )))
            }
        }
    }

    /// Free an allocated block (the pcp path for order-0 unless `direct`).
    pub(crate) fn free_block(&mut self, pfn: u32, direct: bool, free_stack: u32) {
        let f = self.flags[pfn as usize];
        let order = forder(f);
        if let Some(o) = self.owner.as_mut() {
            o.on_free(pfn, order, free_stack, self.now_ns);
        }
        let t = ftype(f);
        let zi = self.zone_of_pfn(pfn as u64);
        if !direct && self.pcp_eligible(order, t) {
            let lt = match self.policy {
                // free to the list of the pageblock's current type
                Policy::Mobility => self.zones[zi].block_type[self.block_index(zi, pfn)] as usize,
                _ => t,
            };
            let li = self.pcp_list(lt);
            self.flags[pfn as usize] = mkflags(K_PCP, 0, lt);
            let z = &mut self.zones[zi];
            list_add(&mut self.next, &mut self.prev, &mut z.pcp.lists[li], pfn);
            z.pcp.count += 1;
            if z.pcp.count >= z.pcp.high {
                let batch = z.pcp.batch;
                self.pcp_free_bulk(zi, batch);
            }
            return;
        }
        self.flags[pfn as usize] = K_TAIL;
        self.free_one_page(zi, pfn, order, None);
    }

    /// Return up to `n` of the coldest pcp pages to the buddy lists.
    fn pcp_free_bulk(&mut self, zi: usize, n: u32) {
        for _ in 0..n {
            // take from the fullest list's tail (the coldest pages)
            let li = (0..3)
                .max_by_key(|&i| self.zones[zi].pcp.lists[i].nr)
                .unwrap();
            let z = &mut self.zones[zi];
            let p = z.pcp.lists[li].tail;
            if p == NONE {
                break;
            }
            list_del(&mut self.next, &mut self.prev, &mut z.pcp.lists[li], p);
            z.pcp.count -= 1;
            let lt = ftype(self.flags[p as usize]);
            self.flags[p as usize] = K_TAIL;
            self.free_one_page(zi, p, 0, Some(lt));
        }
    }

    /// `drain_all_pages`: return every per-cpu page to the buddy lists.
    pub fn drain_pcp(&mut self) -> u64 {
        let mut n = 0;
        for zi in 0..self.zones.len() {
            let c = self.zones[zi].pcp.count;
            if c > 0 {
                self.pcp_free_bulk(zi, c);
                n += c as u64;
                self.counters.pcp_drains += 1;
            }
        }
        n
    }

    /// `__free_one_page`: coalesce with free buddies and put the result on its list.
    fn free_one_page(&mut self, zi: usize, pfn: u32, order: u32, pcp_type: Option<usize>) {
        let zs = self.zones[zi].start_pfn;
        let spanned = self.zones[zi].spanned;
        let mut rel = pfn as u64 - zs;
        let mut order = order;
        let lt = match self.policy {
            Policy::Vanilla => LT_NORCLM,
            Policy::AntiFrag => {
                self.zones[zi].block_type[(rel >> self.block_order) as usize] as usize
            }
            Policy::Mobility => pcp_type.unwrap_or_else(|| {
                self.zones[zi].block_type[(rel >> self.block_order) as usize] as usize
            }),
        };
        let top = (MAX_ORDER - 1) as u32;
        while order < top {
            let brel = rel ^ (1u64 << order);
            if brel + (1u64 << order) > spanned {
                break;
            }
            let bpfn = (zs + brel) as u32;
            let bf = self.flags[bpfn as usize];
            if kind(bf) != K_FREE || forder(bf) != order {
                break;
            }
            self.del_free(zi, bpfn, order, ftype(bf));
            rel &= !(1u64 << order);
            order += 1;
        }
        let head = (zs + rel) as u32;
        let lt = match self.policy {
            Policy::AntiFrag if order == top => {
                let b = (rel >> self.block_order) as usize;
                self.zones[zi].block_type[b] = LT_GLOBAL as u8;
                LT_GLOBAL
            }
            Policy::Mobility if order > self.block_order => {
                // a free block larger than a pageblock carries one type
                let b0 = (rel >> self.block_order) as usize;
                for b in b0..b0 + (1usize << (order - self.block_order)) {
                    self.zones[zi].block_type[b] = lt as u8;
                }
                lt
            }
            _ => lt,
        };
        self.add_free(zi, head, order, lt);
    }

    // ---- reclaim --------------------------------------------------------

    #[inline]
    fn check_kswapd(&mut self, zi: usize, order: u32) {
        let z = &self.zones[zi];
        if z.free_pages < z.pages_low && z.kswapd_order < order as i32 {
            self.wake_zone(zi, order);
        }
    }

    fn wake_kswapd(&mut self, node: usize, hz: usize, order: u32) {
        let n = self.zonelists[node][hz].len();
        for i in 0..n {
            let zi = self.zonelists[node][hz][i] as usize;
            self.wake_zone(zi, order);
        }
    }

    fn wake_zone(&mut self, zi: usize, order: u32) {
        if !self.cfg.reclaim || self.zones[zi].lru.nr == 0 {
            return;
        }
        let z = &mut self.zones[zi];
        if z.kswapd_order < 0 {
            self.counters.kswapd_wakeups += 1;
        }
        z.kswapd_order = z.kswapd_order.max(order as i32);
    }

    /// Reclaim the oldest objects of a zone's LRU until `nr` pages are freed.
    /// Returns pages reclaimed.
    /// `direct_free` bypasses the per-cpu lists (active freeing needs the pages on
    /// the buddy lists at once).
    pub(crate) fn shrink_zone(
        &mut self,
        zi: usize,
        nr: u64,
        kswapd: bool,
        direct_free: bool,
    ) -> u64 {
        let mut got = 0u64;
        while got < nr {
            let obj = self.zones[zi].lru.tail;
            if obj == NONE {
                break;
            }
            got += self.reclaim_object(obj, direct_free);
        }
        if kswapd {
            self.counters.pgscan_kswapd += got;
            self.counters.pgsteal_kswapd += got;
        } else {
            self.counters.pgscan_direct += got;
            self.counters.pgsteal_direct += got;
        }
        got
    }

    /// Drop an object's block: off the LRU, freed, object marked reclaimed.
    pub(crate) fn reclaim_object(&mut self, obj: u32, direct_free: bool) -> u64 {
        let pfn = self.objs.pfn[obj as usize];
        let zi = self.zone_of_pfn(pfn as u64);
        self.lru_del(zi, obj);
        let pages = 1u64 << forder(self.flags[pfn as usize]);
        self.free_block(pfn, direct_free, 0);
        self.objs.pfn[obj as usize] = NONE;
        self.objs.state[obj as usize] |= OBJ_RECLAIMED;
        pages
    }

    #[inline]
    pub(crate) fn lru_add(&mut self, zi: usize, obj: u32, pages: u64) {
        let z = &mut self.zones[zi];
        list_add(
            &mut self.objs.lru_next,
            &mut self.objs.lru_prev,
            &mut z.lru,
            obj,
        );
        z.lru_pages += pages;
    }

    #[inline]
    pub(crate) fn lru_del(&mut self, zi: usize, obj: u32) {
        let pfn = self.objs.pfn[obj as usize];
        let pages = 1u64 << forder(self.flags[pfn as usize]);
        self.flags[pfn as usize] &= !F_LRU;
        let z = &mut self.zones[zi];
        list_del(
            &mut self.objs.lru_next,
            &mut self.objs.lru_prev,
            &mut z.lru,
            obj,
        );
        z.lru_pages -= pages;
    }

    #[inline]
    pub(crate) fn lru_touch(&mut self, zi: usize, obj: u32) {
        let z = &mut self.zones[zi];
        if z.lru.head == obj {
            return;
        }
        list_del(
            &mut self.objs.lru_next,
            &mut self.objs.lru_prev,
            &mut z.lru,
            obj,
        );
        list_add(
            &mut self.objs.lru_next,
            &mut self.objs.lru_prev,
            &mut z.lru,
            obj,
        );
    }

    /// Direct reclaim (`try_to_free_pages`): scan the zonelist's LRUs at falling
    /// priority until SWAP_CLUSTER_MAX pages are reclaimed.
    fn try_to_free_pages(&mut self, node: usize, hz: usize) -> u64 {
        let mut got = 0u64;
        for prio in (0..=12u32).rev() {
            let n = self.zonelists[node][hz].len();
            for i in 0..n {
                let zi = self.zonelists[node][hz][i] as usize;
                let lru = self.zones[zi].lru_pages;
                if lru == 0 {
                    continue;
                }
                let want = (lru >> prio).max(1).min(SWAP_CLUSTER_MAX - got);
                got += self.shrink_zone(zi, want, false, false);
                if got >= SWAP_CLUSTER_MAX {
                    return got;
                }
            }
        }
        got
    }

    /// Let kswapd work for `dt_ns` of simulated time: it reclaims up to
    /// `kswapd_pages_per_ms` pages per millisecond from zones it was woken for,
    /// until each is balanced (order-aware high watermark) or its LRU is empty.
    pub fn advance(&mut self, dt_ns: u64) {
        self.now_ns += dt_ns;
        if !self.cfg.reclaim {
            return;
        }
        self.kswapd_credit_ns += dt_ns;
        let mut budget = (self.kswapd_credit_ns / 1_000_000) * self.cfg.kswapd_pages_per_ms;
        self.kswapd_credit_ns %= 1_000_000;
        for zi in 0..self.zones.len() {
            // kswapd also notices zones below their low mark on its own
            let z = &self.zones[zi];
            if z.kswapd_order < 0 && z.free_pages < z.pages_low && z.lru.nr > 0 {
                self.wake_zone(zi, 0);
            }
        }
        for zi in 0..self.zones.len() {
            loop {
                let order = self.zones[zi].kswapd_order;
                if order < 0 {
                    break;
                }
                let high = self.zones[zi].pages_high;
                if self.zone_watermark_ok(zi, order as u32, high, 0, false, false)
                    || self.zones[zi].lru.nr == 0
                {
                    self.zones[zi].kswapd_order = -1;
                    break;
                }
                if budget == 0 {
                    break;
                }
                let want = budget.min(SWAP_CLUSTER_MAX);
                let got = self.shrink_zone(zi, want, true, false);
                budget -= want.min(budget);
                if got == 0 {
                    self.zones[zi].kswapd_order = -1;
                    break;
                }
            }
        }
    }

    // ---- active freeing and the ceiling ----------------------------------

    /// Classify the aligned block of `order` at zone-relative `rel`:
    /// `None` if it holds a reserved or non-reclaimable page, else the number of
    /// pages that would have to be reclaimed to free it.
    fn block_cost(&self, zi: usize, rel: u64, order: u32) -> Option<u64> {
        let zs = self.zones[zi].start_pfn;
        let start = zs + rel;
        let end = start + (1u64 << order);
        // inside a larger allocated or free block?
        if let Some((h, o)) = self.containing_head(zi, rel, order) {
            let f = self.flags[h as usize];
            return match kind(f) {
                K_FREE => Some(0),
                _ if f & F_LRU != 0 => Some(1u64 << o),
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
                K_ALLOC if f & F_LRU != 0 => {
                    cost += 1 << forder(f);
                    p += 1 << forder(f);
                }
                _ => return None,
            }
        }
        Some(cost)
    }

    /// Active freeing: find the aligned block of `order` in the zonelist that costs
    /// the fewest reclaimed pages, reclaim them, and allocate it.
    fn active_free(&mut self, node: usize, hz: usize, order: u32, t: usize) -> Option<u32> {
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
                    let li = self.pcp_list(ftype(f));
                    let z = &mut self.zones[zi];
                    list_del(
                        &mut self.next,
                        &mut self.prev,
                        &mut z.pcp.lists[li],
                        p as u32,
                    );
                    z.pcp.count -= 1;
                    let lt = ftype(f);
                    self.flags[p as usize] = K_TAIL;
                    self.free_one_page(zi, p as u32, 0, Some(lt));
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

    /// The allocated or free block of a higher order than `order` that contains the
    /// aligned block at zone-relative `rel`, as (head pfn, its order).
    fn containing_head(&self, zi: usize, rel: u64, order: u32) -> Option<(u64, u32)> {
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

    /// Take the specific aligned block at `target` out of the free block that holds it.
    fn take_block(&mut self, zi: usize, target: u32, order: u32, t: usize) -> Option<u32> {
        let zs = self.zones[zi].start_pfn;
        let rel = target as u64 - zs;
        let mut found = None;
        for o in order..MAX_ORDER as u32 {
            let h = (zs + (rel & !((1u64 << o) - 1))) as u32;
            let f = self.flags[h as usize];
            if kind(f) == K_FREE && forder(f) == o {
                found = Some((h, o, ftype(f)));
                break;
            }
        }
        let (h, o, lt) = found?;
        self.del_free(zi, h, o, lt);
        let put_lt = if lt == LT_GLOBAL { t } else { lt };
        if lt == LT_GLOBAL {
            let b = self.block_index(zi, h);
            self.zones[zi].block_type[b] = t as u8;
        }
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
        if self.policy == Policy::Mobility && order >= self.block_order {
            let b0 = self.block_index(zi, target);
            for b in b0..b0 + (1usize << (order - self.block_order)) {
                self.zones[zi].block_type[b] = t as u8;
            }
        }
        self.set_allocated(target, order, t);
        Some(target)
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
                        if f & F_LRU == 0 && o < order {
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

    // ---- views ------------------------------------------------------------

    pub fn zone_stats(&self) -> Vec<ZoneStats> {
        self.zones
            .iter()
            .map(|z| ZoneStats {
                node: z.node,
                zone: z.name,
                start_pfn: z.start_pfn,
                spanned: z.spanned,
                present: z.present,
                managed: z.present - z.reserved,
                free: z.free_pages,
                pcp: z.pcp.count as u64,
                min: z.pages_min,
                low: z.pages_low,
                high: z.pages_high,
                lowmem_reserve: z.lowmem_reserve,
                lru_pages: z.lru_pages,
            })
            .collect()
    }

    /// nr_free per (node, zone type, order), flattened row-major; absent zones zero.
    pub fn free_area(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.nr_nodes * 3 * MAX_ORDER];
        for z in &self.zones {
            for o in 0..MAX_ORDER {
                out[(z.node * 3 + z.zt) * MAX_ORDER + o] = z.nr_free(o);
            }
        }
        out
    }

    /// The free-list types this policy shows, as (list index, name).
    pub fn list_types(&self) -> Vec<(usize, &'static str)> {
        match self.policy {
            Policy::Vanilla => vec![(LT_NORCLM, "Any")],
            Policy::AntiFrag => {
                let mut v = vec![
                    (LT_NORCLM, "KernNoRclm"),
                    (LT_KERNRCLM, "KernRclm"),
                    (LT_USERRCLM, "UserRclm"),
                ];
                if self.cfg.fallback_reserve > 0.0 {
                    v.push((LT_FALLBACK, "Fallback"));
                }
                v.push((LT_GLOBAL, "Global"));
                v
            }
            Policy::Mobility => vec![
                (LT_NORCLM, "Unmovable"),
                (LT_USERRCLM, "Movable"),
                (LT_KERNRCLM, "Reclaimable"),
            ],
        }
    }

    /// nr_free per (node, zone type, shown type, order), flattened.
    pub fn free_area_by_type(&self) -> (Vec<u64>, usize) {
        let types = self.list_types();
        let nt = types.len();
        let mut out = vec![0u64; self.nr_nodes * 3 * nt * MAX_ORDER];
        for z in &self.zones {
            for (ti, &(lt, _)) in types.iter().enumerate() {
                for o in 0..MAX_ORDER {
                    out[((z.node * 3 + z.zt) * nt + ti) * MAX_ORDER + o] =
                        z.free_area[lt][o].nr as u64;
                }
            }
        }
        (out, nt)
    }

    /// One code per pfn (PM_*).
    pub fn page_map(&self) -> Vec<u8> {
        let mut out = vec![PM_FREE; self.nr_pages as usize];
        let mut p = 0usize;
        let n = self.nr_pages as usize;
        while p < n {
            let f = self.flags[p];
            let len = 1usize << forder(f);
            match kind(f) {
                K_FREE => p += len,
                K_PCP => {
                    out[p] = PM_PCP;
                    p += 1
                }
                K_RESERVED => {
                    out[p] = PM_RESERVED;
                    p += 1
                }
                K_ALLOC => {
                    out[p..p + len].fill(PM_ALLOC + ftype(f) as u8);
                    p += len
                }
                _ => p += 1,
            }
        }
        out
    }

    /// Pageblock (or usemap) type counts per zone, in `list_types()` order.
    pub fn block_counts(&self, zi: usize) -> Vec<u64> {
        let types = self.list_types();
        let z = &self.zones[zi];
        let nblocks = z.spanned.div_ceil(1u64 << self.block_order) as usize;
        let mut out = vec![0u64; types.len()];
        if self.policy == Policy::Vanilla {
            out[0] = nblocks as u64;
            return out;
        }
        for &bt in &z.block_type[..nblocks] {
            if let Some(i) = types.iter().position(|&(lt, _)| lt == bt as usize) {
                out[i] += 1;
            }
        }
        out
    }

    pub fn objects_len(&self) -> usize {
        self.objs.len()
    }

    /// Allocated blocks as (head pfn, order, type), in pfn order.
    pub fn allocated_blocks(&self) -> Vec<(u32, u8, u8)> {
        let mut v = Vec::new();
        let mut p = 0usize;
        while p < self.nr_pages as usize {
            let f = self.flags[p];
            if kind(f) == K_ALLOC {
                v.push((p as u32, forder(f) as u8, ftype(f) as u8));
                p += 1 << forder(f);
            } else if kind(f) == K_FREE {
                p += 1 << forder(f);
            } else {
                p += 1;
            }
        }
        v
    }

    // ---- invariants -------------------------------------------------------

    /// Verify every invariant; the error names the first violation.
    pub fn check(&self) -> Result<()> {
        let bad = |s: String| Err(Error::Invariant(s));
        let mut list_members = 0u64;
        let mut pcp_members = 0u64;
        for (zi, z) in self.zones.iter().enumerate() {
            let mut free = 0u64;
            for lt in 0..NR_LISTS {
                for o in 0..MAX_ORDER {
                    let l = &z.free_area[lt][o];
                    if (z.nonempty[lt] >> o) & 1 != (l.nr > 0) as u16 {
                        return bad(format!(
                            "zone {} node {}: nonempty bit of list type {lt} order {o} disagrees with nr_free {}",
                            z.name, z.node, l.nr
                        ));
                    }
                    let mut x = l.head;
                    let mut cnt = 0u32;
                    let mut prev = NONE;
                    while x != NONE {
                        cnt += 1;
                        if cnt > l.nr {
                            return bad(format!(
                                "zone {} node {}: free_area[{lt}][{o}] holds more blocks than nr_free {}",
                                z.name, z.node, l.nr
                            ));
                        }
                        let p = x as u64;
                        if p < z.start_pfn || p >= z.end_pfn() {
                            return bad(format!(
                                "pfn {p} on a free list of zone {} outside it",
                                z.name
                            ));
                        }
                        if self.prev[x as usize] != prev {
                            return bad(format!("pfn {p}: broken prev link on free list"));
                        }
                        let f = self.flags[x as usize];
                        if kind(f) != K_FREE || forder(f) as usize != o || ftype(f) != lt {
                            return bad(format!(
                                "pfn {p} is on free_area[{lt}][{o}] of zone {} but its page says kind {} order {} type {}",
                                z.name, kind(f), forder(f), ftype(f)
                            ));
                        }
                        let rel = p - z.start_pfn;
                        if rel % (1u64 << o) != 0 || rel + (1u64 << o) > z.spanned {
                            return bad(format!(
                                "free block at pfn {p} order {o} is not aligned inside zone {}",
                                z.name
                            ));
                        }
                        // maximally coalesced
                        if o < MAX_ORDER - 1 {
                            let brel = rel ^ (1u64 << o);
                            if brel + (1u64 << o) <= z.spanned {
                                let bf = self.flags[(z.start_pfn + brel) as usize];
                                if kind(bf) == K_FREE && forder(bf) as usize == o {
                                    return bad(format!(
                                        "free block at pfn {p} order {o} and its buddy pfn {} are both free: not coalesced",
                                        z.start_pfn + brel
                                    ));
                                }
                            }
                        }
                        match self.policy {
                            Policy::AntiFrag => {
                                let bt = z.block_type[(rel >> self.block_order) as usize] as usize;
                                if lt == LT_GLOBAL && o != MAX_ORDER - 1 {
                                    return bad(format!("free_area_global holds pfn {p} of order {o}, not the maximum order"));
                                }
                                if bt != lt {
                                    return bad(format!(
                                        "free block at pfn {p} is on type {lt} lists but the usemap says {bt}"
                                    ));
                                }
                            }
                            Policy::Vanilla if lt != LT_NORCLM => {
                                return bad(format!(
                                    "vanilla free block at pfn {p} on typed list {lt}"
                                ));
                            }
                            Policy::Mobility if lt > LT_USERRCLM => {
                                return bad(format!("mobility free block at pfn {p} on list {lt}"));
                            }
                            _ => {}
                        }
                        free += 1u64 << o;
                        prev = x;
                        x = self.next[x as usize];
                    }
                    if cnt != l.nr || (cnt > 0 && l.tail != prev) {
                        return bad(format!(
                            "zone {} free_area[{lt}][{o}]: nr_free {} but {cnt} blocks linked",
                            z.name, l.nr
                        ));
                    }
                    list_members += cnt as u64;
                }
            }
            if free != z.free_pages {
                return bad(format!(
                    "zone {} node {}: free_pages {} but the lists hold {free}",
                    z.name, z.node, z.free_pages
                ));
            }
            let mut pc = 0;
            for li in 0..3 {
                let mut x = z.pcp.lists[li].head;
                while x != NONE {
                    let f = self.flags[x as usize];
                    if kind(f) != K_PCP || self.zone_of_pfn(x as u64) != zi {
                        return bad(format!(
                            "pfn {x} on a pcp list of zone {} is not a pcp page of it",
                            z.name
                        ));
                    }
                    pc += 1;
                    x = self.next[x as usize];
                }
            }
            if pc != z.pcp.count {
                return bad(format!(
                    "zone {}: pcp count {} but {pc} linked",
                    z.name, z.pcp.count
                ));
            }
            pcp_members += pc as u64;
            // LRU: exactly the live reclaimable objects of this zone
            let mut x = z.lru.head;
            let mut n = 0u32;
            let mut pages = 0u64;
            while x != NONE {
                n += 1;
                if n > z.lru.nr {
                    return bad(format!("zone {}: LRU longer than its count", z.name));
                }
                let p = self.objs.pfn[x as usize];
                if p == NONE {
                    return bad(format!(
                        "object {x} is on the LRU of zone {} but holds no block",
                        z.name
                    ));
                }
                let f = self.flags[p as usize];
                if kind(f) != K_ALLOC
                    || f & F_LRU == 0
                    || f & F_OBJ == 0
                    || self.next[p as usize] != x
                {
                    return bad(format!(
                        "object {x} on the LRU: its block at pfn {p} is not an LRU page of it"
                    ));
                }
                if self.zone_of_pfn(p as u64) != zi {
                    return bad(format!(
                        "object {x} on the LRU of zone {} holds pfn {p} of another zone",
                        z.name
                    ));
                }
                pages += 1u64 << forder(f);
                x = self.objs.lru_next[x as usize];
            }
            if n != z.lru.nr || pages != z.lru_pages {
                return bad(format!(
                    "zone {}: LRU count {} pages {} but {n} objects {pages} pages linked",
                    z.name, z.lru.nr, z.lru_pages
                ));
            }
            if self.policy == Policy::AntiFrag {
                // a usemap entry says Global only for a block that is whole on the global list
                let nb = (z.spanned >> (MAX_ORDER - 1)) as usize;
                for b in 0..nb {
                    let h = z.start_pfn + ((b as u64) << (MAX_ORDER - 1));
                    let f = self.flags[h as usize];
                    let whole_free = kind(f) == K_FREE && forder(f) as usize == MAX_ORDER - 1;
                    if (z.block_type[b] as usize == LT_GLOBAL)
                        != (whole_free && ftype(f) == LT_GLOBAL)
                    {
                        return bad(format!(
                            "zone {} block {b}: usemap and free_area_global disagree",
                            z.name
                        ));
                    }
                }
            }
        }
        // walk the pages: every pfn is covered by exactly one head
        let mut heads_free = 0u64;
        let mut heads_pcp = 0u64;
        let mut lru_heads = 0u64;
        for (zi, z) in self.zones.iter().enumerate() {
            let _ = zi;
            let mut p = z.start_pfn;
            while p < z.end_pfn() {
                let f = self.flags[p as usize];
                let o = forder(f);
                match kind(f) {
                    K_FREE | K_ALLOC => {
                        let rel = p - z.start_pfn;
                        if rel % (1u64 << o) != 0 || p + (1u64 << o) > z.end_pfn() {
                            return bad(format!(
                                "block at pfn {p} order {o} is misaligned or crosses its zone"
                            ));
                        }
                        for q in p + 1..p + (1u64 << o) {
                            if kind(self.flags[q as usize]) != K_TAIL {
                                return bad(format!(
                                    "pfn {q} inside the {} block at pfn {p} order {o} is also a head (page both {} and kind {})",
                                    if kind(f) == K_FREE { "free" } else { "allocated" },
                                    if kind(f) == K_FREE { "free" } else { "allocated" },
                                    kind(self.flags[q as usize])
                                ));
                            }
                        }
                        if kind(f) == K_FREE {
                            heads_free += 1;
                        } else if f & F_LRU != 0 {
                            lru_heads += 1;
                        }
                        p += 1u64 << o;
                    }
                    K_PCP => {
                        heads_pcp += 1;
                        p += 1
                    }
                    K_RESERVED => p += 1,
                    _ => {
                        return bad(format!(
                            "pfn {p} is covered by no block (a stray tail page)"
                        ))
                    }
                }
            }
        }
        if heads_free != list_members {
            return bad(format!(
                "{heads_free} free heads in the memory map but {list_members} on free lists"
            ));
        }
        if heads_pcp != pcp_members {
            return bad(format!(
                "{heads_pcp} pcp pages in the memory map but {pcp_members} on pcp lists"
            ));
        }
        let lru_objs: u64 = self.zones.iter().map(|z| z.lru.nr as u64).sum();
        if lru_heads != lru_objs {
            return bad(format!(
                "{lru_heads} blocks marked LRU but {lru_objs} objects on LRUs"
            ));
        }
        Ok(())
    }
}

/// A zeroed per-pfn array. Zeroed memory is mapped lazily; on Linux we ask for
/// transparent huge pages so that touching a page head every 4 KiB at boot costs
/// one fault per 2 MiB instead of one per 4 KiB (a 1 TiB machine boots in seconds).
fn pfn_array<T: Copy + Default>(n: usize, zero: T) -> Vec<T> {
    let v = vec![zero; n];
    #[cfg(target_os = "linux")]
    {
        let bytes = n * std::mem::size_of::<T>();
        const HUGE: usize = 2 << 20;
        if bytes >= 4 * HUGE {
            let start = (v.as_ptr() as usize).next_multiple_of(HUGE);
            let end = (v.as_ptr() as usize + bytes) & !(HUGE - 1);
            if end > start {
                // SAFETY: the range lies inside the vector's own allocation; MADV_HUGEPAGE
                // only changes how the kernel backs it and never its contents.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
                }
            }
        }
    }
    v
}

fn isqrt(x: u64) -> u64 {
    if x == 0 {
        return 0;
    }
    let mut r = (x as f64).sqrt() as u64;
    while r * r > x {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= x {
        r += 1;
    }
    r
}
