//! page_owner: who allocated every block, at a few bytes per page
//! (`mm/page_owner.c`).
//!
//! The engine calls [`PageOwner::on_alloc`] for every allocated block and
//! [`PageOwner::on_free`] for every freed one, only when the machine was built
//! with `page_owner = true` (otherwise `Machine::owner` is `None` and costs nothing).
//!
//! Layout. The 2005 patch stored the order and 8 return addresses in every
//! `struct page` (36 bytes a page on i386); today's kernel keeps ~64 bytes of
//! page_ext per page with stacks in a stack depot. kmm interns the whole
//! allocation context (stack handle, order, gfp mask, pid, tgid, and the free
//! stack when asked) into a 24-bit *context* id, because contexts repeat a
//! lot, and stores per pfn only that id plus a 24-bit millisecond timestamp:
//! a `u32` (context in the low 24 bits, timestamp bits 16..24 in the high 8) and
//! a `u16` (timestamp bits 0..16), 6 bytes per page. Only head pages are
//! written. Both arrays are `vec![0; n]`, so untouched memory is never mapped.
//!
//! The module by concept:
//! - this file: the recorder ([`PageOwner`]: contexts, timestamps, comms, memory);
//! - [`print`](mod@print): the dump printer, the one renderer of page_owner text (record
//!   headers and frames), for `/proc/page_owner` of 2005 and
//!   `/sys/kernel/debug/page_owner` of today;
//! - [`stacks`]: `page_owner_stacks/show_stacks` and the per-context counts;
//! - [`sort`]: `page_owner_sort`'s groups of identical records and the
//!   allocator classifier;
//! - [`parse`]: the streaming parser of dump text that fills those groups
//!   (its SWAR byte scanners in `scan`); in `parse/`: the state machine
//!   (`mod.rs`), the header fields (`header.rs`), the buffer and parallel
//!   file readers (`file.rs`), the unit tests (`tests.rs`);
//! - [`table`]: the keyed aggregation table the parser folds records into;
//!   in `table/`: the table and its interning (`mod.rs`), the sort order and
//!   its ties (`order.rs`), the diff matching (`diff.rs`), the merging of the
//!   parts of a parallel read (`merge.rs`);
//! - `pages`: [`PageView`], the read-only view of the page map that page_owner
//!   reads (built by the allocator's `mm/owner_view.rs`, which also holds the
//!   `impl Machine` entry points: `Machine::page_owner`, `page_owner_dump`,
//!   `page_owner_show_stacks`, ...).
//!
//! Everything that walks the machine walks its allocated head pages in pfn
//! order, through a [`PageView`]; page_owner imports the page-flag encoding
//! and the zone type, never the allocator.

pub mod output;
mod pages;
pub mod parse;
pub mod print;
mod scan;
pub mod sort;
pub mod stacks;
pub mod table;

pub use output::{OutFormat, Report};
pub(crate) use pages::PageView;
pub use parse::{aggregate_bytes, aggregate_file, AggStats, Aggregator};
pub use print::{DumpFormat, OwnerDump};
pub use sort::{Allocator, Group};
pub use stacks::{ContextCount, StackCount, StacksFile};
pub use table::{diff, parse_cull, parse_keys, DiffRow, Filter, OwnerTable, SortKey};

use crate::error::{Error, Result};
use crate::stackdepot::{DepotStats, StackDepot};
use std::collections::HashMap;

/// Who asked for an allocation, as page_owner records it: the call chain's
/// stack-depot handle (0: none), the task's pid and its thread group (tgid).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllocCtx {
    pub stack: u32,
    pub pid: u32,
    pub tgid: u32,
}

/// Context ids are 24-bit; this one stands for "too many distinct contexts".
pub const CTX_OVERFLOW: u32 = (1 << 24) - 1;
const CTX_MASK: u32 = (1 << 24) - 1;
/// Timestamps are stored in milliseconds, saturating at 2^24 - 1 (about 4.66 hours).
pub const TS_MAX_MS: u64 = (1 << 24) - 1;
/// Frames a 2005 record prints (the patch kept 8 return addresses).
pub const FRAMES_2005: usize = 8;
/// Frames a modern record prints (`PAGE_OWNER_STACK_DEPTH`).
pub const FRAMES_MODERN: usize = 16;
/// `TASK_COMM_LEN - 1`.
pub const COMM_MAX: usize = 15;
/// comm of a pid nobody named with `set_comm`.
pub const DEFAULT_COMM: &str = "kmm";

/// One interned allocation context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OwnerCtx {
    pub stack: u32,
    pub gfp: u32,
    pub pid: u32,
    pub tgid: u32,
    pub free_stack: u32,
    pub order: u8,
}

/// What page_owner knows about one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerRecord {
    pub ctx: OwnerCtx,
    /// Allocation time (or the free time, once freed with a free stack), in ns,
    /// at millisecond resolution.
    pub ts_ns: u64,
    /// Why the block was last migrated since it was allocated (`last_migrate_reason`).
    pub last_migrate_reason: Option<MigrateReason>,
}

/// Memory page_owner uses, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OwnerMemory {
    pub per_page: u64,
    pub contexts: u64,
    pub depot: u64,
    pub comms: u64,
    /// per_page + contexts + depot + comms.
    pub total: u64,
    pub nr_pages: u64,
}

/// Owner records of a machine.
#[derive(Debug, Clone, Default)]
pub struct PageOwner {
    pub free_stacks: bool,
    pub depot: StackDepot,
    /// Per pfn: context id (low 24 bits), timestamp ms bits 16..24 (high 8).
    ctx_ts: Vec<u32>,
    /// Per pfn: timestamp ms bits 0..16.
    ts_lo: Vec<u16>,
    /// Context id - 1 -> context.
    ctxs: Vec<PackedCtx>,
    /// Open addressing over context ids (0 = empty).
    ctx_table: Vec<u32>,
    comm: HashMap<u32, Box<str>>,
    /// Allocations recorded under [`CTX_OVERFLOW`].
    pub ctx_overflows: u64,
    /// Per pfn, one bit: the block was migrated since it was allocated, for
    /// [`MigrateReason::Compaction`], kmm's one reason (empty until the first
    /// migration).
    migrated: Vec<u64>,
}

/// Why a block was last migrated: the kernel's `enum migrate_reason`
/// (`include/linux/migrate_mode.h`), printed by its `migrate_reason_names`.
/// kmm migrates only for compaction; the kernel's other reasons (memory
/// failure, hotplug, NUMA balancing, mbind, longterm pins, demotion, DAMON)
/// have no mechanism here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateReason {
    /// `MR_COMPACTION`.
    Compaction,
}

impl MigrateReason {
    /// The name a dump prints (`migrate_reason_names[]`).
    pub fn name(self) -> &'static str {
        match self {
            MigrateReason::Compaction => "compaction",
        }
    }
}

/// A context as stored: 20 bytes (the order rides in the top byte of the gfp
/// word; kmm's GFP bits fit in the low 18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PackedCtx {
    stack: u32,
    gfp_order: u32,
    pid: u32,
    tgid: u32,
    free_stack: u32,
}

impl PackedCtx {
    #[inline]
    fn pack(c: &OwnerCtx) -> PackedCtx {
        PackedCtx {
            stack: c.stack,
            gfp_order: (c.gfp & 0x00ff_ffff) | ((c.order as u32) << 24),
            pid: c.pid,
            tgid: c.tgid,
            free_stack: c.free_stack,
        }
    }
    #[inline]
    fn unpack(&self) -> OwnerCtx {
        OwnerCtx {
            stack: self.stack,
            gfp: self.gfp_order & 0x00ff_ffff,
            pid: self.pid,
            tgid: self.tgid,
            free_stack: self.free_stack,
            order: (self.gfp_order >> 24) as u8,
        }
    }
    #[inline]
    fn hash(&self) -> u64 {
        let a =
            ((self.stack as u64) << 32 | self.gfp_order as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let b = ((self.pid as u64) << 32 | self.tgid as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        let h =
            (a ^ b.rotate_left(29) ^ (self.free_stack as u64).wrapping_mul(0x1656_67b1_9e37_79f9))
                .wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^ (h >> 31)
    }
}

impl PageOwner {
    /// Records for a machine of `nr_pages` pages (`page_ext_init` with page_owner on).
    pub fn new(nr_pages: u64, free_stacks: bool) -> PageOwner {
        PageOwner {
            free_stacks,
            depot: StackDepot::new(),
            ctx_ts: vec![0; nr_pages as usize],
            ts_lo: vec![0; nr_pages as usize],
            ctx_table: vec![0; 256],
            ..Default::default()
        }
    }

    /// Insert `id` in an open-addressing table at the first free slot of `h`.
    #[inline]
    fn table_put(table: &mut [u32], h: u64, id: u32) {
        let mask = table.len() - 1;
        let mut i = (h as usize) & mask;
        while table[i] != 0 {
            i = (i + 1) & mask;
        }
        table[i] = id;
    }

    /// The id of context `c`, interning it on first sight ([`CTX_OVERFLOW`] when the table is full).
    fn intern_ctx(&mut self, c: OwnerCtx) -> u32 {
        let pc = PackedCtx::pack(&c);
        let h = pc.hash();
        let mask = self.ctx_table.len() - 1;
        let mut i = (h as usize) & mask;
        loop {
            let e = self.ctx_table[i];
            if e == 0 {
                break;
            }
            if self.ctxs[(e - 1) as usize] == pc {
                return e;
            }
            i = (i + 1) & mask;
        }
        if self.ctxs.len() + 1 >= CTX_OVERFLOW as usize {
            self.ctx_overflows += 1;
            return CTX_OVERFLOW;
        }
        // grow by a quarter, not double: contexts are most of page_owner's table memory
        if self.ctxs.len() == self.ctxs.capacity() {
            self.ctxs.reserve_exact((self.ctxs.len() / 4).max(64));
        }
        self.ctxs.push(pc);
        let id = self.ctxs.len() as u32;
        if self.ctxs.len() * 4 > self.ctx_table.len() * 3 {
            let mut t = vec![0u32; self.ctx_table.len() * 2];
            for (k, x) in self.ctxs.iter().enumerate() {
                Self::table_put(&mut t, x.hash(), k as u32 + 1);
            }
            self.ctx_table = t;
        } else {
            self.ctx_table[i] = id;
        }
        id
    }

    /// Write the record of `pfn`: context `id`, time `now_ns` in milliseconds.
    #[inline]
    fn store(&mut self, pfn: u32, id: u32, now_ns: u64) {
        let ms = (now_ns / 1_000_000).min(TS_MAX_MS) as u32;
        let p = pfn as usize;
        self.ctx_ts[p] = (id & CTX_MASK) | ((ms >> 16) << 24);
        self.ts_lo[p] = ms as u16;
    }

    /// A block of `order` at `pfn` was allocated by `ctx` at `now_ns`
    /// (`__set_page_owner`, called from the allocator's `post_alloc_hook`).
    #[inline]
    pub fn on_alloc(&mut self, pfn: u32, order: u32, gfp: u32, ctx: AllocCtx, now_ns: u64) {
        let id = self.intern_ctx(OwnerCtx {
            stack: ctx.stack,
            gfp,
            pid: ctx.pid,
            tgid: ctx.tgid,
            free_stack: 0,
            order: order as u8,
        });
        self.store(pfn, id, now_ns);
        if !self.migrated.is_empty() {
            self.migrated[pfn as usize / 64] &= !(1 << (pfn % 64));
        }
    }

    /// The block at `old` was migrated to `new` for `reason`: the record
    /// follows it, with its last migrate reason (the kernel's
    /// `__folio_copy_owner` and `folio_set_owner_migrate_reason`; a dump
    /// prints "Page has been migrated, last migrate reason: compaction").
    pub fn on_migrate(&mut self, old: u32, new: u32, reason: MigrateReason) {
        let MigrateReason::Compaction = reason;
        let (o, n) = (old as usize, new as usize);
        self.ctx_ts[n] = self.ctx_ts[o];
        self.ts_lo[n] = self.ts_lo[o];
        if self.migrated.is_empty() {
            self.migrated = vec![0; self.ctx_ts.len().div_ceil(64)];
        }
        self.migrated[n / 64] |= 1 << (n % 64);
    }

    /// Whether the block at `pfn` was migrated by compaction since it was allocated.
    pub fn migrated(&self, pfn: u32) -> bool {
        self.migrated
            .get(pfn as usize / 64)
            .is_some_and(|w| w >> (pfn % 64) & 1 != 0)
    }

    /// Why the block at `pfn` was last migrated since it was allocated, if it was.
    #[inline]
    pub fn last_migrate_reason(&self, pfn: u32) -> Option<MigrateReason> {
        self.migrated(pfn).then_some(MigrateReason::Compaction)
    }

    /// The block at `pfn` is being freed (`__reset_page_owner`; `free_stack` 0 = unknown). With
    /// `free_stacks` on, the record keeps the allocation context, gains the
    /// free stack, and its time becomes the free time.
    #[inline]
    pub fn on_free(&mut self, pfn: u32, _order: u32, free_stack: u32, now_ns: u64) {
        if !self.free_stacks || free_stack == 0 {
            return;
        }
        let id = self.ctx_ts[pfn as usize] & CTX_MASK;
        let mut c = self.ctx(id);
        c.free_stack = free_stack;
        let nid = self.intern_ctx(c);
        self.store(pfn, nid, now_ns);
    }

    /// Is `handle` a stack this depot knows (0, "none", is always valid)?
    pub fn valid_handle(&self, handle: u32) -> bool {
        self.depot.valid(handle)
    }

    /// The context behind an id (the default, all zero, for 0 and overflow).
    #[inline]
    pub fn ctx(&self, id: u32) -> OwnerCtx {
        if id == 0 || id == CTX_OVERFLOW {
            OwnerCtx::default()
        } else {
            self.ctxs[(id - 1) as usize].unpack()
        }
    }

    /// The raw record of `pfn`: (context id, time in ms).
    #[inline]
    pub fn raw(&self, pfn: u32) -> (u32, u64) {
        let p = pfn as usize;
        let v = self.ctx_ts[p];
        (
            v & CTX_MASK,
            (((v >> 24) as u64) << 16) | self.ts_lo[p] as u64,
        )
    }

    /// The record of the block headed by `pfn` (the caller knows it is one).
    #[inline]
    pub fn record(&self, pfn: u32) -> OwnerRecord {
        let (id, ms) = self.raw(pfn);
        OwnerRecord {
            ctx: self.ctx(id),
            ts_ns: ms * 1_000_000,
            last_migrate_reason: self.last_migrate_reason(pfn),
        }
    }

    /// The context id recorded for the block at `pfn`: 4 bytes that remember
    /// who allocated it (see [`PageOwner::alloc_ctx_of`]), e.g. for a trace
    /// object that may be reclaimed and refault later.
    #[inline]
    pub fn context_id(&self, pfn: u32) -> u32 {
        self.ctx_ts[pfn as usize] & CTX_MASK
    }

    /// The (stack, pid, tgid) and gfp mask behind a context id.
    #[inline]
    pub fn alloc_ctx_of(&self, id: u32) -> (AllocCtx, u32) {
        let c = self.ctx(id);
        (
            AllocCtx {
                stack: c.stack,
                pid: c.pid,
                tgid: c.tgid,
            },
            c.gfp,
        )
    }

    /// Number of distinct contexts.
    pub fn nr_contexts(&self) -> usize {
        self.ctxs.len()
    }

    /// Name the task `pid` (`TASK_COMM_LEN`: at most 15 bytes).
    pub fn set_comm(&mut self, pid: u32, comm: &str) -> Result<()> {
        if comm.is_empty() || comm.len() > COMM_MAX {
            return Err(Error::PageOwner(format!(
                "comm {comm:?} must be 1..{COMM_MAX} bytes (TASK_COMM_LEN is 16)"
            )));
        }
        if comm.chars().any(|c| c.is_control() || c == '(' || c == ')') {
            return Err(Error::PageOwner(format!(
                "comm {comm:?} must be printable, without parentheses"
            )));
        }
        self.comm.insert(pid, comm.into());
        Ok(())
    }

    /// The comm of task `pid` of process `tgid`: its own name, else its
    /// process's, else "swapper" for pid 0 and [`DEFAULT_COMM`] otherwise.
    pub fn comm(&self, pid: u32, tgid: u32) -> &str {
        match self.comm.get(&pid).or_else(|| self.comm.get(&tgid)) {
            Some(c) => c,
            None if pid == 0 => "swapper",
            None => DEFAULT_COMM,
        }
    }

    /// Counters of the stack depot.
    pub fn depot_stats(&self) -> DepotStats {
        self.depot.stats()
    }

    /// Memory page_owner uses, in bytes.
    pub fn memory(&self) -> OwnerMemory {
        let per_page = self.ctx_ts.capacity() as u64 * 4 + self.ts_lo.capacity() as u64 * 2;
        let contexts = self.ctxs.capacity() as u64 * std::mem::size_of::<PackedCtx>() as u64
            + self.ctx_table.capacity() as u64 * 4;
        let depot = self.depot.stats().bytes;
        let comms = self.comm.capacity() as u64 * 24
            + self.comm.values().map(|c| c.len() as u64).sum::<u64>();
        OwnerMemory {
            per_page,
            contexts,
            depot,
            comms,
            total: per_page + contexts + depot + comms,
            nr_pages: self.ctx_ts.len() as u64,
        }
    }
}

/// The error of a page_owner call on a machine built without it.
pub(crate) fn no_owner() -> Error {
    Error::PageOwner(
        "this machine was built without page_owner (use Machine(page_owner=True))".into(),
    )
}

/// Machines and call chains the tests of this module share.
#[cfg(test)]
pub(crate) mod testing {
    use crate::config::{Layout, MachineConfig, Policy};
    use crate::stackdepot::FrameRef;
    use crate::Machine;

    /// 64 MiB of i386 with page_owner on.
    pub fn machine(policy: Policy) -> Machine {
        let mut cfg = MachineConfig::new(Layout::X86_32, 64 << 20);
        cfg.policy = policy;
        cfg.page_owner = true;
        Machine::new(cfg).unwrap()
    }

    /// Intern the readahead chain of the 2005 page_owner example.
    pub fn readahead(m: &mut Machine) -> u32 {
        let f = |a: u64, s: &'static str, o: u32, z: u32| FrameRef {
            addr: a,
            symbol: s,
            offset: o,
            size: z,
            module: None,
        };
        m.page_owner_intern(&[
            f(0xc0146572, "__do_page_cache_readahead", 290, 0x1a0),
            f(0xc0146a70, "max_sane_readahead", 48, 0x40),
            f(0xc0140166, "filemap_nopage", 790, 0x3a0),
        ])
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{machine, readahead};
    use super::*;
    use crate::config::{Layout, MachineConfig, Policy};
    use crate::gfp;
    use crate::Machine;

    #[test]
    fn no_owner_is_an_error() {
        let mut cfg = MachineConfig::new(Layout::X86_32, 64 << 20);
        cfg.page_owner = false;
        let m = Machine::new(cfg).unwrap();
        assert!(matches!(m.page_owner(), Err(Error::PageOwner(_))));
        assert!(m
            .page_owner_dump(DumpFormat::Modern, &mut Vec::new())
            .is_err());
    }

    #[test]
    fn free_stack_recorded_only_when_asked() {
        let mut cfg = MachineConfig::new(Layout::X86_32, 64 << 20);
        cfg.page_owner = true;
        cfg.page_owner_free_stacks = true;
        let mut m = Machine::new(cfg).unwrap();
        let h = readahead(&mut m);
        let p = m
            .alloc_ctx(
                0,
                gfp::GFP_KERNEL,
                None,
                AllocCtx {
                    stack: h,
                    pid: 1,
                    tgid: 1,
                },
            )
            .unwrap()
            .unwrap();
        m.free_stack(p, h).unwrap();
        let (id, _) = m.page_owner().unwrap().raw(p as u32);
        let c = m.page_owner().unwrap().ctx(id);
        assert_eq!((c.stack, c.free_stack), (h, h));
        assert!(m.free_stack(p, 99).is_err());
    }

    #[test]
    fn memory_is_six_bytes_a_page_plus_tables() {
        let m = machine(Policy::Vanilla);
        let mem = m.page_owner().unwrap().memory();
        assert_eq!(mem.per_page, m.nr_pages * 6);
        assert!(mem.total < m.nr_pages * 8);
    }
}
