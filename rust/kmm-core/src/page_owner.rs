//! page_owner: per-block owner records and the stack depot they point into.
//!
//! The engine calls [`PageOwner::on_alloc`] for every allocated block and
//! [`PageOwner::on_free`] for every freed one, only when the machine was built
//! with `page_owner = true` (otherwise `Machine::owner` is `None` and costs nothing).

use crate::machine::AllocCtx;

/// Owner records of a machine (placeholder layout; the page_owner issue fills it).
#[derive(Debug, Clone, Default)]
pub struct PageOwner {
    pub free_stacks: bool,
}

impl PageOwner {
    pub fn new(_nr_pages: u64, free_stacks: bool) -> PageOwner {
        PageOwner { free_stacks }
    }

    /// A block of `order` at `pfn` was allocated by `ctx` at `now_ns`.
    #[inline]
    pub fn on_alloc(&mut self, _pfn: u32, _order: u32, _gfp: u32, _ctx: AllocCtx, _now_ns: u64) {}

    /// The block at `pfn` is being freed (`free_stack` 0 = unknown).
    #[inline]
    pub fn on_free(&mut self, _pfn: u32, _order: u32, _free_stack: u32, _now_ns: u64) {}

    /// Is `handle` a stack this depot knows (0, "none", is always valid)?
    pub fn valid_handle(&self, handle: u32) -> bool {
        handle == 0
    }
}
