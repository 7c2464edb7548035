//! Shared test support: machine builders and a small, obviously-correct
//! reference model of the physical memory map, the 2.6.11 watermark check
//! (written from 2.6.11's `mm/page_alloc.c`) and the three allocators' block choice
//! (2.6.11, Gorman's v7 patch, today's `fallbacks[]`). The model never looks at engine internals except
//! where a test says so explicitly (the free-list heads, to name the block a
//! list-head allocator must return).
#![allow(dead_code)]

use kmm_core::gfp::{self, AllocType};
use kmm_core::mm::page::{
    LT_FALLBACK, LT_GLOBAL, LT_KERNRCLM, LT_NORCLM, LT_USERRCLM, PM_ALLOC, PM_FREE, PM_PCP,
    PM_RESERVED,
};
use kmm_core::replay::{TraceOp, OP_ALLOC, OP_FREE, OP_TICK, OP_TOUCH};
use kmm_core::{Layout, Machine, MachineConfig, Policy, MAX_ORDER};
use std::collections::BTreeMap;

pub const MIB: u64 = 1 << 20;
pub const TOP: u32 = (MAX_ORDER - 1) as u32;

/// Trace record: allocate object `obj` as a block of `order` with mask `gfp`.
pub fn alloc(obj: u32, order: u8, gfp: u32) -> TraceOp {
    TraceOp {
        op: OP_ALLOC,
        order,
        obj,
        gfp,
        ..TraceOp::default()
    }
}

/// Trace record: free object `obj`.
pub fn free(obj: u32) -> TraceOp {
    TraceOp {
        op: OP_FREE,
        obj,
        ..TraceOp::default()
    }
}

/// Trace record: touch object `obj` (a refault if it was reclaimed).
pub fn touch(obj: u32) -> TraceOp {
    TraceOp {
        op: OP_TOUCH,
        obj,
        ..TraceOp::default()
    }
}

/// Trace record: let `us` microseconds of simulated time pass.
pub fn tick(us: u32) -> TraceOp {
    TraceOp {
        op: OP_TICK,
        obj: us,
        ..TraceOp::default()
    }
}

/// A machine with pcp and reclaim as given and everything else default.
pub fn boot(layout: Layout, mem: u64, policy: Policy, pcp: bool, reclaim: bool) -> Machine {
    let mut cfg = MachineConfig::new(layout, mem);
    cfg.policy = policy;
    cfg.pcp = pcp;
    cfg.reclaim = reclaim;
    Machine::new(cfg).expect("boot")
}

/// The machine topologies the differential tests run on.
pub fn topology(layout: Layout, topo: usize, policy: Policy, pcp: bool) -> MachineConfig {
    let mut cfg = match topo {
        // one node, 64 MiB: zones start and end on maximum-order boundaries
        0 => MachineConfig::new(layout, 64 * MIB),
        // two nodes of 512 MiB: on x86_32 node 1 holds Normal and HighMem
        2 => {
            let mut c = MachineConfig::new(layout, 1024 * MIB);
            c.nodes = 2;
            c
        }
        // two nodes of unaligned size: zone starts and ends are not multiples of
        // 1024 pages, so alignment must be relative to the zone start
        _ => {
            let mut c = MachineConfig::new(layout, 70 * MIB);
            c.nodes = 2;
            let n0 = 40 * MIB + 20 * 4096;
            c.node_sizes = vec![n0, 70 * MIB - n0];
            c
        }
    };
    cfg.policy = policy;
    cfg.pcp = pcp;
    cfg.reclaim = false;
    cfg
}

/// Index of the zone of (node, zone name) in `m.zones`.
pub fn zone_index(m: &Machine, node: usize, name: &str) -> usize {
    m.zones
        .iter()
        .position(|z| z.node == node && z.name == name)
        .unwrap_or_else(|| panic!("no zone {name} on node {node}"))
}

/// Allocation type (free-list type number) of a mask, from Gorman's v7 patch:
/// USERRCLM wins, then KERNRCLM, else KernNoRclm.
pub fn ref_type(gfp: u32) -> usize {
    if gfp & gfp::__GFP_USERRCLM != 0 {
        LT_USERRCLM
    } else if gfp & gfp::__GFP_KERNRCLM != 0 {
        LT_KERNRCLM
    } else {
        LT_NORCLM
    }
}

/// Highest zone type a mask may use (2.6.11 `gfp_zone`; DMA32 only exists on x86_64,
/// elsewhere `__GFP_DMA32` means Normal as in kernels without ZONE_DMA32).
pub fn ref_highest_zone(layout: Layout, gfp: u32) -> usize {
    if gfp & gfp::__GFP_DMA != 0 {
        0
    } else if gfp & gfp::__GFP_DMA32 != 0 {
        1
    } else if gfp & gfp::__GFP_HIGHMEM != 0 {
        2
    } else {
        match layout {
            Layout::X86_32 => 1, // Normal, never HighMem
            Layout::X86_64 => 2, // Normal
        }
    }
}

/// The 2.6.11 `zone_watermark_ok`, written from 2.6.11's `mm/page_alloc.c`.
pub fn ref_watermark_ok(
    free_pages: u64,
    nr_free: &[u64; MAX_ORDER],
    order: u32,
    mark: u64,
    lowmem_reserve: u64,
    harder: bool,
    gfp_high: bool,
) -> bool {
    let mut min = mark as i64;
    if gfp_high {
        min -= min / 2;
    }
    if harder {
        min -= min / 4;
    }
    let mut free = free_pages as i64 - ((1i64 << order) - 1);
    if free <= min + lowmem_reserve as i64 {
        return false;
    }
    for (o, &n) in nr_free.iter().enumerate().take(order as usize) {
        free -= (n << o) as i64;
        min >>= 1;
        if free <= min {
            return false;
        }
    }
    true
}

#[derive(Debug, Clone)]
pub struct RefZone {
    pub node: usize,
    pub zt: usize,
    pub start: u64,
    pub spanned: u64,
    pub min: u64,
    pub low: u64,
    pub high: u64,
    pub lowmem_reserve: [u64; 3],
}

/// The reference model: zones and reserved pages as booted, plus the set of
/// allocated blocks. Free memory is whatever is neither.
#[derive(Debug, Clone)]
pub struct Model {
    pub layout: Layout,
    pub policy: Policy,
    pub nodes: usize,
    pub nr_pages: u64,
    pub zones: Vec<RefZone>,
    pub reserved: Vec<bool>,
    /// Head pfn of the allocated block covering each pfn (u32::MAX: none).
    pub owner: Vec<u32>,
    /// head pfn -> (order, allocation type)
    pub blocks: BTreeMap<u64, (u32, usize)>,
}

pub const NOBODY: u32 = u32::MAX;

impl Model {
    /// Take zones and reserved pages from a freshly booted machine.
    pub fn boot(m: &Machine) -> Model {
        let names = m.layout.zone_names();
        let zones: Vec<RefZone> = m
            .zone_stats()
            .iter()
            .map(|s| RefZone {
                node: s.node,
                zt: names.iter().position(|&n| n == s.zone).expect("zone name"),
                start: s.start_pfn,
                spanned: s.spanned,
                min: s.min,
                low: s.low,
                high: s.high,
                lowmem_reserve: s.lowmem_reserve,
            })
            .collect();
        let pm = m.page_map();
        assert_eq!(pm.len() as u64, m.nr_pages);
        for (pfn, &c) in pm.iter().enumerate() {
            assert!(
                c == PM_FREE || c == PM_RESERVED,
                "pfn {pfn} has code {c} right after boot"
            );
        }
        let reserved: Vec<bool> = pm.iter().map(|&c| c == PM_RESERVED).collect();
        // zones tile the memory map in pfn order
        let mut next = 0;
        for z in &zones {
            assert_eq!(z.start, next, "zones do not tile memory");
            next = z.start + z.spanned;
        }
        assert_eq!(next, m.nr_pages);
        // zone statistics agree with the reserved pages
        for (s, z) in m.zone_stats().iter().zip(&zones) {
            let res = (z.start..z.start + z.spanned)
                .filter(|&p| reserved[p as usize])
                .count() as u64;
            assert_eq!(
                s.present - s.managed,
                res,
                "reserved pages of zone {}",
                s.zone
            );
            assert_eq!(
                s.free + s.pcp,
                s.present - res,
                "free pages of zone {} at boot",
                s.zone
            );
        }
        Model {
            layout: m.layout,
            policy: m.policy,
            nodes: m.nr_nodes,
            nr_pages: m.nr_pages,
            zones,
            reserved,
            owner: vec![NOBODY; m.nr_pages as usize],
            blocks: BTreeMap::new(),
        }
    }

    pub fn zone_of(&self, pfn: u64) -> usize {
        self.zones
            .iter()
            .position(|z| pfn >= z.start && pfn < z.start + z.spanned)
            .expect("pfn in a zone")
    }

    pub fn highest_zone(&self, gfp: u32) -> usize {
        ref_highest_zone(self.layout, gfp)
    }

    /// Zones to try: local node first, then the others by distance (10/20 by
    /// default, ties by node id); within a node from the highest allowed zone down.
    pub fn zonelist(&self, node: usize, gfp: u32) -> Vec<usize> {
        let hz = self.highest_zone(gfp);
        let mut nodes: Vec<usize> = (0..self.nodes).collect();
        nodes.sort_by_key(|&n| (if n == node { 10 } else { 20 }, n));
        let mut out = Vec::new();
        for n in nodes {
            for zt in (0..=hz).rev() {
                if let Some(i) = self.zones.iter().position(|z| z.node == n && z.zt == zt) {
                    out.push(i);
                }
            }
        }
        out
    }

    pub fn is_free(&self, pfn: u64) -> bool {
        !self.reserved[pfn as usize] && self.owner[pfn as usize] == NOBODY
    }

    /// Record an allocation the engine made; Err explains why it is impossible.
    pub fn record_alloc(&mut self, pfn: u64, order: u32, t: usize, gfp: u32) -> Result<(), String> {
        if pfn >= self.nr_pages {
            return Err(format!("pfn {pfn} out of range"));
        }
        let zi = self.zone_of(pfn);
        let z = &self.zones[zi];
        let size = 1u64 << order;
        if (pfn - z.start) % size != 0 {
            return Err(format!(
                "block pfn {pfn} order {order} misaligned in its zone"
            ));
        }
        if pfn + size > z.start + z.spanned {
            return Err(format!(
                "block pfn {pfn} order {order} crosses its zone end"
            ));
        }
        if z.zt > self.highest_zone(gfp) {
            return Err(format!(
                "gfp {gfp:#x} got pfn {pfn} in zone type {} above the allowed {}",
                z.zt,
                self.highest_zone(gfp)
            ));
        }
        for p in pfn..pfn + size {
            if self.reserved[p as usize] {
                return Err(format!(
                    "block pfn {pfn} order {order} covers reserved pfn {p}"
                ));
            }
            if self.owner[p as usize] != NOBODY {
                return Err(format!(
                    "block pfn {pfn} order {order} overlaps the live block at {}",
                    self.owner[p as usize]
                ));
            }
        }
        for p in pfn..pfn + size {
            self.owner[p as usize] = pfn as u32;
        }
        self.blocks.insert(pfn, (order, t));
        Ok(())
    }

    pub fn record_free(&mut self, pfn: u64) {
        let (order, _) = self.blocks.remove(&pfn).expect("live block");
        for p in pfn..pfn + (1u64 << order) {
            self.owner[p as usize] = NOBODY;
        }
    }

    /// Free pages of a zone (buddy lists and per-cpu lists together).
    pub fn free_pages(&self, zi: usize) -> u64 {
        let z = &self.zones[zi];
        (z.start..z.start + z.spanned)
            .filter(|&p| self.is_free(p))
            .count() as u64
    }

    /// The canonical buddy decomposition of one zone's free pages: the maximal
    /// aligned blocks (alignment relative to the zone start, orders 0..=10).
    pub fn canonical_zone(&self, zi: usize) -> [u64; MAX_ORDER] {
        let z = &self.zones[zi];
        // prefix[i] = free pages among the zone's first i pages
        let mut prefix = vec![0u64; z.spanned as usize + 1];
        for i in 0..z.spanned as usize {
            prefix[i + 1] = prefix[i] + self.is_free(z.start + i as u64) as u64;
        }
        let all_free = |a: u64, b: u64| prefix[b as usize] - prefix[a as usize] == b - a;
        let mut hist = [0u64; MAX_ORDER];
        let mut rel = 0u64;
        while rel < z.spanned {
            if !all_free(rel, rel + 1) {
                rel += 1;
                continue;
            }
            let mut o = TOP;
            while !(rel % (1 << o) == 0
                && rel + (1 << o) <= z.spanned
                && all_free(rel, rel + (1 << o)))
            {
                o -= 1;
            }
            hist[o as usize] += 1;
            rel += 1 << o;
        }
        hist
    }

    /// `free_area()` as the model expects it: (node, zone type, order) flattened.
    pub fn canonical(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.nodes * 3 * MAX_ORDER];
        for (zi, z) in self.zones.iter().enumerate() {
            let h = self.canonical_zone(zi);
            out[(z.node * 3 + z.zt) * MAX_ORDER..(z.node * 3 + z.zt + 1) * MAX_ORDER]
                .copy_from_slice(&h);
        }
        out
    }
}

/// What the allocator can see of one zone when deciding: buddy free pages,
/// nr_free per order, and which per-cpu lists hold pages.
#[derive(Debug, Clone)]
pub struct ZoneView {
    pub free: u64,
    pub nr_free: [u64; MAX_ORDER],
    pub pcp_nr: [u32; 3],
}

/// Zone views from the model alone (valid when pcp is off: the buddy lists then
/// hold exactly the canonical decomposition).
pub fn views_from_model(model: &Model) -> Vec<ZoneView> {
    (0..model.zones.len())
        .map(|zi| {
            let nr_free = model.canonical_zone(zi);
            let free = nr_free.iter().enumerate().map(|(o, n)| n << o).sum();
            ZoneView {
                free,
                nr_free,
                pcp_nr: [0; 3],
            }
        })
        .collect()
}

/// Zone views from the engine's counters (pcp on: pcp pages are not free pages).
pub fn views_from_engine(m: &Machine) -> Vec<ZoneView> {
    m.zones
        .iter()
        .map(|z| {
            let mut nr_free = [0u64; MAX_ORDER];
            for (o, n) in nr_free.iter_mut().enumerate() {
                *n = z.nr_free(o);
            }
            ZoneView {
                free: z.free_pages,
                nr_free,
                pcp_nr: [z.pcp.lists[0].nr, z.pcp.lists[1].nr, z.pcp.lists[2].nr],
            }
        })
        .collect()
}

/// Does this request go through the per-cpu lists (order 0; antifrag v7: only UserRclm)?
pub fn pcp_path(m: &Machine, order: u32, t: usize) -> bool {
    m.cfg.pcp && order == 0 && (m.policy != Policy::AntiFrag || t == LT_USERRCLM)
}

/// The zone `__alloc_pages` (2.6.11, reclaim off) takes a block from: the first
/// zone of the zonelist that passes the pages_low check and can supply a block,
/// else the first that passes the pages_min check (`__GFP_HIGH` halves the mark,
/// no `__GFP_WAIT` takes a further quarter) and can supply one; None = failure.
pub fn predict_zone(
    m: &Machine,
    model: &Model,
    views: &[ZoneView],
    order: u32,
    gfp: u32,
    node: usize,
) -> Option<usize> {
    let t = ref_type(gfp);
    let hz = model.highest_zone(gfp);
    let via_pcp = pcp_path(m, order, t);
    let can_supply = |zi: usize| {
        let v = &views[zi];
        if via_pcp {
            let li = if m.policy == Policy::Mobility { t } else { 0 };
            v.pcp_nr[li] > 0 || v.free > 0
        } else {
            v.nr_free[order as usize..].iter().any(|&n| n > 0)
        }
    };
    let zl = model.zonelist(node, gfp);
    for pass_low in [true, false] {
        for &zi in &zl {
            let z = &model.zones[zi];
            let v = &views[zi];
            let ok = if pass_low {
                ref_watermark_ok(
                    v.free,
                    &v.nr_free,
                    order,
                    z.low,
                    z.lowmem_reserve[hz],
                    false,
                    false,
                )
            } else {
                ref_watermark_ok(
                    v.free,
                    &v.nr_free,
                    order,
                    z.min,
                    z.lowmem_reserve[hz],
                    gfp & gfp::__GFP_WAIT == 0,
                    gfp & gfp::__GFP_HIGH != 0,
                )
            };
            if ok && can_supply(zi) {
                return Some(zi);
            }
        }
    }
    None
}

/// v7 fallback order (Gorman's patch, `fallback_allocs`), in free-list type numbers.
pub const V7_FALLBACK: [[usize; 2]; 3] = [
    [LT_KERNRCLM, LT_USERRCLM], // KernNoRclm -> KernRclm -> UserRclm
    [LT_NORCLM, LT_USERRCLM],   // KernRclm -> KernNoRclm -> UserRclm
    [LT_NORCLM, LT_KERNRCLM],   // UserRclm -> KernNoRclm -> KernRclm
];
/// Modern fallback table (`fallbacks[]` in today's `mm/page_alloc.c`): Unmovable -> Reclaimable, Movable;
/// Reclaimable -> Unmovable, Movable; Movable -> Reclaimable, Unmovable.
pub const MODERN_FALLBACK: [[usize; 2]; 3] = [
    [LT_KERNRCLM, LT_USERRCLM],
    [LT_NORCLM, LT_USERRCLM],
    [LT_KERNRCLM, LT_NORCLM],
];

/// The block `__rmqueue` must take in zone `zi` (not through pcp): the list
/// type and order it comes from, its head pfn (blocks are taken from the head
/// of a free list, as the kernel does), and the block-type changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub lt: usize,
    pub order: u32,
    pub pfn: u32,
    /// (block index, new type)
    pub relabel: Vec<(usize, u8)>,
}

pub fn predict_pick(m: &Machine, zi: usize, order: u32, t: usize) -> Option<Pick> {
    let z = &m.zones[zi];
    let has = |lt: usize, o: u32| z.free_area[lt][o as usize].nr > 0;
    let smallest = |lt: usize| (order..=TOP).find(|&o| has(lt, o));
    let pick = |lt: usize, o: u32, relabel: Vec<(usize, u8)>| Pick {
        lt,
        order: o,
        pfn: z.free_area[lt][o as usize].head,
        relabel,
    };
    let block_of = |pfn: u32| ((pfn as u64 - z.start_pfn) >> m.block_order) as usize;
    match m.policy {
        Policy::Vanilla => smallest(LT_NORCLM).map(|o| pick(LT_NORCLM, o, vec![])),
        Policy::AntiFrag => {
            if let Some(o) = smallest(t) {
                return Some(pick(t, o, vec![]));
            }
            let reserve = ((z.spanned >> TOP) as f64 * m.cfg.fallback_reserve).ceil() as u64;
            let nglobal = z.free_area[LT_GLOBAL][TOP as usize].nr as u64;
            let global = |owner: usize| {
                let head = z.free_area[LT_GLOBAL][TOP as usize].head;
                pick(LT_GLOBAL, TOP, vec![(block_of(head), owner as u8)])
            };
            if nglobal > reserve {
                return Some(global(t));
            }
            if reserve > 0 {
                if let Some(o) = smallest(LT_FALLBACK) {
                    return Some(pick(LT_FALLBACK, o, vec![]));
                }
                if nglobal > 0 {
                    return Some(global(LT_FALLBACK));
                }
            }
            for &ft in &V7_FALLBACK[t] {
                if let Some(o) = smallest(ft) {
                    return Some(pick(ft, o, vec![]));
                }
            }
            None
        }
        Policy::Mobility => {
            if let Some(o) = smallest(t) {
                return Some(pick(t, o, vec![]));
            }
            let pb = m.block_order;
            let fb = MODERN_FALLBACK[t];
            let first_type = |o: u32| fb.iter().copied().find(|&ft| has(ft, o));
            let can_steal = |o: u32| o >= pb || o >= pb / 2 || t != LT_USERRCLM;
            // steal big: highest order first
            let mut found = (order..=TOP)
                .rev()
                .find_map(|o| first_type(o).map(|ft| (o, ft)))?;
            if !can_steal(found.0) && found.0 > order {
                // a movable request that may not steal takes the smallest block
                found = (order..=TOP).find_map(|o| first_type(o).map(|ft| (o, ft)))?;
            }
            let (o, ft) = found;
            let head = z.free_area[ft][o as usize].head;
            let b = block_of(head);
            let relabel = if o >= pb {
                (b..b + (1usize << (o - pb)))
                    .map(|i| (i, t as u8))
                    .collect()
            } else if can_steal(o) {
                // free + compatible pages of the pageblock, before the steal
                let pm = m.page_map();
                let start = z.start_pfn + ((b as u64) << pb);
                let end = (start + (1u64 << pb)).min(z.start_pfn + z.spanned);
                let mut n = 0u64;
                for p in start..end {
                    let c = pm[p as usize];
                    if c == PM_FREE || c == PM_ALLOC + t as u8 {
                        n += 1;
                    }
                }
                let half = if pb == 0 { 1 } else { 1u64 << (pb - 1) };
                if n >= half {
                    vec![(b, t as u8)]
                } else {
                    vec![]
                }
            } else {
                vec![]
            };
            Some(pick(ft, o, relabel))
        }
    }
}

/// Every consistency check between the engine and the model; Err names the first
/// disagreement.
pub fn verify(m: &Machine, model: &Model) -> Result<(), String> {
    m.check().map_err(|e| format!("check(): {e}"))?;
    // allocated blocks are exactly the model's
    let got: Vec<(u64, u32, usize)> = m
        .allocated_blocks()
        .iter()
        .map(|&(p, o, t)| (p as u64, o as u32, t as usize))
        .collect();
    let want: Vec<(u64, u32, usize)> = model.blocks.iter().map(|(&p, &(o, t))| (p, o, t)).collect();
    if got != want {
        return Err(format!(
            "allocated_blocks differ: engine {} blocks, model {} (first engine {:?}, model {:?})",
            got.len(),
            want.len(),
            got.iter().zip(&want).find(|(a, b)| a != b),
            want.first()
        ));
    }
    // the page map: reserved as booted, allocated as the model says, rest free or pcp
    let pm = m.page_map();
    let mut pcp_per_zone = vec![0u64; model.zones.len()];
    for (pfn, &c) in pm.iter().enumerate() {
        let expect_alloc = model.owner[pfn];
        let ok = if model.reserved[pfn] {
            c == PM_RESERVED
        } else if expect_alloc != NOBODY {
            c == PM_ALLOC + model.blocks[&(expect_alloc as u64)].1 as u8
        } else {
            if c == PM_PCP {
                pcp_per_zone[model.zone_of(pfn as u64)] += 1;
            }
            c == PM_FREE || c == PM_PCP
        };
        if !ok {
            return Err(format!("page_map[{pfn}] = {c} disagrees with the model"));
        }
    }
    // zone counts add up: present = reserved + allocated + free + pcp
    for (zi, s) in m.zone_stats().iter().enumerate() {
        let z = &model.zones[zi];
        let mut reserved = 0;
        let mut allocated = 0;
        for p in z.start..z.start + z.spanned {
            if model.reserved[p as usize] {
                reserved += 1;
            } else if model.owner[p as usize] != NOBODY {
                allocated += 1;
            }
        }
        if s.pcp != pcp_per_zone[zi] {
            return Err(format!(
                "zone {zi}: pcp {} but page_map shows {}",
                s.pcp, pcp_per_zone[zi]
            ));
        }
        if s.present != reserved + allocated + s.free + s.pcp {
            return Err(format!(
                "zone {zi} {}: present {} != reserved {reserved} + allocated {allocated} + free {} + pcp {}",
                s.zone, s.present, s.free, s.pcp
            ));
        }
    }
    // the per-type view adds up to the per-order view
    let fa = m.free_area();
    let (by_type, nt) = m.free_area_by_type();
    for i in 0..model.nodes * 3 {
        for o in 0..MAX_ORDER {
            let sum: u64 = (0..nt).map(|t| by_type[(i * nt + t) * MAX_ORDER + o]).sum();
            if sum != fa[i * MAX_ORDER + o] {
                return Err(format!(
                    "free_area_by_type does not add up at row {i} order {o}"
                ));
            }
        }
    }
    // /proc/buddyinfo, byte for byte (`frag_show` in 2.6.11 `mm/page_alloc.c`): "Node %d, zone %8s " then "%6lu " per order
    let mut want_bi = String::new();
    for z in &model.zones {
        want_bi.push_str(&format!(
            "Node {}, zone {:>8} ",
            z.node,
            m.layout.zone_names()[z.zt]
        ));
        for o in 0..MAX_ORDER {
            want_bi.push_str(&format!("{:6} ", fa[(z.node * 3 + z.zt) * MAX_ORDER + o]));
        }
        want_bi.push('\n');
    }
    if m.buddyinfo() != want_bi {
        return Err(format!(
            "buddyinfo differs:\n{}\nwanted:\n{want_bi}",
            m.buddyinfo()
        ));
    }
    // after draining the per-cpu lists the free lists hold the canonical decomposition
    let want = model.canonical();
    let got = if pcp_per_zone.iter().any(|&n| n > 0) {
        let mut c = m.clone();
        c.drain_pcp();
        c.check()
            .map_err(|e| format!("check() after drain_pcp: {e}"))?;
        c.free_area()
    } else {
        m.free_area()
    };
    if got != want {
        let i = got.iter().zip(&want).position(|(a, b)| a != b).unwrap();
        return Err(format!(
            "free_area differs from the canonical decomposition at (node {}, zone type {}, order {}): engine {} model {}",
            i / (3 * MAX_ORDER),
            (i / MAX_ORDER) % 3,
            i % MAX_ORDER,
            got[i],
            want[i]
        ));
    }
    Ok(())
}

/// Masks the tests draw from.
pub const GFPS: &[u32] = &[
    gfp::GFP_KERNEL,
    gfp::GFP_USER,
    gfp::GFP_HIGHUSER,
    gfp::GFP_DMA,
    gfp::GFP_DMA | gfp::GFP_KERNEL,
    gfp::GFP_ATOMIC,
    gfp::GFP_KERNEL | gfp::__GFP_KERNRCLM,
    gfp::GFP_ATOMIC | gfp::__GFP_KERNRCLM,
    gfp::GFP_KERNEL | gfp::__GFP_HIGH,
    gfp::GFP_NOIO,
    gfp::GFP_DMA32 | gfp::GFP_KERNEL,
    gfp::GFP_HIGHUSER | gfp::__GFP_COLD,
];

pub fn type_of(gfp: u32) -> usize {
    AllocType::from_gfp(gfp) as usize
}

/// Everything observable about a machine, for "unchanged" comparisons
/// (`nobj`: how many trace objects to compare).
#[derive(Debug, PartialEq)]
pub struct Snap {
    pub page_map: Vec<u8>,
    free_area: Vec<u64>,
    by_type: Vec<u64>,
    counters: kmm_core::Counters,
    zones: String,
    pcp: Vec<u32>,
    now_ns: u64,
    objects: Vec<Option<(u32, u32)>>,
}

pub fn snap_objects(m: &Machine, nobj: u32) -> Snap {
    Snap {
        page_map: m.page_map(),
        free_area: m.free_area(),
        by_type: m.free_area_by_type().0,
        counters: m.counters.clone(),
        zones: format!("{:?}", m.zone_stats()),
        pcp: m.zones.iter().map(|z| z.pcp.count).collect(),
        now_ns: m.now_ns,
        objects: (0..nobj).map(|o| m.object_block(o)).collect(),
    }
}
