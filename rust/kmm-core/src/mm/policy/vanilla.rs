//! The 2.6.11 buddy allocator: one free list per order, no types. `__rmqueue`
//! is `__rmqueue_smallest` on that list, and a free merges with any buddy.

use crate::mm::page::LT_NORCLM;

/// The one list every free block is on.
pub(super) const LIST: usize = LT_NORCLM;

/// pagetypeinfo shows the one list as "Any".
pub(super) const TYPES: &[(usize, &str)] = &[(LIST, "Any")];

/// Every free block is on the one list.
pub(super) fn check_free_block(pfn: u64, lt: usize) -> Result<(), String> {
    if lt != LIST {
        return Err(format!(
            "vanilla free block at pfn {pfn} on typed list {lt}"
        ));
    }
    Ok(())
}
