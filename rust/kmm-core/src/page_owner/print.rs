//! The dump printer: the one renderer of page_owner text.
//!
//! Record headers and stack frames are written here and nowhere else, for the
//! dump (`read_page_owner` / `print_page_owner` of `mm/page_owner.c`), for
//! `show_stacks` and for the groups
//! [`Machine::page_owner_groups`](crate::Machine::page_owner_groups) makes of the
//! records. Two formats: 2.6.11-rc2-mm2's `/proc/page_owner` and today's
//! `/sys/kernel/debug/page_owner`.

use super::pages::PageView;
use super::{OwnerCtx, PageOwner};
use crate::error::{Error, Result};
use crate::gfp;
use crate::stackdepot::{Frame, StackDepot};
use std::collections::HashMap;
use std::io::Write;

/// Frames a 2005 record prints (the patch kept 8 return addresses).
pub const FRAMES_2005: usize = 8;
/// Frames a modern record prints (`PAGE_OWNER_STACK_DEPTH`).
pub const FRAMES_MODERN: usize = 16;
/// Bytes of dump text handed to a writer at a time.
pub const DUMP_CHUNK: usize = 1 << 20;

/// Which dump to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    /// 2.6.11-rc2-mm2 `/proc/page_owner` (with the March 2005 mask field).
    Proc2005,
    /// Today's `/sys/kernel/debug/page_owner`.
    Modern,
}

impl DumpFormat {
    /// `"2005"` (or `"proc"`) and `"modern"` (or `"debugfs"`).
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

/// Append `v` in decimal (`%lu`).
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

/// Append `v` in lower-case hex without a prefix (`%lx`).
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

// ---- records ----------------------------------------------------------------

/// Modern page flag bits kmm reports (a coherent subset of today's numbering).
const PG_UPTODATE: u32 = 3;
const PG_LRU: u32 = 4;
const PG_HEAD: u32 = 16;
/// i386-style packing of node and zone into the top of the 32-bit flags.
const NODE_SHIFT: u32 = 24;
const ZONE_SHIFT: u32 = 30;

/// Append the first line of a record without its per-record fields (`ts`)
/// and without the newline: `Page allocated via order N, mask 0x..` (2005), or
/// with the mask's names, pid, tgid and comm (modern).
pub(crate) fn put_header(out: &mut Vec<u8>, po: &PageOwner, c: &OwnerCtx, format: DumpFormat) {
    out.extend_from_slice(b"Page allocated via order ");
    put_dec(out, c.order as u64);
    out.extend_from_slice(b", mask ");
    match format {
        DumpFormat::Proc2005 => {
            out.extend_from_slice(b"0x");
            put_hex(out, c.gfp as u64);
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
            out.push(b')');
        }
    }
}

/// Append the stack lines of `handle` as `format` prints them (at most
/// [`FRAMES_2005`] or [`FRAMES_MODERN`]), each ending in a newline.
pub(crate) fn put_stack(out: &mut Vec<u8>, d: &StackDepot, handle: u32, format: DumpFormat) {
    match format {
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
}

/// Append one frame as today's kernel prints it (`%pS`): ` symbol+0xoff/0xsize [module]`.
pub(crate) fn put_frame_modern(out: &mut Vec<u8>, d: &StackDepot, f: &Frame) {
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

/// Append the `PFN .. type .. Block .. type .. Flags ..` line of a modern record.
fn put_pfn_line(out: &mut Vec<u8>, pages: PageView<'_>, pfn: u32, order: u32, lru: bool, gfp: u32) {
    out.extend_from_slice(b"PFN 0x");
    put_hex(out, pfn as u64);
    out.extend_from_slice(b" type ");
    let (pt, bt) = pages.type_names(pfn, gfp);
    out.extend_from_slice(pt.as_bytes());
    out.extend_from_slice(b" Block ");
    put_dec(out, pages.pageblock_nr(pfn));
    out.extend_from_slice(b" type ");
    out.extend_from_slice(bt.as_bytes());
    out.extend_from_slice(b" Flags 0x");
    let (node, zt) = pages.zone_ids(pfn);
    let head = order > 0 && gfp & gfp::__GFP_COMP != 0;
    let mut bits = ((zt as u64) << ZONE_SHIFT) | ((node as u64 & 0x3f) << NODE_SHIFT);
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
    put_dec(out, node as u64);
    out.extend_from_slice(b"|zone=");
    put_dec(out, zt as u64);
    out.extend_from_slice(b")\n");
}

/// Rendered headers (by context id) and stacks (by handle), rendered once each.
#[derive(Debug, Clone)]
pub(crate) struct RecordText {
    pub format: DumpFormat,
    arena: Vec<u8>,
    stacks: HashMap<u32, (u32, u32)>,
    headers: HashMap<u32, (u32, u32)>,
}

impl RecordText {
    pub fn new(format: DumpFormat) -> RecordText {
        RecordText {
            format,
            arena: Vec::new(),
            stacks: HashMap::new(),
            headers: HashMap::new(),
        }
    }

    fn cached(
        arena: &mut Vec<u8>,
        cache: &mut HashMap<u32, (u32, u32)>,
        key: u32,
        render: impl FnOnce(&mut Vec<u8>),
    ) -> (usize, usize) {
        let (s, l) = *cache.entry(key).or_insert_with(|| {
            let start = arena.len();
            render(arena);
            (start as u32, (arena.len() - start) as u32)
        });
        (s as usize, (s + l) as usize)
    }

    /// The header of context `id` ([`put_header`]).
    pub fn header(&mut self, po: &PageOwner, id: u32) -> &[u8] {
        let f = self.format;
        let (s, e) = Self::cached(&mut self.arena, &mut self.headers, id, |out| {
            put_header(out, po, &po.ctx(id), f)
        });
        &self.arena[s..e]
    }

    /// The stack lines of `handle` ([`put_stack`]).
    pub fn stack(&mut self, po: &PageOwner, handle: u32) -> &[u8] {
        let f = self.format;
        let (s, e) = Self::cached(&mut self.arena, &mut self.stacks, handle, |out| {
            put_stack(out, &po.depot, handle, f)
        });
        &self.arena[s..e]
    }
}

/// A resumable dump: the cursor and the rendered headers and stacks.
#[derive(Debug, Clone)]
pub struct OwnerDump {
    /// Next pfn to look at.
    pub next_pfn: u64,
    /// Records written so far.
    pub records: u64,
    text: RecordText,
}

impl OwnerDump {
    pub fn new(format: DumpFormat) -> OwnerDump {
        OwnerDump {
            next_pfn: 0,
            records: 0,
            text: RecordText::new(format),
        }
    }

    /// Append records to `out` until it holds at least `limit` bytes or the
    /// dump is complete (`read_page_owner`'s loop); returns true when complete.
    pub(crate) fn fill(
        &mut self,
        po: &PageOwner,
        pages: PageView<'_>,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> bool {
        let modern = self.text.format == DumpFormat::Modern;
        while let Some(b) = pages.next_allocated(self.next_pfn) {
            if out.len() >= limit {
                self.next_pfn = b.pfn as u64;
                return false;
            }
            let (id, ms) = po.raw(b.pfn);
            let c = po.ctx(id);
            out.extend_from_slice(self.text.header(po, id));
            if modern {
                out.extend_from_slice(b", ts ");
                put_dec(out, ms * 1_000_000);
                out.extend_from_slice(b" ns\n");
                put_pfn_line(out, pages, b.pfn, b.order, b.lru, c.gfp);
            } else {
                out.push(b'\n');
            }
            out.extend_from_slice(self.text.stack(po, c.stack));
            if modern {
                if let Some(r) = po.last_migrate_reason(b.pfn) {
                    // print_page_owner: after the stack, before the memcg line
                    out.extend_from_slice(b"Page has been migrated, last migrate reason: ");
                    out.extend_from_slice(r.name().as_bytes());
                    out.push(b'\n');
                }
            }
            out.push(b'\n');
            self.records += 1;
            self.next_pfn = b.pfn as u64 + (1 << b.order);
        }
        self.next_pfn = pages.nr_pages();
        true
    }
}

/// Write the whole dump to `w` in chunks of about [`DUMP_CHUNK`] bytes; returns the records written.
pub(crate) fn dump<W: Write>(
    po: &PageOwner,
    pages: PageView<'_>,
    format: DumpFormat,
    w: &mut W,
) -> Result<u64> {
    let mut d = OwnerDump::new(format);
    let mut buf = Vec::with_capacity(DUMP_CHUNK);
    loop {
        buf.clear();
        let done = d.fill(po, pages, &mut buf, DUMP_CHUNK);
        w.write_all(&buf)
            .map_err(|e| Error::PageOwner(format!("writing the page_owner dump: {e}")))?;
        if done {
            return Ok(d.records);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{machine, readahead};
    use super::*;
    use crate::config::Policy;
    use crate::page_owner::AllocCtx;

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
    fn chunked_fill_is_the_whole_dump() {
        let mut m = machine(Policy::AntiFrag);
        let h = readahead(&mut m);
        for pid in 0..200 {
            let ctx = AllocCtx {
                stack: h,
                pid,
                tgid: pid,
            };
            m.alloc_ctx(pid % 3, gfp::GFP_KERNEL, None, ctx).unwrap();
        }
        for format in [DumpFormat::Proc2005, DumpFormat::Modern] {
            let mut whole = Vec::new();
            let n = m.page_owner_dump(format, &mut whole).unwrap();
            let mut d = OwnerDump::new(format);
            let (mut parts, mut buf) = (Vec::new(), Vec::new());
            loop {
                buf.clear();
                let done = m.page_owner_dump_fill(&mut d, &mut buf, 1000).unwrap();
                parts.extend_from_slice(&buf);
                if done {
                    break;
                }
            }
            assert_eq!((d.records, parts), (n, whole));
        }
    }
}
