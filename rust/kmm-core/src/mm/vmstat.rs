//! Every view of the machine's state (the kernel's `mm/vmstat.c`): zone
//! statistics, free_area counts, the page map, block type counts, and the
//! kernel-exact `/proc/buddyinfo` (`frag_show`) and `/proc/pagetypeinfo`
//! (`pagetypeinfo_show`) text.

use super::machine::Machine;
use super::page::{
    forder, ftype, heads, kind, K_ALLOC, K_PCP, K_RESERVED, PM_ALLOC, PM_FREE, PM_PCP, PM_RESERVED,
};
use super::policy::has_block_types;
use crate::MAX_ORDER;
use std::fmt::Write;

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
    /// Pages on the active and inactive lists (`nr_active`, `nr_inactive`).
    pub nr_active: u64,
    pub nr_inactive: u64,
    /// Inactive-list pages scanned since boot (per-zone `pgscan`).
    pub pgscan: u64,
    /// Mapped (anonymous) pages in the zone (`nr_mapped`), and the zone's
    /// `prev_priority` (`mm::vmscan`'s `reclaim_mapped` rule).
    pub nr_mapped: u64,
    pub prev_priority: u32,
}

impl Machine {
    /// Per-zone statistics (`zoneinfo_show`'s numbers).
    pub fn zone_stats(&self) -> Vec<ZoneStats> {
        self.zones
            .iter()
            .enumerate()
            .map(|(zi, z)| ZoneStats {
                node: z.node,
                zone: z.name,
                start_pfn: z.zone_start_pfn,
                spanned: z.spanned_pages,
                present: z.present,
                managed: z.present - z.reserved,
                free: z.free_pages,
                pcp: self.pcp_pages(zi),
                min: z.pages_min,
                low: z.pages_low,
                high: z.pages_high,
                lowmem_reserve: z.lowmem_reserve,
                lru_pages: z.lru_pages,
                nr_active: z.active_pages,
                nr_inactive: z.lru_pages - z.active_pages,
                pgscan: z.pgscan,
                nr_mapped: z.nr_mapped,
                prev_priority: z.prev_priority,
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
        for (p, f) in heads(&self.flags) {
            match kind(f) {
                K_PCP => out[p] = PM_PCP,
                K_RESERVED => out[p] = PM_RESERVED,
                K_ALLOC => out[p..p + (1 << forder(f))].fill(PM_ALLOC + ftype(f) as u8),
                _ => {}
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
        if !has_block_types(self.policy) {
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

    /// Allocated blocks as (head pfn, order, type), in pfn order.
    pub fn allocated_blocks(&self) -> Vec<(u32, u8, u8)> {
        heads(&self.flags)
            .filter(|&(_, f)| kind(f) == K_ALLOC)
            .map(|(p, f)| (p as u32, forder(f) as u8, ftype(f) as u8))
            .collect()
    }

    /// `/proc/buddyinfo` (`frag_show`): `"Node %d, zone %8s "` then `"%6lu "` per order.
    pub fn buddyinfo(&self) -> String {
        let mut s = String::new();
        for z in &self.zones {
            let _ = write!(s, "Node {}, zone {:>8} ", z.node, z.name);
            for o in 0..MAX_ORDER {
                let _ = write!(s, "{:6} ", z.nr_free(o));
            }
            s.push('\n');
        }
        s
    }

    /// `/proc/pagetypeinfo` (`pagetypeinfo_show`) with this policy's type names.
    /// Like the kernel's seq_file, the whole block (header, free pages, block
    /// counts) repeats per node.
    pub fn pagetypeinfo(&self) -> String {
        let mut s = String::new();
        let types = self.type_rows();
        for node in 0..self.nr_nodes {
            let zones: Vec<usize> = (0..self.zones.len())
                .filter(|&zi| self.zones[zi].node == node)
                .collect();
            if zones.is_empty() {
                continue;
            }
            let _ = writeln!(s, "Page block order: {}", self.block_order);
            let _ = writeln!(s, "Pages per block:  {}", 1u64 << self.block_order);
            s.push('\n');
            let _ = write!(s, "{:<43} ", "Free pages count per migrate type at order");
            for o in 0..MAX_ORDER {
                let _ = write!(s, "{o:6} ");
            }
            s.push('\n');
            for &zi in &zones {
                let z = &self.zones[zi];
                for &(lt, name) in &types {
                    let _ = write!(
                        s,
                        "Node {:4}, zone {:>8}, type {:>12} ",
                        z.node, z.name, name
                    );
                    for o in 0..MAX_ORDER {
                        let n = lt.map_or(0, |lt| z.free_area[lt][o].nr as u64);
                        if n >= 100_000 {
                            let _ = write!(s, ">{:6} ", 100_000);
                        } else {
                            let _ = write!(s, "{n:6} ");
                        }
                    }
                    s.push('\n');
                }
            }
            let _ = write!(s, "\n{:<23}", "Number of blocks type ");
            for &(_, name) in &types {
                let _ = write!(s, "{name:>12} ");
            }
            s.push('\n');
            for &zi in &zones {
                let z = &self.zones[zi];
                let counts = self.block_counts(zi);
                let _ = write!(s, "Node {}, zone {:>8} ", z.node, z.name);
                for i in 0..types.len() {
                    let _ = write!(s, "{:12} ", counts.get(i).copied().unwrap_or(0));
                }
                s.push('\n');
            }
        }
        s
    }

    /// Rows of pagetypeinfo: the policy's list types, then the types of the
    /// kernel it mirrors that kmm does not model (always empty), so the
    /// mobility view reads like a current kernel's.
    fn type_rows(&self) -> Vec<(Option<usize>, &'static str)> {
        self.list_types()
            .into_iter()
            .map(|(lt, n)| (Some(lt), n))
            .chain(self.unmodelled_types().iter().map(|&n| (None, n)))
            .collect()
    }
}
