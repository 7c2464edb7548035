//! Machine configuration: layout, memory size, NUMA nodes, allocator policy and tunables.

use crate::error::{Error, Result};
use crate::{MAX_ORDER, PAGE_SHIFT, PAGE_SIZE};

/// Physical address layout, which decides the zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// DMA < 16 MiB, Normal < 896 MiB, HighMem above.
    X86_32,
    /// DMA < 16 MiB, DMA32 < 4 GiB, Normal above.
    X86_64,
}

impl Layout {
    pub fn parse(s: &str) -> Result<Layout> {
        match s {
            "x86_32" | "i386" | "x86-32" => Ok(Layout::X86_32),
            "x86_64" | "amd64" | "x86-64" => Ok(Layout::X86_64),
            _ => Err(Error::Config(format!(
                "unknown layout {s:?} (expected \"x86_32\" or \"x86_64\")"
            ))),
        }
    }
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
    /// Is zone type `zt` a highmem zone (watermarks from size/1024)?
    pub fn is_highmem(self, zt: usize) -> bool {
        self == Layout::X86_32 && zt == 2
    }
}

/// Which allocator policy runs the free lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// 2.6.11 buddy allocator: one free list per order.
    Vanilla,
    /// Mel Gorman's v7 anti-fragmentation allocator (Feb 2005).
    AntiFrag,
    /// Grouping pages by mobility (2.6.24 and later).
    Mobility,
}

impl Policy {
    pub fn parse(s: &str) -> Result<Policy> {
        match s {
            "vanilla" => Ok(Policy::Vanilla),
            "antifrag" => Ok(Policy::AntiFrag),
            "mobility" => Ok(Policy::Mobility),
            _ => Err(Error::Config(format!(
                "unknown allocator {s:?} (expected \"vanilla\", \"antifrag\" or \"mobility\")"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Policy::Vanilla => "vanilla",
            Policy::AntiFrag => "antifrag",
            Policy::Mobility => "mobility",
        }
    }
}

/// Everything needed to boot a machine. Build with [`MachineConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    pub layout: Layout,
    pub mem_bytes: u64,
    /// Node sizes in bytes; empty = `nodes` equal parts.
    pub node_sizes: Vec<u64>,
    pub nodes: usize,
    /// Node distance matrix (row = from), default 10 local / 20 remote.
    pub distance: Vec<Vec<u32>>,
    pub policy: Policy,
    pub seed: u64,
    /// Kernel image size reserved at 1 MiB on node 0.
    pub kernel_image_bytes: u64,
    /// Per-cpu order-0 lists on (2005 and today: on).
    pub pcp: bool,
    /// Override pcp batch (0 = the 2.6.11 formula from the zone size).
    pub pcp_batch: u32,
    /// Override pcp high mark (0 = 6 * batch, as 2.6.11's hot list).
    pub pcp_high: u32,
    /// Mobility: `pageblock_order` (None = MAX_ORDER-1 on x86_32, 9 on x86_64).
    pub pageblock_order: Option<u32>,
    /// Antifrag v8: fraction of each zone's maximum-order blocks kept for fallbacks (0 = v7).
    pub fallback_reserve: f64,
    /// Reclaim (kswapd and direct reclaim of trace objects on the LRU).
    pub reclaim: bool,
    /// Active freeing for high-order requests the free lists cannot meet.
    pub active_freeing: bool,
    /// Largest object id a trace may use (object table grows on demand up to this).
    pub max_objects: u32,
    /// page_owner recording.
    pub page_owner: bool,
    /// page_owner also records the free stack of freed blocks.
    pub page_owner_free_stacks: bool,
}

impl MachineConfig {
    pub fn new(layout: Layout, mem_bytes: u64) -> MachineConfig {
        MachineConfig {
            layout,
            mem_bytes,
            node_sizes: Vec::new(),
            nodes: 1,
            distance: Vec::new(),
            policy: Policy::Vanilla,
            seed: 0,
            kernel_image_bytes: 4 << 20,
            pcp: true,
            pcp_batch: 0,
            pcp_high: 0,
            pageblock_order: None,
            fallback_reserve: 0.0,
            reclaim: true,
            active_freeing: false,
            max_objects: 1 << 26,
            page_owner: false,
            page_owner_free_stacks: false,
        }
    }

    /// Pageblock order in effect for the policy.
    pub fn effective_pageblock_order(&self) -> u32 {
        match self.policy {
            Policy::Mobility => self.pageblock_order.unwrap_or(match self.layout {
                Layout::X86_32 => (MAX_ORDER - 1) as u32,
                Layout::X86_64 => 9,
            }),
            // antifrag's usemap has one entry per maximum-order block
            _ => (MAX_ORDER - 1) as u32,
        }
    }

    /// Check every field; returns the node sizes in pages.
    pub fn validate(&self) -> Result<Vec<u64>> {
        if self.mem_bytes % PAGE_SIZE != 0 {
            return Err(Error::Config(format!(
                "mem {} bytes is not a multiple of the 4 KiB page size",
                self.mem_bytes
            )));
        }
        let min = 32u64 << 20;
        if self.mem_bytes < min {
            return Err(Error::Config(format!(
                "mem {} bytes is too small: the {} layout needs at least 32 MiB (DMA zone, kernel image and mem_map)",
                self.mem_bytes,
                self.layout.name()
            )));
        }
        if self.mem_bytes > self.layout.max_bytes() {
            return Err(Error::Config(format!(
                "mem {} bytes is more than the {} layout can address ({} bytes)",
                self.mem_bytes,
                self.layout.name(),
                self.layout.max_bytes()
            )));
        }
        if self.nodes == 0 || self.nodes > 64 {
            return Err(Error::Config(format!(
                "nodes must be 1..64, got {}",
                self.nodes
            )));
        }
        if self.kernel_image_bytes % PAGE_SIZE != 0 || self.kernel_image_bytes > 64 << 20 {
            return Err(Error::Config(format!(
                "kernel image size {} must be page-aligned and at most 64 MiB",
                self.kernel_image_bytes
            )));
        }
        let pages = self.mem_bytes >> PAGE_SHIFT;
        let sizes: Vec<u64> = if self.node_sizes.is_empty() {
            let n = self.nodes as u64;
            // equal parts, rounded to MAX_ORDER blocks; the last node takes the rest
            let block = 1u64 << (MAX_ORDER - 1);
            let each = (pages / n) / block * block;
            if each == 0 {
                return Err(Error::Config(format!(
                    "{} nodes is too many for {} pages",
                    self.nodes, pages
                )));
            }
            let mut v = vec![each; self.nodes];
            v[self.nodes - 1] = pages - each * (n - 1);
            v
        } else {
            if self.node_sizes.len() != self.nodes {
                return Err(Error::Config(format!(
                    "{} node sizes given for {} nodes",
                    self.node_sizes.len(),
                    self.nodes
                )));
            }
            let mut v = Vec::new();
            for &b in &self.node_sizes {
                if b % PAGE_SIZE != 0 || b == 0 {
                    return Err(Error::Config(format!(
                        "node size {b} bytes must be a non-zero multiple of 4 KiB"
                    )));
                }
                v.push(b >> PAGE_SHIFT);
            }
            if v.iter().sum::<u64>() != pages {
                return Err(Error::Config(format!(
                    "node sizes add up to {} bytes, not mem = {} bytes",
                    v.iter().sum::<u64>() << PAGE_SHIFT,
                    self.mem_bytes
                )));
            }
            v
        };
        if sizes[0] < (32u64 << 20) >> PAGE_SHIFT {
            return Err(Error::Config(
                "node 0 must hold at least 32 MiB (boot reservations live there)".into(),
            ));
        }
        if !self.distance.is_empty() {
            if self.distance.len() != self.nodes
                || self.distance.iter().any(|r| r.len() != self.nodes)
            {
                return Err(Error::Config(format!(
                    "distance matrix must be {0}x{0}",
                    self.nodes
                )));
            }
            for i in 0..self.nodes {
                for j in 0..self.nodes {
                    let d = self.distance[i][j];
                    if d == 0 || d > 255 || (i != j && d <= self.distance[i][i]) {
                        return Err(Error::Config(format!(
                            "distance[{i}][{j}] = {d}: distances are 1..255 and remote > local"
                        )));
                    }
                }
            }
        }
        if let Some(pb) = self.pageblock_order {
            if pb as usize > MAX_ORDER - 1 {
                return Err(Error::Config(format!(
                    "pageblock_order {pb} is above MAX_ORDER-1 = {}",
                    MAX_ORDER - 1
                )));
            }
        }
        if !(0.0..=1.0).contains(&self.fallback_reserve) || self.fallback_reserve.is_nan() {
            return Err(Error::Config(format!(
                "fallback_reserve {} must be a fraction in 0..1 (at most 100%)",
                self.fallback_reserve
            )));
        }
        if self.pcp_batch > 4096 || self.pcp_high > 65536 {
            return Err(Error::Config(
                "pcp batch must be <= 4096 and high <= 65536".into(),
            ));
        }
        if self.pcp_high != 0 && self.pcp_batch != 0 && self.pcp_high < self.pcp_batch {
            return Err(Error::Config(format!(
                "pcp high {} is below batch {}",
                self.pcp_high, self.pcp_batch
            )));
        }
        if self.max_objects == 0 || self.max_objects == u32::MAX {
            return Err(Error::Config("max_objects must be 1..2^32-2".into()));
        }
        if self.page_owner_free_stacks && !self.page_owner {
            return Err(Error::Config(
                "page_owner_free_stacks needs page_owner=True".into(),
            ));
        }
        Ok(sizes)
    }

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
}
