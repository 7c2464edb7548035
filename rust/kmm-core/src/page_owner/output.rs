//! What `kmm page-owner sort` and `diff` print: the one renderer of
//! `page_owner_sort` output, the 2005 `Documentation/page_owner.c` output,
//! folded stacks, JSON and leak diffs, streamed from an [`OwnerTable`] a
//! chunk at a time ([`Report::fill`]), so no output is ever held whole.
//!
//! `page_owner_sort` (tools/mm/page_owner_sort.c): without `--cull`,
//! `N times, P pages, allocated by A :` (each allocator name is printed with
//! a trailing space), the record text, a blank line; with `--cull`,
//! `N times, P pages` then `, PID x`, `, TGID y`, `, task_comm_name: z` for
//! the culled or filtered fields, `, allocated by A ` when culled by
//! allocator, `:` and the stack when culled by stacktrace, and a newline.

use super::print::put_dec;
use super::table::{cull, put_int, DiffRow, OwnerTable, Rec, NONE};
use super::AggStats;
use std::collections::HashMap;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    /// `page_owner_sort`'s.
    Sort,
    /// `Documentation/page_owner.c` of 2005: `N times:` then the record.
    Classic,
    /// Folded stacks for flame graphs: `root;...;leaf PAGES`.
    Folded,
    Json,
}

impl OutFormat {
    pub fn parse(s: &str) -> Option<OutFormat> {
        Some(match s {
            "sort" => OutFormat::Sort,
            "classic" => OutFormat::Classic,
            "folded" => OutFormat::Folded,
            "json" => OutFormat::Json,
            _ => return None,
        })
    }
}

/// Which table(s) and rows a report renders.
enum Rows {
    Groups(Vec<u32>),
    Folded(Vec<(Vec<u8>, u64)>),
    Diff(Vec<DiffRow>),
}

/// A resumable rendering.
pub struct Report {
    format: OutFormat,
    rows: Rows,
    pos: usize,
    started: bool,
    done: bool,
    stats: Option<AggStats>,
    /// Diff: the old dump's stats.
    stats_old: Option<AggStats>,
}

impl Report {
    /// The groups of `t` in `order` (see [`OwnerTable::order`]), at most `top`.
    pub fn groups(
        t: &OwnerTable,
        format: OutFormat,
        mut order: Vec<u32>,
        top: Option<usize>,
        stats: AggStats,
    ) -> Report {
        let rows = if format == OutFormat::Folded {
            Rows::Folded(folded(t, &order, top))
        } else {
            if let Some(n) = top {
                order.truncate(n);
            }
            Rows::Groups(order)
        };
        Report {
            format,
            rows,
            pos: 0,
            started: false,
            done: false,
            stats: Some(stats),
            stats_old: None,
        }
    }

    /// A leak diff (`format`: `Sort` for text, `Json`).
    pub fn diff(
        mut rows: Vec<DiffRow>,
        format: OutFormat,
        top: Option<usize>,
        old: AggStats,
        new: AggStats,
    ) -> Report {
        if let Some(n) = top {
            rows.truncate(n);
        }
        Report {
            format,
            rows: Rows::Diff(rows),
            pos: 0,
            started: false,
            done: false,
            stats: Some(new),
            stats_old: Some(old),
        }
    }

    /// Append output to `out` until it holds `limit` bytes or the report is
    /// complete; true when complete. `t` is the table (the new one for a
    /// diff), `old` the old table of a diff.
    pub fn fill(
        &mut self,
        t: &OwnerTable,
        old: Option<&OwnerTable>,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> bool {
        if self.done {
            return true;
        }
        let json = self.format == OutFormat::Json;
        if !self.started {
            self.started = true;
            if json {
                out.extend_from_slice(match self.rows {
                    Rows::Diff(_) => b"{\"diff\": [",
                    _ => b"{\"groups\": [",
                });
            }
        }
        let n = match &self.rows {
            Rows::Groups(v) => v.len(),
            Rows::Folded(v) => v.len(),
            Rows::Diff(v) => v.len(),
        };
        let mut buf = Vec::new();
        while self.pos < n {
            if out.len() >= limit {
                return false;
            }
            let i = self.pos;
            if json {
                out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            }
            match &self.rows {
                Rows::Groups(v) => {
                    let g = v[i];
                    match self.format {
                        OutFormat::Sort => put_sort(out, t, g),
                        OutFormat::Classic => put_classic(out, t, g),
                        OutFormat::Json => put_json_group(out, t, g, &mut buf),
                        OutFormat::Folded => unreachable!(),
                    }
                }
                Rows::Folded(v) => {
                    let (k, p) = &v[i];
                    out.extend_from_slice(k);
                    out.push(b' ');
                    put_dec(out, *p);
                    out.push(b'\n');
                }
                Rows::Diff(v) => {
                    let old = old.expect("a diff renders two tables");
                    put_diff(out, t, old, &v[i], json, &mut buf);
                }
            }
            self.pos += 1;
        }
        if json {
            out.extend_from_slice(if n == 0 { b"]" } else { b"\n]" });
            if let Some(o) = &self.stats_old {
                out.extend_from_slice(b", \"stats_old\": ");
                put_json_stats(out, o);
                out.extend_from_slice(b", \"stats_new\": ");
            } else {
                out.extend_from_slice(b", \"stats\": ");
            }
            put_json_stats(out, self.stats.as_ref().unwrap());
            out.extend_from_slice(b"}\n");
        }
        self.done = true;
        true
    }
}

fn put_allocator(out: &mut Vec<u8>, t: &OwnerTable, r: &Rec) {
    out.extend_from_slice(b"allocated by ");
    out.extend_from_slice(t.allocator(r).name().as_bytes());
    out.push(b' ');
}

/// The whole record text of `r`: header, stack and kept optional lines.
fn put_text(out: &mut Vec<u8>, t: &OwnerTable, r: &Rec) {
    if r.tpl != NONE {
        t.put_header(out, r);
        out.push(b'\n');
    }
    out.extend_from_slice(t.stack_text(r));
}

/// The `N times, P pages` line and the culled/filtered fields (no newline).
fn put_sort_head(out: &mut Vec<u8>, t: &OwnerTable, r: &Rec, count: u64, pages: u64) {
    put_dec(out, count);
    out.extend_from_slice(b" times, ");
    put_dec(out, pages);
    out.extend_from_slice(b" pages");
    let c = t.cull();
    let f = t.filter();
    if c == 0 {
        out.extend_from_slice(b", ");
        put_allocator(out, t, r);
        out.push(b':');
        return;
    }
    if c & cull::PID != 0 || f.pids.is_some() {
        out.extend_from_slice(b", PID ");
        put_int(out, r.pid);
    }
    if c & cull::TGID != 0 || f.tgids.is_some() {
        out.extend_from_slice(b", TGID ");
        put_int(out, r.tgid);
    }
    if c & cull::NAME != 0 || f.names.is_some() {
        out.extend_from_slice(b", task_comm_name: ");
        out.extend_from_slice(t.comm(r).unwrap_or(b""));
    }
    if c & cull::ALLOCATOR != 0 {
        out.extend_from_slice(b", ");
        put_allocator(out, t, r);
    }
    if c & cull::STACKTRACE != 0 {
        out.push(b':');
    }
}

/// The record body after the head line, as page_owner_sort prints it.
fn put_sort_body(out: &mut Vec<u8>, t: &OwnerTable, r: &Rec) {
    let c = t.cull();
    if c == 0 {
        out.push(b'\n');
        put_text(out, t, r);
        out.push(b'\n');
    } else {
        if c & cull::STACKTRACE != 0 {
            out.push(b'\n');
            out.extend_from_slice(t.stack_text(r));
        }
        out.push(b'\n');
    }
}

fn put_sort(out: &mut Vec<u8>, t: &OwnerTable, g: u32) {
    let s = t.slot(g);
    put_sort_head(out, t, &s.rec, s.count, s.pages);
    put_sort_body(out, t, &s.rec);
}

fn put_classic(out: &mut Vec<u8>, t: &OwnerTable, g: u32) {
    let s = t.slot(g);
    put_dec(out, s.count);
    out.extend_from_slice(b" times:\n");
    put_text(out, t, &s.rec);
    out.push(b'\n');
}

/// Is this a stack frame line (not one of the optional lines)?
fn is_frame(l: &[u8]) -> bool {
    matches!(l.first(), Some(b' ' | b'\t' | b'['))
}

/// The function name of a frame line: `[<addr>]` prefix, `+off` and ` [module]` removed.
pub(crate) fn frame_symbol(l: &[u8]) -> &[u8] {
    let mut s = l.trim_ascii();
    if s.first() == Some(&b'[') {
        if let Some(e) = s.iter().position(|&c| c == b']') {
            s = s[e + 1..].trim_ascii();
        }
    }
    if let Some(i) = s.windows(2).position(|w| w == b" [") {
        s = &s[..i];
    }
    match s.iter().position(|&c| c == b'+') {
        Some(p) if p > 0 => &s[..p],
        _ => s,
    }
}

/// Folded stacks of the groups in `order`: pages summed per stack of
/// symbols (root first, `;`-joined), most pages first, then by text.
fn folded(t: &OwnerTable, order: &[u32], top: Option<usize>) -> Vec<(Vec<u8>, u64)> {
    let mut key_of: HashMap<u32, usize> = HashMap::new();
    let mut acc: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut by_key: HashMap<Vec<u8>, usize> = HashMap::new();
    for &g in order {
        let s = t.slot(g);
        let ki = match key_of.get(&s.rec.stack) {
            Some(&k) => k,
            None => {
                let syms: Vec<&[u8]> = t
                    .stack_text(&s.rec)
                    .split(|&c| c == b'\n')
                    .filter(|l| is_frame(l))
                    .map(frame_symbol)
                    .collect();
                let mut k = Vec::new();
                if syms.is_empty() {
                    k.extend_from_slice(b"[no stack]");
                }
                for (j, sym) in syms.iter().rev().enumerate() {
                    if j > 0 {
                        k.push(b';');
                    }
                    k.extend_from_slice(sym);
                }
                let n = acc.len();
                let ki = *by_key.entry(k.clone()).or_insert(n);
                if ki == n {
                    acc.push((k, 0));
                }
                key_of.insert(s.rec.stack, ki);
                ki
            }
        };
        acc[ki].1 += s.pages;
    }
    acc.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if let Some(n) = top {
        acc.truncate(n);
    }
    acc
}

// ---- JSON ---------------------------------------------------------------------

fn put_json_str(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    for ch in String::from_utf8_lossy(b).chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn put_json_opt(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(v) => put_int(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

fn put_json_stats(out: &mut Vec<u8>, s: &AggStats) {
    let fields: [(&str, u64); 9] = [
        ("bytes", s.bytes),
        ("lines", s.lines),
        ("records", s.records),
        ("groups", s.groups),
        ("skipped", s.skipped),
        ("records_2005", s.records_2005),
        ("records_modern", s.records_modern),
        ("records_stacks", s.records_stacks),
        ("filtered", s.filtered),
    ];
    out.push(b'{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        put_json_str(out, k.as_bytes());
        out.extend_from_slice(b": ");
        put_dec(out, *v);
    }
    out.push(b'}');
}

/// The fields of a group as JSON members (no braces): count, pages, order,
/// mask, pid, tgid, comm, allocator, first_ts, header, stack, symbols, extra.
fn put_json_fields(out: &mut Vec<u8>, t: &OwnerTable, g: u32, buf: &mut Vec<u8>) {
    let grp = t.group(g);
    out.extend_from_slice(b"\"count\": ");
    put_dec(out, grp.count);
    out.extend_from_slice(b", \"pages\": ");
    put_dec(out, grp.pages);
    out.extend_from_slice(b", \"order\": ");
    put_dec(out, grp.order as u64);
    out.extend_from_slice(b", \"mask\": ");
    put_json_opt(out, grp.mask.map(|m| m as i64));
    out.extend_from_slice(b", \"pid\": ");
    put_json_opt(out, grp.pid);
    out.extend_from_slice(b", \"tgid\": ");
    put_json_opt(out, grp.tgid);
    out.extend_from_slice(b", \"comm\": ");
    match &grp.comm {
        Some(c) => put_json_str(out, c.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b", \"allocator\": ");
    put_json_str(out, grp.allocator.name().as_bytes());
    out.extend_from_slice(b", \"first_ts\": ");
    put_json_opt(out, grp.first_ts.map(|v| v as i64));
    out.extend_from_slice(b", \"header\": ");
    let h = &grp.text[..grp.header_len.saturating_sub(1)];
    put_json_str(out, h);
    let body = grp.stack_text();
    for (name, frames) in [("stack", true), ("symbols", true), ("extra", false)] {
        out.extend_from_slice(b", \"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\": [");
        let mut first = true;
        for l in body.split(|&c| c == b'\n') {
            if l.is_empty() || is_frame(l) != frames {
                continue;
            }
            if !first {
                out.extend_from_slice(b", ");
            }
            first = false;
            buf.clear();
            buf.extend_from_slice(if name == "symbols" {
                frame_symbol(l)
            } else {
                l.trim_ascii()
            });
            put_json_str(out, buf);
        }
        out.push(b']');
    }
}

fn put_json_group(out: &mut Vec<u8>, t: &OwnerTable, g: u32, buf: &mut Vec<u8>) {
    out.push(b'{');
    put_json_fields(out, t, g, buf);
    out.push(b'}');
}

// ---- diff ---------------------------------------------------------------------

/// One diff row: `+D pages (B -> A), CB -> CA times`, the group's fields
/// as `page_owner_sort` prints them, then its stack or record; or the JSON object.
fn put_diff(
    out: &mut Vec<u8>,
    new: &OwnerTable,
    old: &OwnerTable,
    d: &DiffRow,
    json: bool,
    buf: &mut Vec<u8>,
) {
    let (t, g) = if d.new != NONE {
        (new, d.new)
    } else {
        (old, d.old)
    };
    if json {
        out.extend_from_slice(b"{\"delta\": ");
        put_int(out, d.delta());
        out.extend_from_slice(b", \"before\": ");
        put_dec(out, d.pages_before);
        out.extend_from_slice(b", \"after\": ");
        put_dec(out, d.pages_after);
        out.extend_from_slice(b", \"count_before\": ");
        put_dec(out, d.count_before);
        out.extend_from_slice(b", \"count_after\": ");
        put_dec(out, d.count_after);
        out.extend_from_slice(b", ");
        put_json_fields(out, t, g, buf);
        out.push(b'}');
        return;
    }
    let r = t.slot(g).rec;
    let delta = d.delta();
    if delta >= 0 {
        out.push(b'+');
    }
    put_int(out, delta);
    out.extend_from_slice(b" pages (");
    put_dec(out, d.pages_before);
    out.extend_from_slice(b" -> ");
    put_dec(out, d.pages_after);
    out.extend_from_slice(b"), ");
    put_dec(out, d.count_before);
    out.extend_from_slice(b" -> ");
    put_dec(out, d.count_after);
    out.extend_from_slice(b" times");
    // the group's fields as page_owner_sort's head line has them, without its counts
    buf.clear();
    put_sort_head(buf, t, &r, 0, 0);
    out.extend_from_slice(&buf[b"0 times, 0 pages".len()..]);
    put_sort_body(out, t, &r);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_owner::parse::aggregate_bytes;
    use crate::page_owner::table::{diff, Filter};
    use crate::page_owner::Aggregator;

    const A: &str = "Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid 5, tgid 5 (bash), ts 1 ns\n a+0x1/0x2\n\n";
    const B: &str = "Page allocated via order 1, mask 0xcc0(GFP_KERNEL), pid 6, tgid 6 (cc1), ts 2 ns\n kmem_cache_alloc+0x1/0x2\n\n";

    fn render(a: &Aggregator, format: OutFormat) -> String {
        let t = a.table();
        let mut r = Report::groups(
            t,
            format,
            t.order(&[(crate::page_owner::SortKey::Times, true)]),
            None,
            a.stats(),
        );
        let mut out = Vec::new();
        loop {
            let limit = out.len() + 16;
            if r.fill(t, None, &mut out, limit) {
                break;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sort_classic_folded_exact() {
        let a = aggregate_bytes(format!("{A}{B}{A}").as_bytes(), false).unwrap();
        assert_eq!(
            render(&a, OutFormat::Sort),
            "2 times, 2 pages, allocated by OTHERS :\n\
             Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid 5, tgid 5 (bash)\n a+0x1/0x2\n\n\
             1 times, 2 pages, allocated by SLAB :\n\
             Page allocated via order 1, mask 0xcc0(GFP_KERNEL), pid 6, tgid 6 (cc1)\n kmem_cache_alloc+0x1/0x2\n\n"
        );
        assert!(render(&a, OutFormat::Classic).starts_with("2 times:\nPage allocated via order 0"));
        assert_eq!(render(&a, OutFormat::Folded), "a 2\nkmem_cache_alloc 2\n");
        let mut c = Aggregator::with(
            false,
            cull::PID | cull::ALLOCATOR | cull::STACKTRACE,
            Filter::default(),
        );
        c.feed(format!("{A}{B}{A}").as_bytes()).unwrap();
        c.finish().unwrap();
        assert_eq!(
            render(&c, OutFormat::Sort),
            "2 times, 2 pages, PID 5, allocated by OTHERS :\n a+0x1/0x2\n\n\
             1 times, 2 pages, PID 6, allocated by SLAB :\n kmem_cache_alloc+0x1/0x2\n\n"
        );
    }

    #[test]
    fn diff_text_exact() {
        let mk = |s: &str| {
            let mut a = Aggregator::with(false, cull::STACKTRACE, Filter::default());
            a.feed(s.as_bytes()).unwrap();
            a.finish().unwrap();
            a
        };
        let (old, new) = (mk(&format!("{A}{B}")), mk(&format!("{A}{A}{A}")));
        let rows = diff(old.table(), new.table());
        let mut r = Report::diff(rows, OutFormat::Sort, None, old.stats(), new.stats());
        let mut out = Vec::new();
        r.fill(new.table(), Some(old.table()), &mut out, usize::MAX);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+2 pages (1 -> 3), 1 -> 3 times:\n a+0x1/0x2\n\n\
             -2 pages (2 -> 0), 1 -> 0 times:\n kmem_cache_alloc+0x1/0x2\n\n"
        );
    }
}
