//! What page_owner reads of the memory map, in one place (the kernel's
//! page_owner.c reads pages through `mm/internal.h` helpers, never through the
//! allocator).
//!
//! [`PageView`] is a read-only view of a machine's page flags and zones, built
//! by the allocator side (`mm/owner_view.rs`) with the list-type names of the
//! machine's policy already looked up, so page_owner imports only the page-flag
//! encoding ([`crate::mm::page`]) and the zone type ([`crate::mm::mmzone`]),
//! never the allocator or the policy.

use crate::gfp::AllocType;
use crate::mm::mmzone::Zone;
use crate::mm::page::{forder, kind, F_LRU, K_ALLOC, K_FREE, NR_LISTS};

/// An allocated block as page_owner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    /// Head pfn.
    pub pfn: u32,
    pub order: u32,
    /// On an LRU list (a reclaimable user page).
    pub lru: bool,
}

/// A read-only view of a machine's memory map.
#[derive(Clone, Copy)]
pub(crate) struct PageView<'a> {
    flags: &'a [u16],
    zones: &'a [Zone],
    zone_starts: &'a [u64],
    block_order: u32,
    /// Name of each list type under the machine's policy, by list type.
    type_names: &'a [&'static str; NR_LISTS],
}

impl<'a> PageView<'a> {
    /// A view of `flags` (one flag word per pfn) in `zones` (`zone_starts`:
    /// each zone's first pfn, ascending), with pageblocks of `block_order` and
    /// the policy's `type_names`.
    pub fn new(
        flags: &'a [u16],
        zones: &'a [Zone],
        zone_starts: &'a [u64],
        block_order: u32,
        type_names: &'a [&'static str; NR_LISTS],
    ) -> PageView<'a> {
        PageView {
            flags,
            zones,
            zone_starts,
            block_order,
            type_names,
        }
    }

    /// Pages in the memory map.
    #[inline]
    pub fn nr_pages(&self) -> u64 {
        self.flags.len() as u64
    }

    /// The zone holding `pfn` (`page_zone`).
    #[inline]
    fn zone(&self, pfn: u32) -> &'a Zone {
        &self.zones[self.zone_starts.partition_point(|&s| s <= pfn as u64) - 1]
    }

    /// The name of list type `lt`, "Unknown" for a type the policy does not have.
    #[inline]
    fn type_name(&self, lt: usize) -> &'static str {
        self.type_names.get(lt).copied().unwrap_or("Unknown")
    }

    /// The first allocated block whose head is at or after `pfn`, skipping free
    /// blocks whole (the pfn walk of `read_page_owner`).
    #[inline]
    pub fn next_allocated(&self, pfn: u64) -> Option<Block> {
        let flags = self.flags;
        let mut p = pfn as usize;
        while p < flags.len() {
            let f = flags[p];
            match kind(f) {
                K_ALLOC => {
                    return Some(Block {
                        pfn: p as u32,
                        order: forder(f),
                        lru: f & F_LRU != 0,
                    })
                }
                K_FREE => p += 1 << forder(f),
                _ => p += 1,
            }
        }
        None
    }

    /// Every allocated block, in pfn order.
    pub fn allocated(self) -> impl Iterator<Item = Block> + 'a {
        std::iter::successors(self.next_allocated(0), move |b| {
            self.next_allocated(b.pfn as u64 + (1 << b.order))
        })
    }

    /// (node id, zone type) of the zone holding `pfn` (`page_to_nid`, `page_zonenum`).
    #[inline]
    pub fn zone_ids(&self, pfn: u32) -> (usize, usize) {
        let z = self.zone(pfn);
        (z.node, z.zt)
    }

    /// Pageblock number of `pfn` (`pfn >> pageblock_order`).
    #[inline]
    pub fn pageblock_nr(&self, pfn: u32) -> u64 {
        (pfn as u64) >> self.block_order
    }

    /// (page migratetype, pageblock type) names of an allocated block of mask
    /// `gfp` at `pfn`, as a dump prints them. A policy that keeps no pageblock
    /// types (vanilla) reports the page's type for its block.
    pub fn type_names(&self, pfn: u32, gfp: u32) -> (&'static str, &'static str) {
        let page = self.type_name(AllocType::from_gfp(gfp) as usize);
        let z = self.zone(pfn);
        let b = ((pfn as u64 - z.start_pfn) >> self.block_order) as usize;
        let block = z
            .block_type
            .get(b)
            .map_or(page, |&t| self.type_name(t as usize));
        (page, block)
    }
}
