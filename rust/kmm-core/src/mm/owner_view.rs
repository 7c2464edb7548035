//! page_owner's entry points on a machine (`Machine::page_owner`,
//! `page_owner_dump`, `page_owner_show_stacks`, ...): each hands the recorder
//! and a read-only [`PageView`] of the memory map to [`crate::page_owner`],
//! which never imports the allocator.

use super::machine::Machine;
use super::policy;
use crate::error::Result;
use crate::page_owner::print::{self, DumpFormat};
use crate::page_owner::stacks::{self, ContextCount, StackCount};
use crate::page_owner::{no_owner, Aggregator, OwnerMemory, OwnerRecord, PageOwner, PageView};
use crate::stackdepot::FrameRef;
use std::io::Write;

impl Machine {
    /// Run `f` on a [`PageView`] of this machine: its page flags and zones,
    /// with the list-type names of its policy.
    fn with_page_view<R>(&self, f: impl FnOnce(PageView<'_>) -> R) -> R {
        let names = policy::type_names(self.policy);
        f(PageView::new(
            &self.flags,
            &self.zones,
            &self.zone_starts,
            self.block_order,
            &names,
        ))
    }

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
        self.head_flags(pfn)?;
        Ok(po.record(pfn as u32))
    }

    /// (page migratetype, pageblock type) names of an allocated block, as a dump prints them.
    pub fn owner_type_names(&self, pfn: u32, gfp: u32) -> (&'static str, &'static str) {
        self.with_page_view(|v| v.type_names(pfn, gfp))
    }

    /// Write the whole dump to `w` (`read_page_owner` until the end); returns the records written.
    pub fn page_owner_dump<W: Write>(&self, format: DumpFormat, w: &mut W) -> Result<u64> {
        let po = self.page_owner()?;
        self.with_page_view(|v| print::dump(po, v, format, w))
    }

    /// Append dump records to `out` from where `d` stopped, until `out` holds
    /// at least `limit` bytes or the dump is complete; true when complete.
    pub fn page_owner_dump_fill(
        &self,
        d: &mut print::OwnerDump,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<bool> {
        let po = self.page_owner()?;
        Ok(self.with_page_view(|v| d.fill(po, v, out, limit)))
    }

    /// Outstanding base pages per stack handle (handles with at least one page), by handle.
    pub fn page_owner_stacks(&self) -> Result<Vec<StackCount>> {
        let po = self.page_owner()?;
        Ok(self.with_page_view(|v| stacks::stack_counts(po, v)))
    }

    /// `page_owner_stacks/show_stacks` (`stack_print`): each stack's frames,
    /// `nr_base_pages: N`, a blank line; stacks below `threshold` pages
    /// (`count_threshold`) are hidden, and so are blocks allocated without a stack.
    pub fn page_owner_show_stacks(&self, threshold: u64) -> Result<String> {
        self.page_owner_stacks_file(threshold, stacks::StacksFile::Stacks)
    }

    /// A `page_owner_stacks` file (`show_stacks`, `show_handles`,
    /// `show_stacks_handles`) of the stacks holding at least `threshold` base pages.
    pub fn page_owner_stacks_file(
        &self,
        threshold: u64,
        file: stacks::StacksFile,
    ) -> Result<String> {
        let po = self.page_owner()?;
        Ok(self.with_page_view(|v| stacks::show_stacks(po, v, threshold, file)))
    }

    /// Allocated blocks and pages per allocation context (stack, order, gfp, pid,
    /// tgid), in order of first appearance by pfn: what a text aggregation of a
    /// dump finds, without the text.
    pub fn page_owner_aggregate(&self) -> Result<Vec<ContextCount>> {
        let po = self.page_owner()?;
        Ok(self.with_page_view(|v| stacks::context_counts(po, v)))
    }

    /// The groups `page_owner_sort` makes of `page_owner_dump(format)`, from the
    /// records themselves: the aggregation (table, counters) a text
    /// aggregation of the dump gives, without the text.
    pub fn page_owner_groups(&self, format: DumpFormat) -> Result<Aggregator> {
        let po = self.page_owner()?;
        self.with_page_view(|v| stacks::groups(po, v, format))
    }
}
