//! The streaming parser of page_owner dump text (`page_owner_sort`'s
//! `read_block` / `add_list`), filling a `GroupTable` of [`super::sort`].
//!
//! Reads the 2005 `/proc/page_owner` format, today's
//! `/sys/kernel/debug/page_owner` format, and what real kernels print in
//! between (decimal or hex PFN lines, `[<addr>]` prefixes, module suffixes,
//! `free_ts`, the optional migrate / slab / memcg lines), fed in chunks of any
//! size from any source: nothing depends on knowing the input's size, and
//! memory grows only with the number of *distinct* records (plus one line).
//!
//! Records are blank-line separated. Identical records are merged; by default
//! the per-record parts, the `ts`/`free_ts` fields, the `PFN` line and the
//! "Page has been migrated" line, are left out of the comparison (every record
//! was unique otherwise, the 2023 complaint about page_owner_sort).
//!
//! Bad input (binary garbage, enormous lines or records, unknown formats,
//! missing fields, a truncated last record) is an [`Error::Parse`] naming the
//! line; in lenient mode the bad record is skipped and counted instead.
//!
//! The module by concept:
//! - this file: the [`Aggregator`] (the line and record state machine);
//! - `header`: the fields of a header line (mask, pid, tgid, comm);
//! - `file`: the entry points: [`aggregate_bytes`] (a whole buffer) and
//!   [`aggregate_file`], reading a file in parts on several threads and
//!   folding the parts together;
//! - `tests`: the unit tests.

use super::scan::{find_newline, first_control};
use super::sort::Group;
use super::table::{Filter, OwnerTable, Rec, NONE, NO_ID};
use crate::error::{Error, Result};

mod file;
mod header;
#[cfg(test)]
mod tests;

pub use file::{aggregate_bytes, aggregate_file, aggregate_open_file, PARALLEL_MIN, READ_CHUNK};
use header::{id_field, parse_header_fields};

/// Longest line accepted.
pub const MAX_LINE: usize = 64 * 1024;
/// Largest record accepted (normalised text).
pub const MAX_RECORD: usize = 1 << 20;
/// Error messages kept in lenient mode.
pub const MAX_ERRORS_KEPT: usize = 20;

const HEADER: &[u8] = b"Page allocated via order ";

/// Counters of an aggregation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggStats {
    pub bytes: u64,
    pub lines: u64,
    pub records: u64,
    pub groups: u64,
    /// Records skipped as malformed (lenient mode).
    pub skipped: u64,
    /// Records in the 2005 format (no PFN line) and in the modern one.
    pub records_2005: u64,
    pub records_modern: u64,
    /// `show_stacks` records (frames and `nr_base_pages`, no header).
    pub records_stacks: u64,
    /// Records the `--pid/--tgid/--name` filters left out.
    pub filtered: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records.
    Idle,
    /// Inside a good record.
    Record,
    /// Inside a record being skipped (lenient) until the next blank line.
    Skip,
}

/// The streaming aggregator: [`Aggregator::feed`] chunks, then [`Aggregator::finish`].
pub struct Aggregator {
    lenient: bool,
    carry: Vec<u8>,
    /// Lenient: dropping the rest of an over-long line.
    skip_line: bool,
    state: State,
    scratch: Vec<u8>,
    rec_order: u32,
    rec_ts: Option<u64>,
    rec_pfn_line: bool,
    rec_line: u64,
    rec_header_len: usize,
    rec_frames: u32,
    /// `show_stacks` record (no header): its `nr_base_pages`.
    rec_nr_pages: Option<u64>,
    /// `show_handles` / `show_stacks_handles` record: its `handle:`.
    rec_handle: Option<i64>,
    /// The header cut down to its template.
    tpl: Vec<u8>,
    table: OwnerTable,
    stats: AggStats,
    errors: Vec<String>,
    finished: bool,
}

impl Aggregator {
    /// An aggregator that stops at the first bad record, or skips and counts bad records (`lenient`).
    pub fn new(lenient: bool) -> Aggregator {
        Aggregator::with(lenient, 0, Filter::default())
    }

    /// An aggregator that folds records on the `cull` fields (bits of
    /// [`super::table::cull`]; 0: the whole record) and keeps those `filter` passes.
    pub fn with(lenient: bool, cull: u8, filter: Filter) -> Aggregator {
        Aggregator {
            lenient,
            carry: Vec::new(),
            skip_line: false,
            state: State::Idle,
            scratch: Vec::with_capacity(4096),
            rec_order: 0,
            rec_ts: None,
            rec_pfn_line: false,
            rec_line: 0,
            rec_header_len: 0,
            rec_frames: 0,
            rec_nr_pages: None,
            rec_handle: None,
            tpl: Vec::with_capacity(256),
            table: OwnerTable::new(cull, filter),
            stats: AggStats::default(),
            errors: Vec::new(),
            finished: false,
        }
    }

    /// The groups so far, in order of first appearance.
    pub fn groups(&self) -> Vec<Group> {
        self.table.groups()
    }

    /// Whether bad records are skipped rather than errors.
    pub fn lenient(&self) -> bool {
        self.lenient
    }

    /// The keyed table of groups.
    pub fn table(&self) -> &OwnerTable {
        &self.table
    }

    /// The table of groups, taken out of the aggregator.
    pub fn into_table(self) -> OwnerTable {
        self.table
    }

    /// The counters so far.
    pub fn stats(&self) -> AggStats {
        let mut s = self.stats.clone();
        s.groups = self.table.len() as u64;
        s.filtered = self.table.filtered;
        s
    }

    /// Messages of the records skipped in lenient mode (the first few).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Memory held, in bytes (distinct records, index, carried partial line).
    pub fn memory(&self) -> u64 {
        self.table.memory()
            + (self.carry.capacity() + self.scratch.capacity() + self.tpl.capacity()) as u64
    }

    /// A bad record: an error (strict) or skipped and counted (lenient).
    fn bad(&mut self, line: u64, msg: String) -> Result<()> {
        let msg = format!("line {line}: {msg}");
        if !self.lenient {
            return Err(Error::Parse(msg));
        }
        if self.state != State::Skip {
            self.stats.skipped += 1;
            if self.errors.len() < MAX_ERRORS_KEPT {
                self.errors.push(msg);
            }
        }
        self.state = State::Skip;
        Ok(())
    }

    /// Feed the next bytes of the input.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<()> {
        if self.finished {
            return Err(Error::Parse("aggregator already finished".into()));
        }
        self.stats.bytes += chunk.len() as u64;
        let mut b = chunk;
        if self.skip_line || !self.carry.is_empty() {
            match b.iter().position(|&c| c == b'\n') {
                Some(i) => {
                    if self.skip_line {
                        self.skip_line = false;
                        self.stats.lines += 1;
                    } else {
                        let mut c = std::mem::take(&mut self.carry);
                        c.extend_from_slice(&b[..i]);
                        let r = self.line(&c);
                        c.clear();
                        self.carry = c;
                        r?;
                    }
                    b = &b[i + 1..];
                }
                None => {
                    if !self.skip_line {
                        self.carry.extend_from_slice(b);
                        self.check_carry()?;
                    }
                    return Ok(());
                }
            }
        }
        let mut pos = 0;
        while pos < b.len() {
            // one pass finds the end of a clean line (its first control byte is its newline)
            if let Some(i) = first_control(&b[pos..]) {
                if b[pos + i] == b'\n' && i <= MAX_LINE {
                    self.clean_line(&b[pos..pos + i])?;
                    pos += i + 1;
                    continue;
                }
            }
            match find_newline(&b[pos..]) {
                Some(i) => {
                    self.line(&b[pos..pos + i])?;
                    pos += i + 1;
                }
                None => {
                    self.carry.extend_from_slice(&b[pos..]);
                    self.check_carry()?;
                    break;
                }
            }
        }
        Ok(())
    }

    /// A carried partial line over [`MAX_LINE`] is a bad record; the rest of that line is dropped.
    fn check_carry(&mut self) -> Result<()> {
        if self.carry.len() > MAX_LINE {
            let line = self.stats.lines + 1;
            self.carry = Vec::new();
            self.bad(line, format!("line longer than {MAX_LINE} bytes"))?;
            self.skip_line = true;
        }
        Ok(())
    }

    /// End of input: a partial line or an unterminated record is a truncation.
    pub fn finish(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if self.skip_line {
            self.skip_line = false;
            self.stats.lines += 1;
        }
        if !self.carry.is_empty() {
            let line = self.stats.lines + 1;
            self.carry = Vec::new();
            if self.state == State::Skip {
                return Ok(());
            }
            self.state = State::Record;
            return self.bad(
                line,
                "truncated record: input ends in the middle of a line".into(),
            );
        }
        match self.state {
            State::Record => {
                let line = self.rec_line;
                self.bad(
                    line,
                    "truncated record: input ends before the blank line that closes the record starting here".into(),
                )
            }
            _ => Ok(()),
        }
    }

    /// One line (without its newline): a blank line ends a record, the first line of one is its header.
    #[inline]
    fn line(&mut self, raw: &[u8]) -> Result<()> {
        self.stats.lines += 1;
        let ln = self.stats.lines;
        let mut l = raw;
        if let [rest @ .., b'\r'] = l {
            l = rest;
        }
        if l.is_empty() {
            return self.end_record();
        }
        if l.len() > MAX_LINE {
            if self.state == State::Idle {
                self.state = State::Record;
                self.rec_line = ln;
            }
            return self.bad(ln, format!("line longer than {MAX_LINE} bytes"));
        }
        if let Some(i) = first_control(l) {
            if self.state == State::Idle {
                self.state = State::Record;
                self.rec_line = ln;
            }
            return self.bad(
                ln,
                format!("binary data (byte 0x{:02x} at column {})", l[i], i + 1),
            );
        }
        self.checked_line(l, ln)
    }

    /// A line known to hold no control byte and to be at most [`MAX_LINE`] long.
    #[inline]
    fn clean_line(&mut self, l: &[u8]) -> Result<()> {
        self.stats.lines += 1;
        if l.is_empty() {
            return self.end_record();
        }
        let ln = self.stats.lines;
        self.checked_line(l, ln)
    }

    #[inline]
    fn checked_line(&mut self, l: &[u8], ln: u64) -> Result<()> {
        match self.state {
            State::Skip => Ok(()),
            State::Idle => {
                self.rec_line = ln;
                self.state = State::Record;
                if l[0] == b' ' || l.starts_with(b"handle: ") {
                    // a `page_owner_stacks` record: frames and `nr_base_pages: N`
                    // (show_stacks), frames and `handle: H` (show_stacks_handles),
                    // or `handle: H` and `nr_base_pages: N` (show_handles)
                    self.start_record(0);
                    self.rec_header_len = 0;
                    return self.body_line(l, ln);
                }
                self.header(l, ln)
            }
            State::Record => self.body_line(l, ln),
        }
    }

    /// The `Page allocated via order N...` line: the order, `ts`, and the header kept for the group.
    fn header(&mut self, l: &[u8], ln: u64) -> Result<()> {
        let Some(rest) = l.strip_prefix(HEADER) else {
            let shown = String::from_utf8_lossy(&l[..l.len().min(60)]).into_owned();
            return self.bad(
                ln,
                format!("unknown format: a record must start with \"Page allocated via order N\", got {shown:?}"),
            );
        };
        let nd = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if nd == 0 || nd > 2 {
            return self.bad(
                ln,
                "missing or bad order in \"Page allocated via order N\"".into(),
            );
        }
        let order: u32 = std::str::from_utf8(&rest[..nd]).unwrap().parse().unwrap();
        if order > 30 {
            return self.bad(ln, format!("order {order} is out of range 0..30"));
        }
        self.start_record(order);
        // copy the header without its per-record fields
        let mut s = 0;
        let mut from = 0;
        while let Some(k) = memchr::memchr(b',', &l[from..]) {
            let i = from + k;
            let tail = &l[i..];
            let (key_len, is_ts) = if tail.starts_with(b", ts ") {
                (5, true)
            } else if tail.starts_with(b", free_ts ") {
                (10, false)
            } else {
                from = i + 1;
                continue;
            };
            let digits = tail[key_len..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let end = key_len + digits;
            if digits == 0 || digits > 20 || !tail[end..].starts_with(b" ns") {
                return self.bad(ln, "malformed ts field (expected \", ts <N> ns\")".into());
            }
            if is_ts {
                let v = tail[key_len..end].iter().try_fold(0u64, |v, &c| {
                    v.checked_mul(10)?.checked_add((c - b'0') as u64)
                });
                match v {
                    Some(v) => self.rec_ts = Some(v),
                    None => return self.bad(ln, "ts value out of range".into()),
                }
            }
            self.scratch.extend_from_slice(&l[s..i]);
            from = i + end + 3;
            s = from;
        }
        self.scratch.extend_from_slice(&l[s..]);
        self.scratch.push(b'\n');
        self.rec_header_len = self.scratch.len();
        Ok(())
    }

    fn start_record(&mut self, order: u32) {
        self.rec_order = order;
        self.rec_pfn_line = false;
        self.rec_frames = 0;
        self.rec_ts = None;
        self.rec_nr_pages = None;
        self.rec_handle = None;
        self.scratch.clear();
    }

    /// A line inside a record: a stack frame, the PFN line, or one of the optional lines.
    fn body_line(&mut self, l: &[u8], ln: u64) -> Result<()> {
        if self.rec_nr_pages.is_some() {
            return self.bad(
                ln,
                "unexpected line after nr_base_pages (a show_stacks record ends there)".into(),
            );
        }
        match l[0] {
            b' ' | b'\t' | b'[' => {
                if self.rec_handle.is_some() {
                    return self.bad(
                        ln,
                        "unexpected stack line after handle (the frames come first)".into(),
                    );
                }
                if self.scratch.len() + l.len() + 1 > MAX_RECORD {
                    return self.bad(ln, format!("record longer than {MAX_RECORD} bytes"));
                }
                self.scratch.extend_from_slice(l);
                self.scratch.push(b'\n');
                self.rec_frames += 1;
                Ok(())
            }
            b'P' if l.starts_with(b"PFN") => {
                if self.rec_pfn_line || self.rec_frames > 0 {
                    return self.bad(
                        ln,
                        "unexpected PFN line (one per record, before the stack)".into(),
                    );
                }
                let r = l.strip_prefix(b"PFN ").unwrap_or(b"");
                let hex = r.starts_with(b"0x");
                let digits = if hex {
                    r[2..].iter().take_while(|c| c.is_ascii_hexdigit()).count()
                } else {
                    r.iter().take_while(|c| c.is_ascii_digit()).count()
                };
                let end = digits + if hex { 2 } else { 0 };
                if digits == 0 || digits > 16 || (end < r.len() && r[end] != b' ') {
                    return self.bad(
                        ln,
                        "malformed PFN line (expected \"PFN <number> type ...\")".into(),
                    );
                }
                self.rec_pfn_line = true;
                Ok(())
            }
            b'n' if self.rec_header_len == 0 && l.starts_with(b"nr_base_pages: ") => {
                let d = &l[15..];
                let ok = !d.is_empty() && d.len() <= 19 && d.iter().all(|c| c.is_ascii_digit());
                if !ok {
                    return self.bad(
                        ln,
                        "malformed nr_base_pages line (expected \"nr_base_pages: <N>\")".into(),
                    );
                }
                self.rec_nr_pages = Some(std::str::from_utf8(d).unwrap().parse().unwrap());
                Ok(())
            }
            b'h' if self.rec_header_len == 0 && l.starts_with(b"handle: ") => {
                let d = &l[8..];
                let digits = d.strip_prefix(b"-").unwrap_or(d);
                let ok = !digits.is_empty()
                    && digits.len() <= 10
                    && digits.iter().all(|c| c.is_ascii_digit())
                    && self.rec_handle.is_none();
                if !ok {
                    return self.bad(
                        ln,
                        "malformed handle line (expected one \"handle: <N>\")".into(),
                    );
                }
                self.rec_handle = Some(std::str::from_utf8(d).unwrap().parse().unwrap());
                Ok(())
            }
            _ if self.rec_header_len == 0 => {
                let shown = String::from_utf8_lossy(&l[..l.len().min(60)]).into_owned();
                self.bad(
                    ln,
                    format!("unexpected line in a show_stacks record: {shown:?}"),
                )
            }
            _ if l.starts_with(b"Page has been migrated") => Ok(()),
            _ if l.starts_with(b"Charged") || l.starts_with(b"Slab cache page") => {
                self.scratch.extend_from_slice(l);
                self.scratch.push(b'\n');
                Ok(())
            }
            _ if l.starts_with(HEADER) => self.bad(
                ln,
                "a new record starts before the blank line that ends the previous one".into(),
            ),
            _ => {
                let shown = String::from_utf8_lossy(&l[..l.len().min(60)]).into_owned();
                self.bad(ln, format!("unexpected line in a record: {shown:?}"))
            }
        }
    }

    /// The blank line after a record: count it into its group.
    fn end_record(&mut self) -> Result<()> {
        match self.state {
            State::Idle => Ok(()),
            State::Skip => {
                self.state = State::Idle;
                Ok(())
            }
            State::Record => {
                if self.rec_header_len == 0 {
                    return self.end_stacks_record();
                }
                let pages = 1u64 << self.rec_order;
                self.fold_record(1, pages)
            }
        }
    }

    /// `count` records holding `pages` base pages whose header (without ts)
    /// and stack lines the engine rendered, folded as a parsed record is:
    /// how a live machine's groups get the table a dump's would.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fold_rendered(
        &mut self,
        header: &[u8],
        stack: &[u8],
        order: u32,
        modern: bool,
        count: u64,
        pages: u64,
        ts: Option<u64>,
    ) -> Result<()> {
        self.start_record(order);
        self.scratch.extend_from_slice(header);
        self.scratch.push(b'\n');
        self.rec_header_len = self.scratch.len();
        self.scratch.extend_from_slice(stack);
        self.rec_frames = stack.iter().filter(|&&b| b == b'\n').count() as u32;
        self.rec_ts = ts;
        self.rec_pfn_line = modern;
        self.state = State::Record;
        self.fold_record(count, pages)
    }

    /// The record in `scratch` (header without ts, stack and kept lines):
    /// its template and stack interned, `count` records of it holding
    /// `pages` base pages folded into its group.
    fn fold_record(&mut self, count: u64, pages: u64) -> Result<()> {
        let ln = self.rec_line;
        // the template: the header without ts, pid and tgid digits cut out
        let hdr_end = self.rec_header_len - 1;
        let (pid, pid_span) = id_field(&self.scratch[..hdr_end], b", pid ");
        let (tgid, tgid_span) = id_field(&self.scratch[..hdr_end], b", tgid ");
        self.tpl.clear();
        let (mut pid_at, mut tgid_at) = (NONE, NONE);
        let mut at = 0;
        if let Some((s, e)) = pid_span {
            self.tpl.extend_from_slice(&self.scratch[..s]);
            pid_at = self.tpl.len() as u32;
            at = e;
        }
        if let Some((s, e)) = tgid_span.filter(|&(s, _)| s >= at) {
            self.tpl.extend_from_slice(&self.scratch[at..s]);
            tgid_at = self.tpl.len() as u32;
            at = e;
        }
        self.tpl.extend_from_slice(&self.scratch[at..hdr_end]);
        let tpl = match self.table.tpl_id(&self.tpl, pid_at, tgid_at) {
            Some(t) => t,
            None => match parse_header_fields(&self.scratch[..hdr_end]) {
                Ok(f) => {
                    let comm = f.comm.as_ref().map(|c| c.as_bytes());
                    let t = std::mem::take(&mut self.tpl);
                    let id = self
                        .table
                        .add_tpl(&t, pid_at, tgid_at, self.rec_order, f.mask, comm);
                    self.tpl = t;
                    id
                }
                Err(msg) => {
                    self.bad(ln, msg)?;
                    self.state = State::Idle;
                    return Ok(());
                }
            },
        };
        self.state = State::Idle;
        self.stats.records += count;
        if self.rec_pfn_line {
            self.stats.records_modern += count;
        } else {
            self.stats.records_2005 += count;
        }
        let stack = self
            .table
            .intern_stack(&self.scratch[self.rec_header_len..], self.rec_frames);
        let rec = Rec {
            tpl,
            stack,
            pid: pid.unwrap_or(NO_ID),
            tgid: tgid.unwrap_or(NO_ID),
        };
        self.table.fold(rec, count, pages, self.rec_ts);
        Ok(())
    }

    /// The blank line after a `page_owner_stacks` record. `show_stacks`: its
    /// stack holding `nr_base_pages`. `show_stacks_handles`: the stack of a
    /// handle, known from now on, as a group of no records and no pages.
    /// `show_handles`: one record of the handle's stack (if a
    /// `show_stacks_handles` record named it before) or of a `handle: H`
    /// line standing for it, holding `nr_base_pages`.
    fn end_stacks_record(&mut self) -> Result<()> {
        let ln = self.rec_line;
        let (count, pages, stack) = match (self.rec_handle, self.rec_nr_pages) {
            (None, None) => {
                return self.bad(
                    ln,
                    "a stack without a header or an nr_base_pages line (neither a page_owner record nor a page_owner_stacks entry)".into(),
                )
            }
            (Some(_), None) if self.rec_frames == 0 => {
                return self.bad(
                    ln,
                    "a handle line with neither frames nor nr_base_pages".into(),
                )
            }
            (None, Some(n)) => (1, n, self.table.intern_stack(&self.scratch, self.rec_frames)),
            (Some(h), None) => {
                let s = self.table.intern_stack(&self.scratch, self.rec_frames);
                self.table.set_handle_stack(h, s);
                (0, 0, s)
            }
            (Some(h), Some(n)) if self.rec_frames > 0 => {
                let s = self.table.intern_stack(&self.scratch, self.rec_frames);
                self.table.set_handle_stack(h, s);
                (1, n, s)
            }
            (Some(h), Some(n)) => (1, n, self.table.handle_stack(h)),
        };
        self.state = State::Idle;
        self.stats.records += 1;
        self.stats.records_stacks += 1;
        let rec = Rec {
            tpl: NONE,
            stack,
            pid: NO_ID,
            tgid: NO_ID,
        };
        self.table.fold(rec, count, pages, None);
        Ok(())
    }
}
