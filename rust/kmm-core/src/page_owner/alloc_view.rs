//! MERGE(H1): what page_owner reads of the allocator, in one place.
//!
//! page_owner never touches the page-flag encoding, the zones or the policy
//! itself: it reads the memory map through [`PageView`] (read-only page
//! accessors, `mm/internal.h`-style) and names list types through
//! [`PageView::type_names`]. This file is the only one of `page_owner/` that
//! imports `crate::machine`. At the merge with H1's `mm/` split:
//! - `PageView`'s methods become calls into `crate::mm::page` (the flag word,
//!   `MemMap`, the blocks iterator) and `crate::mm::mmzone` (zone of a pfn,
//!   pageblock types);
//! - [`type_name`] becomes `crate::mm::policy::type_name(policy, list_type)`,
//!   the one `match` on the policy;
//! - the `impl Machine` entry points at the end move beside `struct Machine`
//!   (they only build a view and delegate), so that `page_owner` imports
//!   nothing from the allocator and the allocator imports only [`PageOwner`].

use super::print::{self, DumpFormat};
use super::sort::Group;
use super::stacks::{self, ContextCount, StackCount};
use super::{no_owner, OwnerMemory, OwnerRecord, PageOwner};
use crate::config::Policy;
use crate::error::Result;
use crate::gfp::AllocType;
use crate::machine::{
    forder, kind, Machine, F_LRU, K_ALLOC, K_FREE, LT_FALLBACK, LT_GLOBAL, LT_KERNRCLM, LT_NORCLM,
    LT_USERRCLM,
};
use crate::stackdepot::FrameRef;
use std::io::Write;

pub use crate::machine::AllocCtx;

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
    m: &'a Machine,
}

impl<'a> PageView<'a> {
    pub fn of(m: &'a Machine) -> PageView<'a> {
        PageView { m }
    }

    /// Pages in the memory map.
    #[inline]
    pub fn nr_pages(&self) -> u64 {
        self.m.nr_pages
    }

    /// The first allocated block whose head is at or after `pfn`, skipping free
    /// blocks whole (the pfn walk of `read_page_owner`).
    #[inline]
    pub fn next_allocated(&self, pfn: u64) -> Option<Block> {
        let flags = &self.m.flags;
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

    /// Is `pfn` the head of an allocated block? The error says why not.
    pub fn check_head(&self, pfn: u64) -> Result<()> {
        self.m.head_flags(pfn).map(|_| ())
    }

    /// (node id, zone type) of the zone holding `pfn` (`page_to_nid`, `page_zonenum`).
    #[inline]
    pub fn zone_ids(&self, pfn: u32) -> (usize, usize) {
        let z = &self.m.zones[self.m.zone_of_pfn(pfn as u64)];
        (z.node, z.zt)
    }

    /// Pageblock number of `pfn` (`pfn >> pageblock_order`).
    #[inline]
    pub fn pageblock_nr(&self, pfn: u32) -> u64 {
        (pfn as u64) >> self.m.block_order
    }

    /// (page migratetype, pageblock type) names of an allocated block of mask
    /// `gfp` at `pfn`, as a dump prints them. A policy that keeps no pageblock
    /// types (vanilla) reports the page's type for its block.
    pub fn type_names(&self, pfn: u32, gfp: u32) -> (&'static str, &'static str) {
        let policy = self.m.policy;
        let page = type_name(policy, AllocType::from_gfp(gfp) as usize);
        let z = &self.m.zones[self.m.zone_of_pfn(pfn as u64)];
        let b = ((pfn as u64 - z.start_pfn) >> self.m.block_order) as usize;
        let block = z
            .block_type
            .get(b)
            .map_or(page, |&t| type_name(policy, t as usize));
        (page, block)
    }
}

/// Name of free-list / pageblock type `lt` under `policy`, as page_owner
/// prints it: the 2005 names under anti-fragmentation, today's migratetype
/// names otherwise (vanilla included: a dump names the page's mobility).
fn type_name(policy: Policy, lt: usize) -> &'static str {
    match policy {
        Policy::AntiFrag => match lt {
            LT_NORCLM => "KernNoRclm",
            LT_KERNRCLM => "KernRclm",
            LT_USERRCLM => "UserRclm",
            LT_FALLBACK => "Fallback",
            LT_GLOBAL => "Global",
            _ => "Unknown",
        },
        _ => match lt {
            LT_NORCLM => "Unmovable",
            LT_KERNRCLM => "Reclaimable",
            LT_USERRCLM => "Movable",
            _ => "Unknown",
        },
    }
}

/// page_owner's entry points on a machine: each builds a `PageView` and delegates.
impl Machine {
    /// The page_owner records, or the error explaining this machine has none.
    pub fn page_owner(&self) -> Result<&PageOwner> {
        self.owner.as_ref().ok_or_else(no_owner)
    }

    pub fn page_owner_mut(&mut self) -> Result<&mut PageOwner> {
        self.owner.as_mut().ok_or_else(no_owner)
    }

    /// Intern a call chain (leaf first) in this machine's stack depot (`stack_depot_save`).
    pub fn page_owner_intern(&mut self, frames: &[FrameRef<'_>]) -> Result<u32> {
        self.page_owner_mut()?.depot.intern(frames)
    }

    /// Memory page_owner uses (refaults take their context from the faulting
    /// touch, so the engine keeps no per-object copy).
    pub fn page_owner_memory(&self) -> Result<OwnerMemory> {
        Ok(self.page_owner()?.memory())
    }

    /// The owner of the allocated block headed by `pfn`.
    pub fn page_owner_record(&self, pfn: u64) -> Result<OwnerRecord> {
        let po = self.page_owner()?;
        PageView::of(self).check_head(pfn)?;
        Ok(po.record(pfn as u32))
    }

    /// (page migratetype, pageblock type) names of an allocated block, as a dump prints them.
    pub fn owner_type_names(&self, pfn: u32, gfp: u32) -> (&'static str, &'static str) {
        PageView::of(self).type_names(pfn, gfp)
    }

    /// Write the whole dump to `w` (`read_page_owner` until the end); returns the records written.
    pub fn page_owner_dump<W: Write>(&self, format: DumpFormat, w: &mut W) -> Result<u64> {
        print::dump(self.page_owner()?, PageView::of(self), format, w)
    }

    /// Append dump records to `out` from where `d` stopped, until `out` holds
    /// at least `limit` bytes or the dump is complete; true when complete.
    pub fn page_owner_dump_fill(
        &self,
        d: &mut print::OwnerDump,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<bool> {
        Ok(d.fill(self.page_owner()?, PageView::of(self), out, limit))
    }

    /// Outstanding base pages per stack handle (handles with at least one page), by handle.
    pub fn page_owner_stacks(&self) -> Result<Vec<StackCount>> {
        Ok(stacks::stack_counts(self.page_owner()?, PageView::of(self)))
    }

    /// `page_owner_stacks/show_stacks` (`stack_print`): each stack's frames,
    /// `nr_base_pages: N`, a blank line; stacks below `threshold` pages
    /// (`count_threshold`) are hidden, and so are blocks allocated without a stack.
    pub fn page_owner_show_stacks(&self, threshold: u64) -> Result<String> {
        Ok(stacks::show_stacks(
            self.page_owner()?,
            PageView::of(self),
            threshold,
        ))
    }

    /// Allocated blocks and pages per allocation context (stack, order, gfp, pid,
    /// tgid), in order of first appearance by pfn: what a text aggregation of a
    /// dump finds, without the text.
    pub fn page_owner_aggregate(&self) -> Result<Vec<ContextCount>> {
        Ok(stacks::context_counts(
            self.page_owner()?,
            PageView::of(self),
        ))
    }

    /// The groups `page_owner_sort` makes of `page_owner_dump(format)`, from the
    /// records themselves: same texts, counts and fields, no text round trip.
    pub fn page_owner_groups(&self, format: DumpFormat) -> Result<Vec<Group>> {
        Ok(stacks::groups(
            self.page_owner()?,
            PageView::of(self),
            format,
        ))
    }
}
