//! A machine built from a real one's snapshot: its zones from `/proc/zoneinfo`,
//! its pages from `/proc/kpageflags` (the kernel's `fs/proc/page.c` and
//! `include/uapi/linux/kernel-page-flags.h`), its pageblock types agreeing with
//! `/proc/pagetypeinfo`'s counts (`mm/vmstat.c`'s `pagetypeinfo_showblockcount_print`).
//!
//! - BUDDY pages (today every page of a free buddy block carries the bit) are
//!   free: each zone's runs of them are split into the largest aligned blocks,
//!   which gives `/proc/buddyinfo` exactly on a consistent snapshot.
//! - Holes and unmanaged present pages are reserved: pages with RESERVED,
//!   NOPAGE, OFFLINE or HWPOISON set, then, while the zone has fewer reserved
//!   pages than `spanned - managed`, the longest runs of pages whose flags read
//!   0 (kpageflags cannot tell a hole or uninitialised memory from a page the
//!   kernel allocated without flags; the longest runs are the holes).
//! - Allocated pages by their flags: LRU, ANON, MMAP, SWAPBACKED, SWAPCACHE,
//!   UNEVICTABLE, KSM, THP: movable user pages; SLAB: kernel pages, reclaimable
//!   inside a pageblock of type Reclaimable; the rest (page tables, flag-less
//!   kernel pages, pcp pages): unmovable. A compound page (head plus tails) of
//!   a power-of-two size, aligned, is one block; its class is its head's.
//! - Pageblock types (mobility): Reclaimable to the pageblocks with the most
//!   slab pages, Unmovable (and HighAtomic, which kmm does not model) to those
//!   with the most unmovable pages, Movable to the rest, as many of each as
//!   pagetypeinfo counts. Antifrag (one type per maximum-order block, an era
//!   with no such counts) takes each block's dominant class.
//!
//! The snapshot's pages are not trace objects: kmm's reclaim cannot free them
//! and a policy replay only moves the pages its trace allocates.

use super::machine::Machine;
use super::mmzone::{Zone, ZNONE};
use super::page::{mkflags, K_ALLOC, K_RESERVED, LT_KERNRCLM, LT_NORCLM, LT_USERRCLM};
use super::policy::has_block_types;
use crate::config::{Layout, MachineConfig, Policy};
use crate::error::{Error, Result};
use crate::{ensure, MAX_ORDER, PAGE_SHIFT};

// kpageflags bits (include/uapi/linux/kernel-page-flags.h; 32 is kernel-internal)
pub const KPF_LRU: u32 = 5;
pub const KPF_SLAB: u32 = 7;
pub const KPF_BUDDY: u32 = 10;
pub const KPF_MMAP: u32 = 11;
pub const KPF_ANON: u32 = 12;
pub const KPF_SWAPCACHE: u32 = 13;
pub const KPF_SWAPBACKED: u32 = 14;
pub const KPF_COMPOUND_HEAD: u32 = 15;
pub const KPF_COMPOUND_TAIL: u32 = 16;
pub const KPF_UNEVICTABLE: u32 = 18;
pub const KPF_HWPOISON: u32 = 19;
pub const KPF_NOPAGE: u32 = 20;
pub const KPF_KSM: u32 = 21;
pub const KPF_THP: u32 = 22;
pub const KPF_OFFLINE: u32 = 23;
pub const KPF_RESERVED: u32 = 32;

const fn bit(b: u32) -> u64 {
    1 << b
}
const USER: u64 = bit(KPF_LRU)
    | bit(KPF_MMAP)
    | bit(KPF_ANON)
    | bit(KPF_SWAPCACHE)
    | bit(KPF_SWAPBACKED)
    | bit(KPF_UNEVICTABLE)
    | bit(KPF_KSM)
    | bit(KPF_THP);
const RESV: u64 = bit(KPF_RESERVED) | bit(KPF_NOPAGE) | bit(KPF_OFFLINE) | bit(KPF_HWPOISON);

/// What a snapshot says a page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PageClass {
    Free = 0,
    Reserved = 1,
    /// Flags read 0: a hole, uninitialised memory, or a flag-less kernel page.
    Zero = 2,
    Movable = 3,
    Slab = 4,
    Unmovable = 5,
}

/// The class of one kpageflags word.
#[inline]
pub fn classify(f: u64) -> PageClass {
    if f & bit(KPF_BUDDY) != 0 {
        PageClass::Free
    } else if f & RESV != 0 {
        PageClass::Reserved
    } else if f == 0 {
        PageClass::Zero
    } else if f & USER != 0 {
        PageClass::Movable
    } else if f & bit(KPF_SLAB) != 0 {
        PageClass::Slab
    } else {
        PageClass::Unmovable
    }
}

/// A zone as `/proc/zoneinfo` shows it, with its pageblock counts from
/// `/proc/pagetypeinfo` when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealZone {
    pub node: usize,
    pub name: String,
    pub start_pfn: u64,
    pub spanned: u64,
    pub present: u64,
    pub managed: u64,
    /// (min, low, high) watermarks; None keeps kmm's.
    pub watermarks: Option<(u64, u64, u64)>,
    /// Pageblocks per type: Unmovable, Movable, Reclaimable, HighAtomic.
    pub block_counts: Option<[u64; 4]>,
}

/// How the snapshot's pages were read, per zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotLoad {
    /// Per zone: pages per [`PageClass`] after the flag-0 pages were split
    /// into reserved and unmovable (index: class as u8).
    pub classes: Vec<[u64; 6]>,
}

const BLOCK_ALIGN: u64 = 1 << (MAX_ORDER - 1);

fn zone_type(layout: Layout, name: &str) -> Result<usize> {
    layout
        .zone_names()
        .iter()
        .position(|n| *n == name)
        .ok_or_else(|| {
            Error::Config(format!(
                "zone {name:?} of the snapshot is not one kmm models on {} (expected {:?}): Movable, Device and HighMem zones are not supported",
                layout.name(),
                layout.zone_names()
            ))
        })
}

impl Machine {
    /// Build a machine from a real one's zones and kpageflags (one u64 per pfn
    /// from pfn 0) under `policy`; see the module documentation for the rules.
    pub fn from_snapshot(
        policy: Policy,
        zones: &[RealZone],
        kpageflags: &[u64],
    ) -> Result<(Machine, SnapshotLoad)> {
        Machine::from_snapshot_tuned(policy, |_| {}, zones, kpageflags)
    }

    /// [`Machine::from_snapshot`] with the configuration's other tunables
    /// (compaction, active freeing, ...) set by `tune` before it is validated.
    pub fn from_snapshot_tuned(
        policy: Policy,
        tune: impl FnOnce(&mut MachineConfig),
        zones: &[RealZone],
        kpageflags: &[u64],
    ) -> Result<(Machine, SnapshotLoad)> {
        let layout = Layout::X86_64;
        ensure!(!zones.is_empty(), Parse, "snapshot has no zone with pages");
        let mut order: Vec<usize> = (0..zones.len()).collect();
        order.sort_by_key(|&i| zones[i].start_pfn);
        let mut prev_end = 0u64;
        let nodes = zones.iter().map(|z| z.node).max().unwrap_or(0) + 1;
        ensure!(
            nodes <= 64,
            Parse,
            "snapshot has {nodes} nodes (kmm models at most 64)"
        );
        let mut kstart = vec![0u64; zones.len()];
        for &i in &order {
            let z = &zones[i];
            zone_type(layout, &z.name)?;
            ensure!(
                z.spanned > 0 && z.present <= z.spanned && z.managed <= z.present,
                Parse,
                "zoneinfo node {} zone {}: spanned {} present {} managed {} do not nest",
                z.node,
                z.name,
                z.spanned,
                z.present,
                z.managed
            );
            // the zone's frame (`Zone::start_pfn`) starts at the maximum-order
            // boundary at or below it, which must not be inside the zone before
            let s = z.start_pfn / BLOCK_ALIGN * BLOCK_ALIGN;
            ensure!(
                z.start_pfn >= prev_end && s >= prev_end,
                Parse,
                "zoneinfo node {} zone {} (pfns {}..{}) {} the zone before it (ends at pfn {prev_end}); kmm needs a zone that starts inside a maximum-order block (of {BLOCK_ALIGN} pages) to be that block's only zone",
                z.node,
                z.name,
                z.start_pfn,
                z.start_pfn + z.spanned,
                if z.start_pfn < prev_end { "overlaps" } else { "shares a maximum-order block with" }
            );
            kstart[i] = s;
            prev_end = z.start_pfn + z.spanned;
        }
        let nr_pages = prev_end;
        ensure!(
            kpageflags.len() as u64 >= nr_pages,
            Parse,
            "kpageflags holds {} pfns but zoneinfo's zones end at pfn {nr_pages} (truncated?)",
            kpageflags.len()
        );
        ensure!(
            nr_pages < u32::MAX as u64,
            Parse,
            "snapshot spans {nr_pages} pfns; kmm's 32-bit pfns end at 16 TiB"
        );
        let mut cfg = MachineConfig::new(layout, nr_pages << PAGE_SHIFT);
        cfg.policy = policy;
        cfg.nodes = nodes;
        cfg.kernel_image_bytes = 0;
        tune(&mut cfg);
        cfg.validate()?;
        let block_order = cfg.effective_pageblock_order();

        let mut kzones = Vec::with_capacity(zones.len());
        let mut zone_index = vec![[ZNONE; 3]; nodes];
        for &i in &order {
            let z = &zones[i];
            let zt = zone_type(layout, &z.name)?;
            ensure!(
                zone_index[z.node][zt] == ZNONE,
                Parse,
                "zoneinfo lists node {} zone {} twice",
                z.node,
                z.name
            );
            zone_index[z.node][zt] = kzones.len() as u16;
            let spanned = z.start_pfn + z.spanned - kstart[i];
            let nr_blocks = if has_block_types(policy) {
                ((spanned >> block_order) + 1) as usize
            } else {
                0
            };
            let mut kz = Zone::new(
                z.node,
                zt,
                layout.zone_names()[zt],
                kstart[i],
                spanned,
                z.present,
                nr_blocks,
            );
            kz.zone_start_pfn = z.start_pfn;
            kz.spanned_pages = z.spanned;
            kz.reserved = z.present - z.managed;
            kzones.push(kz);
        }
        let zonelists = super::mm_init::build_zonelists(&cfg, &zone_index);
        let n = nr_pages as usize;
        // pfns before the first zone and in gaps between zones stay reserved
        let mut m = Machine::empty(
            cfg,
            kzones,
            zone_index,
            zonelists,
            mkflags(K_RESERVED, 0, 0),
        );
        let mut load = SnapshotLoad::default();
        for (zi, &i) in order.iter().enumerate() {
            let classes = m.load_zone(zi, &zones[i], &kpageflags[..n]);
            load.classes.push(classes);
        }
        m.setup_per_zone_wmarks();
        for (zi, &i) in order.iter().enumerate() {
            if let Some((min, low, high)) = zones[i].watermarks {
                let z = &mut m.zones[zi];
                (z.pages_min, z.pages_low, z.pages_high) = (min, low, high);
            }
        }
        m.setup_per_zone_lowmem_reserve();
        m.setup_pagesets();
        m.policy_init();
        Ok((m, load))
    }

    /// Classify, reserve, type and free one zone's pages; returns pages per class.
    fn load_zone(&mut self, zi: usize, rz: &RealZone, kpf: &[u64]) -> [u64; 6] {
        let (zs, ze) = (self.zones[zi].start_pfn, self.zones[zi].end_pfn());
        let len = (ze - zs) as usize;
        let mut class: Vec<u8> = (0..len)
            .map(|r| {
                let pfn = zs + r as u64;
                if pfn < rz.start_pfn {
                    PageClass::Reserved as u8
                } else {
                    classify(kpf[pfn as usize]) as u8
                }
            })
            .collect();
        // compound pages take their head's class
        let mut r = 0;
        while r < len {
            let f = kpf[(zs as usize) + r];
            if f & bit(KPF_COMPOUND_HEAD) != 0 && class[r] != PageClass::Free as u8 {
                let c = class[r];
                let mut e = r + 1;
                while e < len && kpf[zs as usize + e] & bit(KPF_COMPOUND_TAIL) != 0 {
                    class[e] = c;
                    e += 1;
                }
                r = e;
            } else {
                r += 1;
            }
        }
        // holes and unmanaged pages: the longest flag-0 runs, until spanned - managed
        let want = (ze - zs).saturating_sub(rz.managed);
        let have = class
            .iter()
            .filter(|&&c| c == PageClass::Reserved as u8)
            .count() as u64;
        let mut runs: Vec<(usize, usize)> = Vec::new();
        let mut r = 0;
        while r < len {
            if class[r] == PageClass::Zero as u8 {
                let s = r;
                while r < len && class[r] == PageClass::Zero as u8 {
                    r += 1;
                }
                runs.push((s, r - s));
            } else {
                r += 1;
            }
        }
        runs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut need = want.saturating_sub(have) as usize;
        for &(s, l) in &runs {
            if need == 0 {
                break;
            }
            let take = l.min(need);
            class[s..s + take].fill(PageClass::Reserved as u8);
            need -= take;
        }
        for c in class.iter_mut() {
            if *c == PageClass::Zero as u8 {
                *c = PageClass::Unmovable as u8;
            }
        }
        let mut counts = [0u64; 6];
        for &c in &class {
            counts[c as usize] += 1;
        }
        self.assign_block_types(zi, rz, &class);
        // the memory map
        let mut r = 0usize;
        while r < len {
            let pfn = zs + r as u64;
            let c = class[r];
            if c == PageClass::Reserved as u8 {
                self.flags[pfn as usize] = mkflags(K_RESERVED, 0, 0);
                r += 1;
            } else if c == PageClass::Free as u8 {
                let mut e = r;
                while e < len && class[e] == PageClass::Free as u8 {
                    e += 1;
                }
                self.free_run(zi, r as u64, e as u64);
                r = e;
            } else {
                let o = self.compound_order(kpf, zs, r, len);
                let t = match c {
                    x if x == PageClass::Movable as u8 => LT_USERRCLM,
                    x if x == PageClass::Slab as u8
                        && self.block_list_type(zi, r as u64) == Some(LT_KERNRCLM) =>
                    {
                        LT_KERNRCLM
                    }
                    _ => LT_NORCLM,
                };
                self.flags[pfn as usize] = mkflags(K_ALLOC, o, t);
                for q in 1..(1usize << o) {
                    self.flags[pfn as usize + q] = super::page::K_TAIL;
                }
                r += 1 << o;
            }
        }
        counts
    }

    /// Order of the compound page headed at zone-relative `r` when it is one
    /// aligned power-of-two block of allocated pages, else 0.
    fn compound_order(&self, kpf: &[u64], zs: u64, r: usize, len: usize) -> u32 {
        let f = kpf[zs as usize + r];
        if f & bit(KPF_COMPOUND_HEAD) == 0 {
            return 0;
        }
        let mut e = r + 1;
        while e < len
            && e - r < BLOCK_ALIGN as usize
            && kpf[zs as usize + e] & bit(KPF_COMPOUND_TAIL) != 0
        {
            e += 1;
        }
        let n = e - r;
        if !n.is_power_of_two() || r % n != 0 {
            return 0;
        }
        n.trailing_zeros()
    }

    /// The list type of the pageblock at zone-relative `rel` (None: vanilla).
    fn block_list_type(&self, zi: usize, rel: u64) -> Option<usize> {
        if !has_block_types(self.policy) {
            return None;
        }
        Some(self.zones[zi].block_type[(rel >> self.block_order) as usize] as usize)
    }

    /// Free the run of free pages `[r, e)` (zone-relative) as the largest aligned blocks.
    fn free_run(&mut self, zi: usize, mut r: u64, e: u64) {
        let zs = self.zones[zi].start_pfn;
        while r < e {
            let mut o = (MAX_ORDER - 1) as u32;
            while r % (1 << o) != 0 || r + (1 << o) > e {
                o -= 1;
            }
            // as a merge would place it: a block larger than a pageblock carries
            // one type (mobility), a whole maximum-order block is global (antifrag)
            let lt = self.free_list_type(zi, r, None);
            let lt = self.merged_list_type(zi, r, o, lt);
            let p = (zs + r) as usize;
            self.flags[p + 1..p + (1 << o)].fill(super::page::K_TAIL);
            self.add_free(zi, p as u32, o, lt);
            r += 1 << o;
        }
    }

    /// Pageblock types from the counts (mobility) or each block's dominant class.
    fn assign_block_types(&mut self, zi: usize, rz: &RealZone, class: &[u8]) {
        if !has_block_types(self.policy) {
            return;
        }
        let bo = self.block_order;
        let nb = self.zones[zi].block_type.len();
        // per block: [free, movable, slab, unmovable]
        let mut per = vec![[0u32; 4]; nb];
        for (r, &c) in class.iter().enumerate() {
            let b = r >> bo;
            match c {
                x if x == PageClass::Free as u8 => per[b][0] += 1,
                x if x == PageClass::Movable as u8 => per[b][1] += 1,
                x if x == PageClass::Slab as u8 => per[b][2] += 1,
                x if x == PageClass::Unmovable as u8 => per[b][3] += 1,
                _ => {}
            }
        }
        let types = &mut self.zones[zi].block_type;
        match (self.policy.has_migratetypes(), rz.block_counts) {
            (true, Some([unmov, _mov, recl, high])) => {
                types.fill(LT_USERRCLM as u8);
                let mut taken = vec![false; nb];
                for (lt, count, key) in [(LT_KERNRCLM, recl, 2usize), (LT_NORCLM, unmov + high, 3)]
                {
                    let mut idx: Vec<usize> = (0..nb).filter(|&b| !taken[b]).collect();
                    idx.sort_by(|&a, &b| per[b][key].cmp(&per[a][key]).then(a.cmp(&b)));
                    for &b in idx.iter().take(count as usize) {
                        types[b] = lt as u8;
                        taken[b] = true;
                    }
                }
            }
            _ => {
                for (b, p) in per.iter().enumerate() {
                    let lt = if p[3] > p[1] && p[3] >= p[2] {
                        LT_NORCLM
                    } else if p[2] > p[1] {
                        LT_KERNRCLM
                    } else {
                        LT_USERRCLM
                    };
                    types[b] = lt as u8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::page::{PM_FREE, PM_RESERVED};

    const B: u64 = 1 << KPF_BUDDY;

    fn zone(name: &str, start: u64, spanned: u64, managed: u64) -> RealZone {
        RealZone {
            node: 0,
            name: name.into(),
            start_pfn: start,
            spanned,
            present: spanned,
            managed,
            watermarks: None,
            block_counts: None,
        }
    }

    /// An obviously correct model: buddyinfo of runs split into aligned blocks.
    fn model(flags: &[u64], start: u64, end: u64) -> [u64; MAX_ORDER] {
        let mut out = [0u64; MAX_ORDER];
        let mut p = start;
        while p < end {
            if flags[p as usize] & B == 0 {
                p += 1;
                continue;
            }
            let mut e = p;
            while e < end && flags[e as usize] & B != 0 {
                e += 1;
            }
            let mut q = p;
            while q < e {
                let mut o = MAX_ORDER - 1;
                while q % (1 << o) != 0 || q + (1 << o) > e {
                    o -= 1;
                }
                out[o] += 1;
                q += 1 << o;
            }
            p = e;
        }
        out
    }

    #[test]
    fn free_runs_give_the_buddyinfo_of_the_model() {
        let n = 1usize << 16;
        let mut f = vec![1u64 << KPF_LRU; n];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for v in f.iter_mut().skip(1) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 3 != 0 {
                *v = B;
            }
        }
        for p in (4096..8192).chain(30000..33000) {
            f[p] = B;
        }
        for policy in Policy::ALL {
            let zones = [
                zone("DMA", 1, 4095, 4095),
                zone("DMA32", 4096, n as u64 - 4096, n as u64 - 4096),
            ];
            let (m, load) = Machine::from_snapshot(policy, &zones, &f).unwrap();
            m.check().unwrap();
            let fa = m.free_area();
            assert_eq!(&fa[..MAX_ORDER], &model(&f, 1, 4096)[..], "{policy:?}");
            assert_eq!(
                &fa[MAX_ORDER..2 * MAX_ORDER],
                &model(&f, 4096, n as u64)[..],
                "{policy:?}"
            );
            let zs: Vec<(u64, u64)> = m
                .zone_stats()
                .iter()
                .map(|z| (z.start_pfn, z.spanned))
                .collect();
            assert_eq!(zs, vec![(1, 4095), (4096, n as u64 - 4096)]);
            assert_eq!(load.classes.len(), 2);
            let pm = m.page_map();
            assert_eq!(pm[0], PM_RESERVED);
            assert_eq!(pm[5000], PM_FREE);
        }
    }

    /// Zones at arbitrary pfns (off every block boundary, holes between them):
    /// the views give them exactly, every free block lies in one zone, and
    /// after every free page is allocated and freed again (merging all the
    /// way) the free blocks are the model's again: no merge crossed a zone's
    /// edge or reached a hole.
    #[test]
    fn zones_at_arbitrary_pfns_are_exact_and_never_merge_across() {
        let n = 3 * 4096 + 700;
        let f = vec![B; n];
        // (start, spanned): DMA starts at 3, a hole 1000..1500, DMA32 to a
        // pfn off every boundary, a hole, Normal from pfn 9000 to the end
        let spans = [(3u64, 997u64), (1500, 6100 - 1500), (9000, n as u64 - 9000)];
        let names = ["DMA", "DMA32", "Normal"];
        let zones: Vec<RealZone> = spans
            .iter()
            .zip(names)
            .map(|(&(s, l), nm)| zone(nm, s, l, l))
            .collect();
        for policy in Policy::ALL {
            let (mut m, _) = Machine::from_snapshot(policy, &zones, &f).unwrap();
            m.check().unwrap();
            let got: Vec<(u64, u64, u64)> = m
                .zone_stats()
                .iter()
                .map(|z| (z.start_pfn, z.spanned, z.managed))
                .collect();
            let want: Vec<(u64, u64, u64)> = spans.iter().map(|&(s, l)| (s, l, l)).collect();
            assert_eq!(got, want, "{policy:?}");
            let model_fa: Vec<u64> = spans
                .iter()
                .flat_map(|&(s, l)| model(&f, s, s + l))
                .collect();
            assert_eq!(m.free_area(), model_fa, "{policy:?}");
            // allocate every page, then free them in a scrambled order
            let mut pfns = Vec::new();
            while let Some(p) = m
                .alloc(0, crate::gfp::GFP_KERNEL | crate::gfp::__GFP_DMA, None)
                .unwrap()
            {
                pfns.push(p);
            }
            while let Some(p) = m.alloc(0, crate::gfp::GFP_KERNEL, None).unwrap() {
                pfns.push(p);
            }
            for &p in &pfns {
                let zi = m.zone_of_pfn(p);
                let (s, l) = spans[zi];
                assert!(
                    p >= s && p < s + l,
                    "{policy:?}: pfn {p} allocated outside its zone"
                );
            }
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for i in (1..pfns.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                pfns.swap(i, (x % (i as u64 + 1)) as usize);
            }
            for p in pfns {
                m.free(p).unwrap();
            }
            m.drain_all_pages();
            m.check().unwrap();
            assert_eq!(m.free_area(), model_fa, "{policy:?} after free");
        }
    }

    #[test]
    fn a_zone_sharing_a_block_with_the_zone_before_is_an_error() {
        let f = vec![B; 8192];
        let zones = [zone("DMA", 0, 1000, 1000), zone("DMA32", 1010, 4000, 4000)];
        let e = Machine::from_snapshot(Policy::Mobility, &zones, &f).unwrap_err();
        assert!(e.message().contains("shares a maximum-order block"), "{e}");
    }

    #[test]
    fn flag_zero_runs_become_the_unmanaged_pages() {
        let n = 8192usize;
        let mut f = vec![B; n];
        f[100..110].fill(0); // a flag-less kernel allocation
        f[4096..6144].fill(0); // uninitialised memory
        f[50] = 1 << KPF_RESERVED;
        let zones = [zone("DMA32", 0, n as u64, n as u64 - 2049)];
        let (m, load) = Machine::from_snapshot(Policy::Mobility, &zones, &f).unwrap();
        m.check().unwrap();
        let c = load.classes[0];
        assert_eq!(c[PageClass::Reserved as usize], 2049);
        assert_eq!(c[PageClass::Unmovable as usize], 10);
        assert_eq!(m.zone_stats()[0].managed, n as u64 - 2049);
    }

    #[test]
    fn pageblock_counts_are_met() {
        let n = 16 * 512usize;
        let mut f = vec![B; n];
        f[0..300].fill(1 << KPF_SLAB); // block 0: slab
        f[512..900].fill(1 << 26); // block 1: page tables
        f[1024..1100].fill(1 << KPF_SLAB); // block 2: some slab
        f[1536..2048].fill(1 << KPF_LRU);
        let mut z = zone("DMA32", 0, n as u64, n as u64);
        z.block_counts = Some([1, 13, 2, 0]);
        let (m, _) = Machine::from_snapshot(Policy::Mobility, &[z], &f).unwrap();
        m.check().unwrap();
        let t = &m.zones[0].block_type;
        assert_eq!((t[0], t[1], t[2], t[3]), (1, 0, 1, 2));
        assert_eq!(t.iter().filter(|&&x| x == 2).count(), 13 + 1); // + the block past the end
    }

    #[test]
    fn short_kpageflags_and_bad_zones_are_errors() {
        let f = vec![B; 1000];
        let e =
            Machine::from_snapshot(Policy::Vanilla, &[zone("DMA", 0, 4096, 4096)], &f).unwrap_err();
        assert!(e.message().contains("kpageflags holds 1000 pfns"), "{e}");
        let e = Machine::from_snapshot(Policy::Vanilla, &[zone("Movable", 0, 512, 512)], &f)
            .unwrap_err();
        assert!(e.message().contains("not one kmm models"), "{e}");
        let mut z = zone("DMA", 0, 512, 512);
        z.managed = 600;
        assert!(Machine::from_snapshot(Policy::Vanilla, &[z], &f).is_err());
    }
}
