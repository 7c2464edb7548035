//! page_owner: who allocated every block, at a few bytes per page.
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
//! The dumps (`/proc/page_owner` of 2005, `/sys/kernel/debug/page_owner` of
//! today) and the `page_owner_stacks/show_stacks` view are `impl Machine`
//! methods here; they walk the allocated head pages in pfn order.

use crate::config::Policy;
use crate::error::{Error, Result};
use crate::gfp::{self, AllocType};
use crate::machine::{
    forder, kind, AllocCtx, Machine, F_LRU, K_ALLOC, K_FREE, LT_FALLBACK, LT_GLOBAL, LT_KERNRCLM,
    LT_NORCLM, LT_USERRCLM,
};
use crate::stackdepot::{DepotStats, FrameRef, StackDepot};
use std::collections::HashMap;
use std::io::Write;

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

    #[inline]
    fn store(&mut self, pfn: u32, id: u32, now_ns: u64) {
        let ms = (now_ns / 1_000_000).min(TS_MAX_MS) as u32;
        let p = pfn as usize;
        self.ctx_ts[p] = (id & CTX_MASK) | ((ms >> 16) << 24);
        self.ts_lo[p] = ms as u16;
    }

    /// A block of `order` at `pfn` was allocated by `ctx` at `now_ns`.
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
    }

    /// The block at `pfn` is being freed (`free_stack` 0 = unknown). With
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

    pub fn depot_stats(&self) -> DepotStats {
        self.depot.stats()
    }

    /// Memory page_owner uses on a machine of `nr_pages` pages.
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

/// Which dump to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    /// 2.6.11-rc2-mm2 `/proc/page_owner` (with the March 2005 mask field).
    Proc2005,
    /// Today's `/sys/kernel/debug/page_owner`.
    Modern,
}

impl DumpFormat {
    pub fn parse(s: &str) -> Result<DumpFormat> {
        match s {
            "2005" | "proc" => Ok(DumpFormat::Proc2005),
            "modern" | "debugfs" => Ok(DumpFormat::Modern),
            _ => Err(Error::PageOwner(format!(
                "unknown page_owner dump format {s:?} (expected \"2005\" or \"modern\")"
            ))),
        }
    }
}

// ---- fast number formatting -------------------------------------------------

#[inline]
pub(crate) fn put_dec(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = 20;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[inline]
pub(crate) fn put_hex(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 16];
    let mut i = 16;
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(v & 15) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Modern page flag bits kmm reports (a coherent subset of today's numbering).
const PG_UPTODATE: u32 = 3;
const PG_LRU: u32 = 4;
const PG_HEAD: u32 = 16;
/// i386-style packing of node and zone into the top of the 32-bit flags.
const NODE_SHIFT: u32 = 24;
const ZONE_SHIFT: u32 = 30;

/// A resumable dump: holds the cursor and caches of rendered headers and stacks.
#[derive(Debug, Clone)]
pub struct OwnerDump {
    pub format: DumpFormat,
    /// Next pfn to look at.
    pub next_pfn: u64,
    /// Records written so far.
    pub records: u64,
    arena: Vec<u8>,
    stack_text: HashMap<u32, (u32, u32)>,
    header_text: HashMap<u32, (u32, u32)>,
}

impl OwnerDump {
    pub fn new(format: DumpFormat) -> OwnerDump {
        OwnerDump {
            format,
            next_pfn: 0,
            records: 0,
            arena: Vec::new(),
            stack_text: HashMap::new(),
            header_text: HashMap::new(),
        }
    }

    pub fn done(&self, m: &Machine) -> bool {
        self.next_pfn >= m.nr_pages
    }

    fn stack_range(&mut self, po: &PageOwner, handle: u32) -> (u32, u32) {
        if let Some(&r) = self.stack_text.get(&handle) {
            return r;
        }
        let start = self.arena.len();
        let out = &mut self.arena;
        let d = &po.depot;
        match self.format {
            DumpFormat::Proc2005 => {
                for f in d.frames(handle).iter().take(FRAMES_2005) {
                    out.extend_from_slice(b"[0x");
                    put_hex(out, f.addr);
                    out.extend_from_slice(b"] ");
                    out.extend_from_slice(d.name(f.symbol).as_bytes());
                    out.push(b'+');
                    put_dec(out, f.offset as u64);
                    out.push(b'\n');
                }
            }
            DumpFormat::Modern => {
                for f in d.frames(handle).iter().take(FRAMES_MODERN) {
                    put_frame_modern(out, d, f);
                }
            }
        }
        let r = (start as u32, (self.arena.len() - start) as u32);
        self.stack_text.insert(handle, r);
        r
    }

    fn header_range(&mut self, po: &PageOwner, id: u32) -> (u32, u32) {
        if let Some(&r) = self.header_text.get(&id) {
            return r;
        }
        let c = po.ctx(id);
        let start = self.arena.len();
        let out = &mut self.arena;
        out.extend_from_slice(b"Page allocated via order ");
        put_dec(out, c.order as u64);
        out.extend_from_slice(b", mask ");
        match self.format {
            DumpFormat::Proc2005 => {
                out.extend_from_slice(b"0x");
                put_hex(out, c.gfp as u64);
                out.push(b'\n');
            }
            DumpFormat::Modern => {
                // "%#x": no 0x prefix for zero
                if c.gfp != 0 {
                    out.extend_from_slice(b"0x");
                }
                put_hex(out, c.gfp as u64);
                out.push(b'(');
                out.extend_from_slice(gfp::format_names(c.gfp).as_bytes());
                out.extend_from_slice(b"), pid ");
                put_dec(out, c.pid as u64);
                out.extend_from_slice(b", tgid ");
                put_dec(out, c.tgid as u64);
                out.extend_from_slice(b" (");
                out.extend_from_slice(po.comm(c.pid, c.tgid).as_bytes());
                out.extend_from_slice(b"), ts ");
            }
        }
        let r = (start as u32, (self.arena.len() - start) as u32);
        self.header_text.insert(id, r);
        r
    }

    /// Append records to `out` until it holds at least `limit` bytes or the
    /// dump is complete; returns true when complete.
    pub fn fill(&mut self, m: &Machine, out: &mut Vec<u8>, limit: usize) -> Result<bool> {
        let po = m.page_owner()?;
        let n = m.nr_pages as usize;
        let mut p = self.next_pfn as usize;
        while p < n {
            if out.len() >= limit {
                self.next_pfn = p as u64;
                return Ok(false);
            }
            let f = m.flags[p];
            let k = kind(f);
            if k == K_FREE {
                p += 1 << forder(f);
                continue;
            }
            if k != K_ALLOC {
                p += 1;
                continue;
            }
            let order = forder(f);
            let (id, ms) = po.raw(p as u32);
            let c = po.ctx(id);
            let (hs, hl) = self.header_range(po, id);
            let (ss, sl) = self.stack_range(po, c.stack);
            out.extend_from_slice(&self.arena[hs as usize..(hs + hl) as usize]);
            if self.format == DumpFormat::Modern {
                put_dec(out, ms * 1_000_000);
                out.extend_from_slice(b" ns\nPFN 0x");
                put_hex(out, p as u64);
                out.extend_from_slice(b" type ");
                let (pt, bt) = m.owner_type_names(p as u32, c.gfp);
                out.extend_from_slice(pt.as_bytes());
                out.extend_from_slice(b" Block ");
                put_dec(out, (p as u64) >> m.block_order);
                out.extend_from_slice(b" type ");
                out.extend_from_slice(bt.as_bytes());
                out.extend_from_slice(b" Flags 0x");
                let zi = m.zone_of_pfn(p as u64);
                let z = &m.zones[zi];
                let lru = f & F_LRU != 0;
                let head = order > 0 && c.gfp & gfp::__GFP_COMP != 0;
                let mut bits =
                    ((z.zt as u64) << ZONE_SHIFT) | ((z.node as u64 & 0x3f) << NODE_SHIFT);
                if lru {
                    bits |= (1 << PG_UPTODATE) | (1 << PG_LRU);
                }
                if head {
                    bits |= 1 << PG_HEAD;
                }
                put_hex(out, bits);
                out.push(b'(');
                if lru {
                    out.extend_from_slice(b"uptodate|lru|");
                }
                if head {
                    out.extend_from_slice(b"head|");
                }
                out.extend_from_slice(b"node=");
                put_dec(out, z.node as u64);
                out.extend_from_slice(b"|zone=");
                put_dec(out, z.zt as u64);
                out.extend_from_slice(b")\n");
            }
            out.extend_from_slice(&self.arena[ss as usize..(ss + sl) as usize]);
            out.push(b'\n');
            self.records += 1;
            p += 1 << order;
        }
        self.next_pfn = n as u64;
        Ok(true)
    }
}

fn put_frame_modern(out: &mut Vec<u8>, d: &StackDepot, f: &crate::stackdepot::Frame) {
    out.push(b' ');
    out.extend_from_slice(d.name(f.symbol).as_bytes());
    out.extend_from_slice(b"+0x");
    put_hex(out, f.offset as u64);
    out.extend_from_slice(b"/0x");
    put_hex(out, f.size as u64);
    if let Some(md) = d.module(f) {
        out.extend_from_slice(b" [");
        out.extend_from_slice(md.as_bytes());
        out.push(b']');
    }
    out.push(b'\n');
}

/// Name of a free-list / pageblock type under a policy.
fn lt_name(policy: Policy, lt: usize) -> &'static str {
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

/// Per-stack count of outstanding base pages (the `show_stacks` view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackCount {
    pub handle: u32,
    pub nr_base_pages: u64,
}

/// Per-context totals of allocated blocks (the engine's own aggregation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextCount {
    pub stack: u32,
    pub order: u8,
    pub gfp: u32,
    pub pid: u32,
    pub tgid: u32,
    pub blocks: u64,
    pub pages: u64,
    /// Earliest allocation time among the blocks, ns.
    pub first_ts_ns: u64,
}

impl Machine {
    /// The page_owner records, or the error explaining this machine has none.
    pub fn page_owner(&self) -> Result<&PageOwner> {
        self.owner.as_ref().ok_or_else(no_owner)
    }

    pub fn page_owner_mut(&mut self) -> Result<&mut PageOwner> {
        self.owner.as_mut().ok_or_else(no_owner)
    }

    /// Intern a call chain (leaf first) in this machine's stack depot.
    pub fn page_owner_intern(&mut self, frames: &[FrameRef<'_>]) -> Result<u32> {
        self.page_owner_mut()?.depot.intern(frames)
    }

    /// (page migratetype, pageblock type) names of an allocated block, as a dump prints them.
    pub fn owner_type_names(&self, pfn: u32, gfp: u32) -> (&'static str, &'static str) {
        let t = AllocType::from_gfp(gfp) as usize;
        let page = lt_name(self.policy, t);
        let block = match self.policy {
            Policy::Vanilla => page,
            _ => {
                let zi = self.zone_of_pfn(pfn as u64);
                let z = &self.zones[zi];
                let b = ((pfn as u64 - z.start_pfn) >> self.block_order) as usize;
                lt_name(
                    self.policy,
                    z.block_type.get(b).copied().unwrap_or(0) as usize,
                )
            }
        };
        (page, block)
    }

    /// Visit every allocated head page in pfn order: (pfn, order, page flags).
    fn for_each_allocated(&self, mut f: impl FnMut(u32, u32, u16)) {
        let n = self.nr_pages as usize;
        let mut p = 0usize;
        while p < n {
            let fl = self.flags[p];
            match kind(fl) {
                K_ALLOC => {
                    let o = forder(fl);
                    f(p as u32, o, fl);
                    p += 1 << o;
                }
                K_FREE => p += 1 << forder(fl),
                _ => p += 1,
            }
        }
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
        let (id, ms) = po.raw(pfn as u32);
        Ok(OwnerRecord {
            ctx: po.ctx(id),
            ts_ns: ms * 1_000_000,
        })
    }

    /// Write the whole dump to `w` in chunks of about `chunk` bytes; returns the records written.
    pub fn page_owner_dump<W: Write>(&self, format: DumpFormat, w: &mut W) -> Result<u64> {
        let mut d = OwnerDump::new(format);
        let mut buf = Vec::with_capacity(1 << 20);
        loop {
            buf.clear();
            let done = d.fill(self, &mut buf, 1 << 20)?;
            w.write_all(&buf)
                .map_err(|e| Error::PageOwner(format!("writing the page_owner dump: {e}")))?;
            if done {
                return Ok(d.records);
            }
        }
    }

    /// Outstanding base pages per stack handle (handles with at least one page), by handle.
    pub fn page_owner_stacks(&self) -> Result<Vec<StackCount>> {
        let po = self.page_owner()?;
        let mut pages = vec![0u64; po.depot.len() + 1];
        self.for_each_allocated(|p, o, _| {
            let (id, _) = po.raw(p);
            pages[po.ctx(id).stack as usize] += 1 << o;
        });
        Ok(pages
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(h, &n)| StackCount {
                handle: h as u32,
                nr_base_pages: n,
            })
            .collect())
    }

    /// `page_owner_stacks/show_stacks`: each stack's frames, `nr_base_pages: N`, a
    /// blank line; stacks below `threshold` pages (`count_threshold`) are hidden.
    /// Blocks allocated without a stack (handle 0) are not shown.
    pub fn page_owner_show_stacks(&self, threshold: u64) -> Result<String> {
        let po = self.page_owner()?;
        let mut out = Vec::new();
        for s in self.page_owner_stacks()? {
            if s.handle == 0 || s.nr_base_pages < threshold {
                continue;
            }
            for f in po.depot.frames(s.handle) {
                put_frame_modern(&mut out, &po.depot, f);
            }
            out.extend_from_slice(b"nr_base_pages: ");
            put_dec(&mut out, s.nr_base_pages);
            out.extend_from_slice(b"\n\n");
        }
        Ok(String::from_utf8(out).expect("dump text is UTF-8"))
    }

    /// Allocated blocks and pages per allocation context (stack, order, gfp, pid,
    /// tgid), in order of first appearance by pfn: what a text aggregation of a
    /// dump finds, without the text.
    pub fn page_owner_aggregate(&self) -> Result<Vec<ContextCount>> {
        let po = self.page_owner()?;
        let mut index: HashMap<OwnerCtx, usize> = HashMap::new();
        let mut out: Vec<ContextCount> = Vec::new();
        let mut by_id: Vec<u32> = vec![u32::MAX; po.nr_contexts() + 1];
        self.for_each_allocated(|p, o, _| {
            let (id, ms) = po.raw(p);
            let slot = if (id as usize) < by_id.len() {
                by_id[id as usize]
            } else {
                u32::MAX
            };
            let i = if slot != u32::MAX {
                slot as usize
            } else {
                let mut c = po.ctx(id);
                c.free_stack = 0;
                let i = *index.entry(c).or_insert_with(|| {
                    out.push(ContextCount {
                        stack: c.stack,
                        order: c.order,
                        gfp: c.gfp,
                        pid: c.pid,
                        tgid: c.tgid,
                        blocks: 0,
                        pages: 0,
                        first_ts_ns: u64::MAX,
                    });
                    out.len() - 1
                });
                if (id as usize) < by_id.len() {
                    by_id[id as usize] = i as u32;
                }
                i
            };
            let e = &mut out[i];
            e.blocks += 1;
            e.pages += 1 << o;
            e.first_ts_ns = e.first_ts_ns.min(ms * 1_000_000);
        });
        Ok(out)
    }
}

fn no_owner() -> Error {
    Error::PageOwner(
        "this machine was built without page_owner (use Machine(page_owner=True))".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Layout, MachineConfig};
    use proptest::prelude::*;

    fn machine(policy: Policy) -> Machine {
        let mut cfg = MachineConfig::new(Layout::X86_32, 64 << 20);
        cfg.policy = policy;
        cfg.page_owner = true;
        Machine::new(cfg).unwrap()
    }

    fn readahead(m: &mut Machine) -> u32 {
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
    fn dump_2005_exact() {
        let mut m = machine(Policy::Vanilla);
        let h = readahead(&mut m);
        let ctx = AllocCtx {
            stack: h,
            pid: 7,
            tgid: 7,
        };
        let p = m
            .alloc_ctx(0, gfp::GFP_HIGHUSER, None, ctx)
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        let n = m.page_owner_dump(DumpFormat::Proc2005, &mut out).unwrap();
        assert_eq!(n, 1);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "Page allocated via order 0, mask 0x200d2\n\
             [0xc0146572] __do_page_cache_readahead+290\n\
             [0xc0146a70] max_sane_readahead+48\n\
             [0xc0140166] filemap_nopage+790\n\n"
        );
        m.free(p).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            m.page_owner_dump(DumpFormat::Proc2005, &mut out).unwrap(),
            0
        );
        assert!(out.is_empty());
    }

    #[test]
    fn dump_modern_exact() {
        let mut m = machine(Policy::Mobility);
        let h = readahead(&mut m);
        m.page_owner_mut().unwrap().set_comm(42, "cc1").unwrap();
        m.advance(3_000_000);
        let ctx = AllocCtx {
            stack: h,
            pid: 43,
            tgid: 42,
        };
        let p = m
            .alloc_ctx(2, gfp::GFP_KERNEL | gfp::__GFP_COMP, None, ctx)
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        m.page_owner_dump(DumpFormat::Modern, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let zi = m.zone_of_pfn(p);
        let (pt, bt) = m.owner_type_names(p as u32, gfp::GFP_KERNEL);
        let expect = format!(
            "Page allocated via order 2, mask 0x40d0(GFP_KERNEL|__GFP_COMP), pid 43, tgid 42 (cc1), ts 3000000 ns\n\
             PFN {:#x} type {pt} Block {} type {bt} Flags {:#x}(head|node=0|zone={})\n \
             __do_page_cache_readahead+0x122/0x1a0\n \
             max_sane_readahead+0x30/0x40\n \
             filemap_nopage+0x316/0x3a0\n\n",
            p,
            p >> m.block_order,
            (1u64 << 16) | ((m.zones[zi].zt as u64) << 30),
            m.zones[zi].zt
        );
        assert_eq!(pt, "Unmovable");
        assert_eq!(text, expect);
        let rec = m.page_owner_record(p).unwrap();
        assert_eq!(rec.ctx.order, 2);
        assert_eq!(rec.ts_ns, 3_000_000);
    }

    #[test]
    fn show_stacks_and_threshold() {
        let mut m = machine(Policy::AntiFrag);
        let h = readahead(&mut m);
        for _ in 0..3 {
            m.alloc_ctx(
                1,
                gfp::GFP_KERNEL,
                None,
                AllocCtx {
                    stack: h,
                    pid: 1,
                    tgid: 1,
                },
            )
            .unwrap();
        }
        m.alloc(0, gfp::GFP_KERNEL, None).unwrap();
        let s = m.page_owner_stacks().unwrap();
        assert_eq!(s.iter().find(|c| c.handle == h).unwrap().nr_base_pages, 6);
        let t = m.page_owner_show_stacks(0).unwrap();
        assert!(
            t.ends_with(" filemap_nopage+0x316/0x3a0\nnr_base_pages: 6\n\n"),
            "{t}"
        );
        assert_eq!(m.page_owner_show_stacks(7).unwrap(), "");
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

    proptest! {
        #[test]
        fn aggregate_matches_records(ops in prop::collection::vec((0u32..3, 0u32..4, 0u32..3, any::<bool>()), 1..200)) {
            let mut m = machine(Policy::Mobility);
            let h = readahead(&mut m);
            let mut live: Vec<u64> = Vec::new();
            for (order, pid, stk, free) in ops {
                if free && !live.is_empty() {
                    let p = live.swap_remove(0);
                    m.free(p).unwrap();
                } else {
                    let ctx = AllocCtx { stack: if stk == 0 { 0 } else { h }, pid, tgid: pid };
                    if let Some(p) = m.alloc_ctx(order, gfp::GFP_KERNEL, None, ctx).unwrap() {
                        live.push(p);
                    }
                }
            }
            let agg = m.page_owner_aggregate().unwrap();
            let blocks: u64 = agg.iter().map(|c| c.blocks).sum();
            prop_assert_eq!(blocks as usize, live.len());
            for p in &live {
                let r = m.page_owner_record(*p).unwrap();
                prop_assert!(agg.iter().any(|c| c.stack == r.ctx.stack && c.pid == r.ctx.pid && c.order == r.ctx.order));
            }
            let mut out = Vec::new();
            let n = m.page_owner_dump(DumpFormat::Modern, &mut out).unwrap();
            prop_assert_eq!(n as usize, live.len());
        }
    }
}
