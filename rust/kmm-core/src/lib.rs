//! kmm-core: the engine behind kmm.
//!
//! A physical memory map of 4 KiB pages split into NUMA nodes and zones, with
//! the 2.6.11 buddy allocator, Mel Gorman's 2005 anti-fragmentation allocator
//! and today's grouping by mobility as swappable policies; per-cpu page lists,
//! LRU reclaim (kswapd and direct), slab caches by object with their
//! shrinkers, active freeing, trace replay, page_owner
//! with a stack depot, and the /proc views. Pure Rust, no Python.
//!
//! Hot data is struct-of-arrays over pfns: a `u16` of flags per page and two
//! `u32` list links, reused as the kernel reuses `page->lru`. Lists are
//! intrusive and O(1); no operation allocates.
//!
//! The engine is in [`mm`], one file per mechanism.

pub mod config;
pub mod error;
pub mod ftrace;
pub mod gfp;
pub mod mm;
pub mod page_owner;
pub mod replay;
pub mod replay_real;
pub mod stackdepot;
pub mod workload;

pub use config::{parse_mem, Layout, MachineConfig, Policy};
pub use error::{Error, Result};
pub use mm::events::Counters;
pub use mm::machine::Machine;
pub use mm::policy::type_name;
pub use mm::vmstat::ZoneStats;
pub use page_owner::AllocCtx;

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// 2.6.11 meaning: 11 free lists, orders 0..=10.
pub const MAX_ORDER: usize = 11;
/// Pages reclaimed per direct-reclaim round (`SWAP_CLUSTER_MAX`).
pub const SWAP_CLUSTER_MAX: u64 = 32;
/// No pfn / no object / end of list.
pub const NONE: u32 = u32::MAX;
