//! Machine configuration: layout, memory size, NUMA nodes, allocator policy and
//! every tunable, checked in one place ([`MachineConfig::validate`]); the binding
//! and the Python layer only convert types and pass values through.

use crate::ensure;
use crate::error::{Error, Result};
pub use crate::mm::policy::Policy;
use crate::{MAX_ORDER, NONE, PAGE_SHIFT, PAGE_SIZE};

/// Physical address layout, which decides the zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// DMA < 16 MiB, Normal < 896 MiB, HighMem above.
    X86_32,
    /// DMA < 16 MiB, DMA32 < 4 GiB, Normal above.
    X86_64,
}

impl Layout {
    /// Every layout, by canonical name order.
    pub const ALL: [Layout; 2] = [Layout::X86_32, Layout::X86_64];

    /// A layout by name: `x86_32` (or `i386`, `x86-32`), `x86_64` (or `amd64`, `x86-64`).
    pub fn parse(s: &str) -> Result<Layout> {
        match s {
            "x86_32" | "i386" | "x86-32" => Ok(Layout::X86_32),
            "x86_64" | "amd64" | "x86-64" => Ok(Layout::X86_64),
            _ => Err(Error::Config(format!(
                "unknown layout {s:?} (expected \"x86_32\" or \"x86_64\")"
            ))),
        }
    }
    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Layout::X86_32 => "x86_32",
            Layout::X86_64 => "x86_64",
        }
    }
    /// Zone type names of this layout, lowest first (the kernel's zone order).
    pub fn zone_names(self) -> [&'static str; 3] {
        match self {
            Layout::X86_32 => ["DMA", "Normal", "HighMem"],
            Layout::X86_64 => ["DMA", "DMA32", "Normal"],
        }
    }
    /// End pfn (exclusive) of each zone type; the last one is unbounded.
    pub fn zone_limits(self) -> [u64; 3] {
        let mib = (1u64 << 20) >> PAGE_SHIFT;
        match self {
            Layout::X86_32 => [16 * mib, 896 * mib, u64::MAX],
            Layout::X86_64 => [16 * mib, 4096 * mib, u64::MAX],
        }
    }
    /// `sizeof(struct page)` of the era: 32 bytes on i386 2.6.11, 64 on x86_64.
    pub fn struct_page_size(self) -> u64 {
        match self {
            Layout::X86_32 => 32,
            Layout::X86_64 => 64,
        }
    }
    /// Highest memory the layout can address (PAE i386: 64 GiB; we cap x86_64 at 16 TiB,
    /// where 32-bit pfns end).
    pub fn max_bytes(self) -> u64 {
        match self {
            Layout::X86_32 => 64 << 30,
            Layout::X86_64 => 16 << 40,
        }
    }
    /// The `lowmem_reserve_ratio` of a zone type index (DMA 256, DMA32 256, Normal 32).
    pub fn lowmem_reserve_ratio(self, zt: usize) -> u64 {
        match (self, zt) {
            (Layout::X86_32, 0) => 256,
            (Layout::X86_32, 1) => 32,
            (Layout::X86_64, 0) => 256,
            (Layout::X86_64, 1) => 256,
            _ => 32,
        }
    }
    /// Order of a huge page (`HUGETLB_PAGE_ORDER`): 4 MiB pages on non-PAE
    /// i386 (order 10), 2 MiB on x86_64 (order 9). Grouping by mobility sizes
    /// its pageblocks by it (`pageblock_order`).
    pub fn huge_page_order(self) -> u32 {
        match self {
            Layout::X86_32 => 10,
            Layout::X86_64 => 9,
        }
    }
    /// Is zone type `zt` a highmem zone (watermarks from size/1024)?
    pub fn is_highmem(self, zt: usize) -> bool {
        self == Layout::X86_32 && zt == 2
    }
}

/// Everything needed to boot a machine. Build with [`MachineConfig::new`], adjust
/// the fields, and let [`Machine::new`](crate::Machine::new) check them with
/// [`MachineConfig::validate`].
///
/// There is no seed: the engine makes no random choice (nor did the kernel's
/// allocator of the era); randomness belongs to the workloads that drive it.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    pub layout: Layout,
    pub mem_bytes: u64,
    /// Node sizes in bytes; empty = `nodes` equal parts (see [`MachineConfig::set_node_sizes`]).
    pub node_sizes: Vec<u64>,
    /// NUMA nodes, 1..64.
    pub nodes: usize,
    /// Node distance matrix (row = from), default 10 local / 20 remote.
    pub distance: Vec<Vec<u32>>,
    pub policy: Policy,
    /// Kernel image size reserved at 1 MiB on node 0.
    pub kernel_image_bytes: u64,
    /// Per-cpu order-0 lists on (2005 and today: on).
    pub pcp: bool,
    /// Override pcp batch (0 = the 2.6.11 formula from the zone size).
    pub pcp_batch: u32,
    /// Override pcp high mark (0 = 6 * batch, as 2.6.11's hot list).
    pub pcp_high: u32,
    /// CPUs, each with its own per-cpu lists in every zone (`mm::pcp`),
    /// 1..=[`MAX_CPUS`]; a trace record runs on the CPU of its pid.
    pub nr_cpus: u32,
    /// Mobility only: `pageblock_order` (None = MAX_ORDER-1 on x86_32, 9 on x86_64).
    pub pageblock_order: Option<u32>,
    /// Antifrag only (v8): fraction of each zone's maximum-order blocks kept for
    /// fallbacks (0 = v7).
    pub fallback_reserve: f64,
    /// `vm.min_free_kbytes` (0 = the boot-time rule, `sqrt(lowmem_kbytes * 16)`
    /// clamped to 128..65536): the lowmem zones' min watermark in KiB.
    pub min_free_kbytes: u64,
    /// Reclaim (kswapd and direct reclaim of trace objects on the LRU).
    pub reclaim: bool,
    /// kswapd's reclaim speed in simulated time: pages per millisecond.
    pub kswapd_pages_per_ms: u64,
    /// Swap space configured (`total_swap_pages != 0`): on by default, as
    /// the 2005 test machines had it (`docs/model.md`, "Mapped pages and
    /// swap": the V19 reply's linear scanner freed 96% of the order-10
    /// blocks asked for while the builds' heaps were resident). Without it an anonymous page (a
    /// block its task owns, `TF_TASK`) is never moved off the active list
    /// nor reclaimed; with it, an anonymous page is reclaimed (swapped out at
    /// no cost: kmm has no swap I/O) once `refill_inactive_zone` lets mapped
    /// pages go.
    pub swap: bool,
    /// `vm.swappiness` (0..=100, default 60): `refill_inactive_zone` moves
    /// mapped pages to the inactive list when `mapped_ratio / 2 + distress +
    /// swappiness >= 100`.
    pub swappiness: u32,
    /// 2.6.11's `reclaim_mapped` rule (2.6.11 to 2.6.27; `docs/model.md`,
    /// "Mapped pages and swap"), on by default. Off, a mapped page is
    /// deactivated like any other when there is swap (the split anon/file
    /// LRU of 2.6.28 on replaced the rule; kmm scans both alike), so the
    /// today's-kernel benchmarks (`--mmtests`, `thpchallenge`) run with it off.
    pub mapped_rule: bool,
    /// Active freeing for high-order requests the free lists cannot meet.
    pub active_freeing: bool,
    /// The OOM killer (`mm::oom_kill`, on as in the kernel): off, an
    /// allocation that may not fail and finds nothing to reclaim fails and is
    /// counted (`oom_fail`).
    pub oom_kill: bool,
    /// Largest object id a trace may use (object table grows on demand up to this).
    pub max_objects: u32,
    /// page_owner recording.
    pub page_owner: bool,
    /// page_owner also records the free stack of freed blocks.
    pub page_owner_free_stacks: bool,
    /// Memory compaction (`mm::compaction`): direct compaction in the
    /// allocation slow path and kcompactd woken by kswapd. Off by default, so
    /// every result of the 2005 variants is unchanged.
    pub compaction: bool,
    /// `vm.extfrag_threshold`: a costly request compacts a zone only when its
    /// fragmentation index is above this (0..1000, default 500).
    pub extfrag_threshold: u32,
    /// `vm.compaction_proactiveness` (0..100, default 20; 0 = no proactive
    /// compaction): kcompactd compacts when a node's fragmentation score is
    /// above `max(100 - proactiveness, 5) + 10`, checked every 500 ms.
    pub compaction_proactiveness: u32,
    /// `vm.watermark_boost_factor` (0..100000 ten-thousandths of the high
    /// watermark, default 15000; 0 = off): with compaction on, a fallback
    /// that fragments a pageblock boosts the zone's watermarks by a pageblock,
    /// up to this share of the high mark, so kswapd reclaims and kcompactd compacts.
    pub watermark_boost_factor: u32,
    /// `vm.defrag_mode` (6.15): with compaction on, no fallback into another
    /// type's pageblock until reclaim and compaction have failed.
    pub defrag_mode: bool,
    /// Freelist migratetype hygiene (6.10, "mm: page_alloc: freelist
    /// migratetype hygiene"): a free page always sits on the free list of its
    /// pageblock's type (mobility only).
    pub freelist_hygiene: bool,
    /// Keep every `mm_page_alloc_extfrag` event (`Machine::extfrag_trace`).
    pub trace_extfrag: bool,
}

/// Most CPUs a machine models (a per-cpu page keeps its CPU in the 4 order
/// bits of its flag word, `mm::page`).
pub const MAX_CPUS: u32 = 16;

/// Largest `kswapd_pages_per_ms` (2^20 pages = 4 GiB per simulated millisecond).
pub const MAX_KSWAPD_PAGES_PER_MS: u64 = 1 << 20;

impl MachineConfig {
    /// The defaults: one node, vanilla, a 4 MiB kernel image, pcp on with the
    /// 2.6.11 sizes, reclaim on at 32 pages per ms, page_owner off.
    pub fn new(layout: Layout, mem_bytes: u64) -> MachineConfig {
        MachineConfig {
            layout,
            mem_bytes,
            node_sizes: Vec::new(),
            nodes: 1,
            distance: Vec::new(),
            policy: Policy::Vanilla,
            kernel_image_bytes: 4 << 20,
            pcp: true,
            pcp_batch: 0,
            pcp_high: 0,
            nr_cpus: 1,
            pageblock_order: None,
            fallback_reserve: 0.0,
            min_free_kbytes: 0,
            reclaim: true,
            kswapd_pages_per_ms: 32,
            swap: true,
            swappiness: 60,
            mapped_rule: true,
            active_freeing: false,
            oom_kill: true,
            max_objects: 1 << 26,
            page_owner: false,
            page_owner_free_stacks: false,
            compaction: false,
            extfrag_threshold: 500,
            compaction_proactiveness: 20,
            watermark_boost_factor: 15000,
            defrag_mode: false,
            freelist_hygiene: false,
            trace_extfrag: false,
        }
    }

    /// Give each node's size in bytes; the node count follows the list (an empty
    /// list keeps `nodes` equal parts).
    pub fn set_node_sizes(&mut self, sizes: Vec<u64>) {
        if !sizes.is_empty() {
            self.nodes = sizes.len();
        }
        self.node_sizes = sizes;
    }

    /// Pageblock order in effect for the policy.
    pub fn effective_pageblock_order(&self) -> u32 {
        self.policy
            .pageblock_order(self.pageblock_order, self.layout.huge_page_order())
    }

    /// Check every field and every rule between fields, the only place they are
    /// checked; returns the node sizes in pages.
    pub fn validate(&self) -> Result<Vec<u64>> {
        let (mem, layout) = (self.mem_bytes, self.layout.name());
        ensure!(
            mem % PAGE_SIZE == 0,
            Config,
            "mem {mem} bytes is not a multiple of the 4 KiB page size"
        );
        ensure!(
            mem >= 32 << 20,
            Config,
            "mem {mem} bytes is too small: the {layout} layout needs at least 32 MiB (DMA zone, kernel image and mem_map)"
        );
        ensure!(
            mem <= self.layout.max_bytes(),
            Config,
            "mem {mem} bytes is more than the {layout} layout can address ({} bytes)",
            self.layout.max_bytes()
        );
        let pages = mem >> PAGE_SHIFT;
        ensure!(
            pages < NONE as u64,
            Config,
            "too many pages for 32-bit pfns"
        );
        ensure!(
            (1..=64).contains(&self.nodes),
            Config,
            "nodes must be 1..64, got {}",
            self.nodes
        );
        ensure!(
            self.kernel_image_bytes % PAGE_SIZE == 0 && self.kernel_image_bytes <= 64 << 20,
            Config,
            "kernel image size {} must be page-aligned and at most 64 MiB",
            self.kernel_image_bytes
        );
        let sizes = self.node_pages(pages)?;
        // the image is loaded at 1 MiB in node 0 (boot_reservations)
        ensure!(
            (1 << 20) + self.kernel_image_bytes < sizes[0] << PAGE_SHIFT,
            Config,
            "kernel image of {} MiB does not fit in node 0's {} MiB (it is loaded at 1 MiB)",
            self.kernel_image_bytes >> 20,
            (sizes[0] << PAGE_SHIFT) >> 20
        );
        ensure!(
            sizes[0] >= (32u64 << 20) >> PAGE_SHIFT,
            Config,
            "node 0 must hold at least 32 MiB (boot reservations live there)"
        );
        self.validate_distance()?;
        if let Some(pb) = self.pageblock_order {
            ensure!(
                (pb as usize) < MAX_ORDER,
                Config,
                "pageblock_order {pb} is above MAX_ORDER-1 = {}",
                MAX_ORDER - 1
            );
            ensure!(
                self.policy == Policy::Mobility,
                Config,
                "pageblock_order applies to allocator=\"mobility\" only"
            );
        }
        ensure!(
            (0.0..=1.0).contains(&self.fallback_reserve),
            Config,
            "fallback_reserve {} must be a fraction in 0..1 (at most 100%)",
            self.fallback_reserve
        );
        ensure!(
            self.min_free_kbytes <= self.mem_bytes / 1024 / 2,
            Config,
            "min_free_kbytes {} must be at most half of memory ({} KiB)",
            self.min_free_kbytes,
            self.mem_bytes / 1024 / 2
        );
        ensure!(
            self.fallback_reserve == 0.0 || self.policy == Policy::AntiFrag,
            Config,
            "fallback_reserve applies to allocator=\"antifrag\" only"
        );
        ensure!(
            self.pcp_batch <= 4096 && self.pcp_high <= 65536,
            Config,
            "pcp batch must be <= 4096 and high <= 65536"
        );
        ensure!(
            self.pcp_high == 0 || self.pcp_batch == 0 || self.pcp_high >= self.pcp_batch,
            Config,
            "pcp high {} is below batch {}",
            self.pcp_high,
            self.pcp_batch
        );
        ensure!(
            (1..=MAX_CPUS).contains(&self.nr_cpus),
            Config,
            "nr_cpus must be 1..{MAX_CPUS}, got {}",
            self.nr_cpus
        );
        ensure!(
            self.kswapd_pages_per_ms <= MAX_KSWAPD_PAGES_PER_MS,
            Config,
            "kswapd_pages_per_ms must be at most 2^20, got {}",
            self.kswapd_pages_per_ms
        );
        ensure!(
            self.swappiness <= 100,
            Config,
            "swappiness must be 0..100, got {}",
            self.swappiness
        );
        ensure!(
            self.max_objects != 0 && self.max_objects != u32::MAX,
            Config,
            "max_objects must be 1..2^32-2"
        );
        ensure!(
            self.page_owner || !self.page_owner_free_stacks,
            Config,
            "page_owner_free_stacks needs page_owner=True"
        );
        ensure!(
            self.extfrag_threshold <= 1000,
            Config,
            "extfrag_threshold must be 0..1000, got {}",
            self.extfrag_threshold
        );
        ensure!(
            self.compaction_proactiveness <= 100,
            Config,
            "compaction_proactiveness must be 0..100, got {}",
            self.compaction_proactiveness
        );
        ensure!(
            self.watermark_boost_factor <= 100_000,
            Config,
            "watermark_boost_factor must be 0..100000, got {}",
            self.watermark_boost_factor
        );
        ensure!(
            !self.defrag_mode || (self.compaction && self.policy == Policy::Mobility),
            Config,
            "defrag_mode needs compaction=True and allocator=\"mobility\""
        );
        ensure!(
            !self.freelist_hygiene || self.policy == Policy::Mobility,
            Config,
            "freelist_hygiene needs allocator=\"mobility\" (free lists by pageblock type)"
        );
        ensure!(
            !self.defrag_mode || self.freelist_hygiene,
            Config,
            "defrag_mode (6.15) needs freelist_hygiene=True (6.10), which it builds on"
        );
        ensure!(
            !self.compaction || self.policy != Policy::AntiFrag,
            Config,
            "compaction applies to allocator=\"vanilla\" or \"mobility\" (the 2005 antifrag allocator predates it)"
        );
        Ok(sizes)
    }

    /// Pages of each node: `node_sizes`, or `nodes` equal parts rounded to
    /// maximum-order blocks with the last node taking the rest.
    fn node_pages(&self, pages: u64) -> Result<Vec<u64>> {
        if self.node_sizes.is_empty() {
            let n = self.nodes as u64;
            let block = 1u64 << (MAX_ORDER - 1);
            let each = (pages / n) / block * block;
            ensure!(
                each != 0,
                Config,
                "{} nodes is too many for {pages} pages",
                self.nodes
            );
            let mut v = vec![each; self.nodes];
            v[self.nodes - 1] = pages - each * (n - 1);
            return Ok(v);
        }
        ensure!(
            self.node_sizes.len() == self.nodes,
            Config,
            "{} node sizes given for {} nodes",
            self.node_sizes.len(),
            self.nodes
        );
        for &b in &self.node_sizes {
            ensure!(
                b % PAGE_SIZE == 0 && b != 0,
                Config,
                "node size {b} bytes must be a non-zero multiple of 4 KiB"
            );
        }
        let v: Vec<u64> = self.node_sizes.iter().map(|b| b >> PAGE_SHIFT).collect();
        let total = v.iter().sum::<u64>();
        ensure!(
            total == pages,
            Config,
            "node sizes add up to {} bytes, not mem = {} bytes",
            total << PAGE_SHIFT,
            self.mem_bytes
        );
        Ok(v)
    }

    /// The distance matrix, when given, is `nodes` x `nodes`, 1..255, remote above local.
    fn validate_distance(&self) -> Result<()> {
        if self.distance.is_empty() {
            return Ok(());
        }
        ensure!(
            self.distance.len() == self.nodes
                && self.distance.iter().all(|r| r.len() == self.nodes),
            Config,
            "distance matrix must be {0}x{0}",
            self.nodes
        );
        for (i, row) in self.distance.iter().enumerate() {
            for (j, &d) in row.iter().enumerate() {
                ensure!(
                    (1..=255).contains(&d) && (i == j || d > row[i]),
                    Config,
                    "distance[{i}][{j}] = {d}: distances are 1..255 and remote > local"
                );
            }
        }
        Ok(())
    }

    /// Distance from node `from` to node `to` (10 local, 20 remote unless given).
    pub fn distance(&self, from: usize, to: usize) -> u32 {
        if self.distance.is_empty() {
            if from == to {
                10
            } else {
                20
            }
        } else {
            self.distance[from][to]
        }
    }
}
/// Parse a memory size: bytes as digits, or with a KiB/MiB/GiB/TiB (or K/M/G/T, KB/MB/GB/TB) suffix.
pub fn parse_mem(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(Error::Config(format!("bad memory size {s:?}")));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| Error::Config(format!("bad memory size {s:?}")))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KB" | "KiB" | "k" => 10,
        "M" | "MB" | "MiB" => 20,
        "G" | "GB" | "GiB" => 30,
        "T" | "TB" | "TiB" => 40,
        u => {
            return Err(Error::Config(format!(
                "bad memory size unit {u:?} in {s:?} (use KiB, MiB, GiB or TiB)"
            )))
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| Error::Config(format!("memory size {s:?} overflows")))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn mem_sizes() {
        assert_eq!(parse_mem("1536MiB").unwrap(), 1536 << 20);
        assert_eq!(parse_mem("1TiB").unwrap(), 1 << 40);
        assert_eq!(parse_mem("4096").unwrap(), 4096);
        assert!(parse_mem("12XB").is_err());
        assert!(parse_mem("MiB").is_err());
    }

    fn rejected(f: impl FnOnce(&mut MachineConfig)) -> String {
        let mut c = MachineConfig::new(Layout::X86_32, 64 << 20);
        f(&mut c);
        match c.validate() {
            Err(Error::Config(m)) => m,
            r => panic!("expected a ConfigError, got {r:?}"),
        }
    }

    #[test]
    fn policy_tunables_belong_to_their_policy() {
        assert!(rejected(|c| c.pageblock_order = Some(9)).contains("mobility"));
        assert!(rejected(|c| c.fallback_reserve = 0.1).contains("antifrag"));
        let mut c = MachineConfig::new(Layout::X86_32, 64 << 20);
        c.policy = Policy::Mobility;
        c.pageblock_order = Some(9);
        c.validate().unwrap();
        c.policy = Policy::AntiFrag;
        c.pageblock_order = None;
        c.fallback_reserve = 0.1;
        c.validate().unwrap();
    }

    #[test]
    fn cpus_are_bounded() {
        assert!(rejected(|c| c.nr_cpus = 0).contains("nr_cpus"));
        assert!(rejected(|c| c.nr_cpus = MAX_CPUS + 1).contains("nr_cpus"));
        let mut c = MachineConfig::new(Layout::X86_32, 64 << 20);
        c.nr_cpus = MAX_CPUS;
        c.validate().unwrap();
    }

    #[test]
    fn kswapd_speed_is_bounded() {
        let m = rejected(|c| c.kswapd_pages_per_ms = MAX_KSWAPD_PAGES_PER_MS + 1);
        assert!(m.contains("kswapd_pages_per_ms"), "{m}");
        let mut c = MachineConfig::new(Layout::X86_32, 64 << 20);
        c.kswapd_pages_per_ms = MAX_KSWAPD_PAGES_PER_MS;
        c.validate().unwrap();
        c.kswapd_pages_per_ms = 0;
        c.validate().unwrap();
    }

    #[test]
    fn swappiness_is_a_percentage() {
        let m = rejected(|c| c.swappiness = 101);
        assert!(m.contains("swappiness"), "{m}");
        let mut c = MachineConfig::new(Layout::X86_32, 64 << 20);
        c.swappiness = 100;
        c.swap = true;
        c.validate().unwrap();
    }

    #[test]
    fn node_sizes_set_the_node_count() {
        let mut c = MachineConfig::new(Layout::X86_32, 96 << 20);
        c.set_node_sizes(vec![64 << 20, 32 << 20]);
        assert_eq!(c.nodes, 2);
        assert_eq!(c.validate().unwrap(), vec![16384, 8192]);
        c.set_node_sizes(Vec::new());
        assert_eq!(c.nodes, 2);
        assert_eq!(c.validate().unwrap().len(), 2);
    }

    #[test]
    fn pfns_fit_in_32_bits() {
        let m = rejected(|c| {
            c.layout = Layout::X86_64;
            c.mem_bytes = Layout::X86_64.max_bytes();
        });
        assert!(m.contains("32-bit pfns"), "{m}");
    }

    #[test]
    fn names_round_trip() {
        for p in Policy::ALL {
            assert_eq!(Policy::parse(p.name()).unwrap(), p);
        }
        for l in Layout::ALL {
            assert_eq!(Layout::parse(l.name()).unwrap(), l);
        }
        match Policy::parse("slub") {
            Err(Error::Config(m)) => assert!(
                m.contains(r#"expected one of "vanilla", "antifrag", "mobility""#),
                "{m}"
            ),
            r => panic!("{r:?}"),
        }
    }
}
