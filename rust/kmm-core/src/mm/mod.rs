//! The memory manager, one file per mechanism as in the kernel's `mm/`.
//!
//! [`page`] is the page map's encoding that everyone may read (the kernel's
//! `internal.h`); [`mmzone`] the zones; [`machine`] the struct that holds them.
//! The rest each add an `impl Machine` for one mechanism: boot (`mm_init`),
//! buddy mechanics (`buddy`), the policies ([`policy`], the only dispatch on
//! the policy), watermarks, per-cpu lists (`pcp`), the allocation and free
//! paths ([`page_alloc`]), the LRU lists (`swap`), reclaim (`vmscan`), slab caches by object
//! ([`slab`], whose shrinkers reclaim calls), high-order scans (`highorder`),
//! compaction ([`compaction`]: the scanners, direct compaction) and its
//! background half (`kcompactd`: kcompactd, proactive compaction, watermark
//! boosting), active freeing (`active_free`), the OOM killer (`oom_kill`), counters ([`events`]), the views
//! ([`vmstat`]), the invariants (`check`), and page_owner's entry points
//! (`owner_view`: a read-only view of the page map handed to
//! [`crate::page_owner`], which never imports the allocator).
//!
//! Imports run one way, from the mechanisms down to `page`, `mmzone` and
//! `machine`; only `page_alloc` and `vmscan` call each other (the allocator
//! reclaims, reclaim frees), as `page_alloc.c` and `vmscan.c` do; `slab`
//! allocates and frees through `page_alloc`, and `vmscan` calls its
//! `shrink_slab`, as `slab.c` and `vmscan.c` do; `kcompactd` drives
//! `compaction`'s scanners, as kcompactd does inside `compaction.c`.

mod active_free;
mod buddy;
mod check;
pub mod compaction;
pub mod events;
mod highorder;
pub mod huge_memory;
mod kcompactd;
pub mod kpageflags;
pub mod machine;
mod mm_init;
pub mod mmzone;
pub(crate) mod objects;
mod oom_kill;
mod owner_view;
pub mod page;
pub mod page_alloc;
mod pcp;
pub mod policy;
pub mod slab;
mod swap;
mod vmscan;
pub mod vmstat;
mod watermark;
