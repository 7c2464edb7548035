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

use super::scan::{find_newline, first_control};
use super::sort::{find, Group, RecordFields};
use super::table::{Filter, OwnerTable, Rec, NONE, NO_ID};
use crate::error::{Error, Result};

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
                if l[0] == b' ' {
                    // a `show_stacks` record: frames, then `nr_base_pages: N`
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
        let mut i = 0;
        while i < l.len() {
            if l[i] == b',' {
                let tail = &l[i..];
                let (key_len, is_ts) = if tail.starts_with(b", ts ") {
                    (5, true)
                } else if tail.starts_with(b", free_ts ") {
                    (10, false)
                } else {
                    i += 1;
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
                    let v = std::str::from_utf8(&tail[key_len..end])
                        .unwrap()
                        .parse::<u64>();
                    match v {
                        Ok(v) => self.rec_ts = Some(v),
                        Err(_) => return self.bad(ln, "ts value out of range".into()),
                    }
                }
                self.scratch.extend_from_slice(&l[s..i]);
                i += end + 3;
                s = i;
                continue;
            }
            i += 1;
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
                            let id = self.table.add_tpl(
                                &t,
                                pid_at,
                                tgid_at,
                                self.rec_order,
                                f.mask,
                                comm,
                            );
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
                self.stats.records += 1;
                if self.rec_pfn_line {
                    self.stats.records_modern += 1;
                } else {
                    self.stats.records_2005 += 1;
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
                self.table.fold(rec, 1, 1u64 << self.rec_order, self.rec_ts);
                Ok(())
            }
        }
    }

    /// The blank line after a `show_stacks` record: one record of its stack holding `nr_base_pages`.
    fn end_stacks_record(&mut self) -> Result<()> {
        let Some(pages) = self.rec_nr_pages else {
            let ln = self.rec_line;
            return self.bad(
                ln,
                "a stack without a header or an nr_base_pages line (neither a page_owner record nor a show_stacks entry)".into(),
            );
        };
        self.state = State::Idle;
        self.stats.records += 1;
        self.stats.records_stacks += 1;
        let stack = self.table.intern_stack(&self.scratch, self.rec_frames);
        let rec = Rec {
            tpl: NONE,
            stack,
            pid: NO_ID,
            tgid: NO_ID,
        };
        self.table.fold(rec, 1, pages, None);
        Ok(())
    }
}

/// The value and the span of the digits of an id field (`, pid 12`) of a
/// header; the span only when the digits are canonical (so printing the
/// value gives them back).
#[inline]
fn id_field(h: &[u8], key: &[u8]) -> (Option<i64>, Option<(usize, usize)>) {
    let mut from = 0;
    while let Some(k) = h[from..].iter().position(|&c| c == b',') {
        let i = from + k;
        if h[i..].starts_with(key) {
            let s = i + key.len();
            return match int_at(&h[s..]) {
                Some((v, n)) => {
                    let d = &h[s..s + n];
                    let canon = !(d.len() > 1 && (d[0] == b'0' || d.starts_with(b"-0")));
                    (Some(v), canon.then_some((s, s + n)))
                }
                None => (None, None),
            };
        }
        from = i + 1;
    }
    (None, None)
}

/// A decimal integer, optionally negative, at the start of `b`: (value, bytes taken).
fn int_at(b: &[u8]) -> Option<(i64, usize)> {
    let neg = b.first() == Some(&b'-');
    let s = neg as usize;
    let n = b[s..].iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 18 {
        return None;
    }
    let v: i64 = std::str::from_utf8(&b[s..s + n]).ok()?.parse().ok()?;
    Some((if neg { -v } else { v }, s + n))
}

/// mask, pid, tgid and comm of a (normalised) header line.
fn parse_header_fields(h: &[u8]) -> std::result::Result<RecordFields, String> {
    let mut f = RecordFields::default();
    if let Some(i) = find(h, b", mask ") {
        let r = &h[i + 7..];
        let (digits, skip) = if r.starts_with(b"0x") || r.starts_with(b"0X") {
            (
                r[2..].iter().take_while(|c| c.is_ascii_hexdigit()).count(),
                2,
            )
        } else {
            // "%#x" prints a zero mask as "0"
            (r.iter().take_while(|c| c.is_ascii_hexdigit()).count(), 0)
        };
        if digits == 0 || digits > 16 {
            return Err("malformed mask field (expected \", mask 0x<hex>\")".into());
        }
        f.mask = Some(
            u64::from_str_radix(std::str::from_utf8(&r[skip..skip + digits]).unwrap(), 16)
                .map_err(|_| "malformed mask value".to_string())?,
        );
    }
    if let Some(i) = find(h, b", pid ") {
        let (v, _) = int_at(&h[i + 6..]).ok_or("malformed pid field (expected \", pid <N>\")")?;
        f.pid = Some(v);
    }
    if let Some(i) = find(h, b", tgid ") {
        let r = &h[i + 7..];
        let (v, n) = int_at(r).ok_or("malformed tgid field (expected \", tgid <N> (<comm>)\")")?;
        f.tgid = Some(v);
        let r = &r[n..];
        if let Some(c) = r.strip_prefix(b" (") {
            // comm may itself contain ')': take up to the last ')' before the next field
            let end = c
                .iter()
                .rposition(|&x| x == b')')
                .ok_or("unterminated comm in tgid field")?;
            let mut e = end;
            if let Some(k) = find(&c[..end + 1], b"), ") {
                e = k;
            }
            f.comm = Some(String::from_utf8_lossy(&c[..e]).into_owned());
        }
    }
    Ok(f)
}

/// Bytes read at a time from a file.
pub const READ_CHUNK: usize = 4 << 20;
/// Files smaller than this are read on one thread.
pub const PARALLEL_MIN: u64 = 32 << 20;

impl Aggregator {
    /// Fold in the counters and groups of `o`, which read the input that follows this one's.
    fn absorb(&mut self, o: &Aggregator) {
        let (a, b) = (&mut self.stats, &o.stats);
        a.bytes += b.bytes;
        a.lines += b.lines;
        a.records += b.records;
        a.skipped += b.skipped;
        a.records_2005 += b.records_2005;
        a.records_modern += b.records_modern;
        a.records_stacks += b.records_stacks;
        self.table.absorb(&o.table);
    }

    /// Feed everything `read_at(offset, buf)` gives from `from` until it
    /// returns 0 (end of input) or `to` is reached.
    fn feed_range(
        &mut self,
        read_at: &(impl Fn(u64, &mut [u8]) -> std::io::Result<usize> + Sync),
        from: u64,
        to: Option<u64>,
    ) -> Result<()> {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut off = from;
        loop {
            let want = match to {
                Some(t) if t <= off => return Ok(()),
                Some(t) => ((t - off) as usize).min(READ_CHUNK),
                None => READ_CHUNK,
            };
            let n = read_at(off, &mut buf[..want])
                .map_err(|e| Error::Parse(format!("reading the page_owner text: {e}")))?;
            if n == 0 {
                return Ok(());
            }
            self.feed(&buf[..n])?;
            off += n as u64;
        }
    }
}

/// Aggregate a file of `size` bytes (a hint: reading goes on to the end of
/// input) read with `read_at`, on up to `threads` threads: the file is cut at
/// blank lines into one part per thread, each part aggregated on its own and
/// the parts folded together in order, which gives what one pass gives. A bad
/// record (or `lenient`) reads it again on one thread, for exact line numbers.
pub fn aggregate_file(
    read_at: impl Fn(u64, &mut [u8]) -> std::io::Result<usize> + Sync,
    size: u64,
    threads: usize,
    lenient: bool,
    cull: u8,
    filter: Filter,
) -> Result<Aggregator> {
    let sequential = |filter: Filter| -> Result<Aggregator> {
        let mut a = Aggregator::with(lenient, cull, filter);
        a.feed_range(&read_at, 0, None)?;
        a.finish()?;
        Ok(a)
    };
    if lenient || threads <= 1 || size < PARALLEL_MIN {
        return sequential(filter);
    }
    // part boundaries: just after the first blank line past each cut
    let mut bounds = vec![0u64];
    let mut win = vec![0u8; 1 << 20];
    for k in 1..threads as u64 {
        let cut = size * k / threads as u64;
        if cut <= *bounds.last().unwrap() {
            continue;
        }
        let n = read_at(cut, &mut win)
            .map_err(|e| Error::Parse(format!("reading the page_owner text: {e}")))?;
        if let Some(i) = win[..n].windows(2).position(|w| w == b"\n\n") {
            bounds.push(cut + i as u64 + 2);
        }
    }
    let parts = bounds.len();
    let results: Vec<Result<Aggregator>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..parts)
            .map(|p| {
                let from = bounds[p];
                let to = bounds.get(p + 1).copied();
                let read_at = &read_at;
                let filter = filter.clone();
                sc.spawn(move || -> Result<Aggregator> {
                    let mut a = Aggregator::with(false, cull, filter);
                    a.feed_range(read_at, from, to)?;
                    a.finish()?;
                    Ok(a)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Parse("an aggregation thread failed".into())))
            })
            .collect()
    });
    if results.iter().any(|r| r.is_err()) {
        return sequential(filter);
    }
    let mut it = results.into_iter().map(|r| r.unwrap());
    let mut first = it.next().expect("at least one part");
    for o in it {
        first.absorb(&o);
    }
    Ok(first)
}

/// Aggregate a whole buffer (tests and small inputs).
pub fn aggregate_bytes(b: &[u8], lenient: bool) -> Result<Aggregator> {
    let mut a = Aggregator::new(lenient);
    a.feed(b)?;
    a.finish()?;
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_owner::Allocator;
    use proptest::prelude::*;

    const R2005: &str = "Page allocated via order 0, mask 0x50\n\
        [0xc0146f01] kmem_getpages+49\n\
        [0xc014846d] cache_grow+173\n\n";
    const RMOD: &str = "Page allocated via order 1, mask 0x152800(GFP_NOWAIT|__GFP_NOWARN), pid 1, tgid 1 (systemd), ts 1234 ns\n\
        PFN 0x10040 type Unmovable Block 128 type Unmovable Flags 0x17ffffc0000000(node=0|zone=2)\n \
        post_alloc_hook+0x1d2/0x220\n \
        kmalloc_large+0x20/0x90 [xfs]\n\n";

    #[test]
    fn merges_ignoring_ts_and_pfn() {
        let other = RMOD.replace("ts 1234", "ts 99").replace("0x10040", "65600");
        let text = format!("{R2005}{RMOD}{R2005}\n\n{other}");
        let a = aggregate_bytes(text.as_bytes(), false).unwrap();
        let g = a.groups();
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].count, g[0].pages), (2, 2));
        assert_eq!((g[1].count, g[1].pages), (2, 4));
        assert_eq!(g[1].first_ts, Some(99));
        assert_eq!(g[1].pid, Some(1));
        assert_eq!(g[1].comm.as_deref(), Some("systemd"));
        assert_eq!(g[1].mask, Some(0x152800));
        assert_eq!(g[0].allocator, Allocator::Slab);
        assert_eq!(
            std::str::from_utf8(&g[1].text).unwrap(),
            "Page allocated via order 1, mask 0x152800(GFP_NOWAIT|__GFP_NOWARN), pid 1, tgid 1 (systemd)\n post_alloc_hook+0x1d2/0x220\n kmalloc_large+0x20/0x90 [xfs]\n"
        );
        let s = a.stats();
        assert_eq!(
            (s.records, s.records_2005, s.records_modern, s.lines),
            (4, 2, 2, 20)
        );
    }

    #[test]
    fn chunking_does_not_matter() {
        let text = format!("{R2005}{RMOD}").repeat(5);
        let whole = aggregate_bytes(text.as_bytes(), false).unwrap();
        for step in [1, 2, 3, 7, 64] {
            let mut a = Aggregator::new(false);
            for c in text.as_bytes().chunks(step) {
                a.feed(c).unwrap();
            }
            a.finish().unwrap();
            assert_eq!(a.groups(), whole.groups());
            assert_eq!(a.stats(), whole.stats());
        }
    }

    fn err(text: &[u8]) -> String {
        match aggregate_bytes(text, false) {
            Err(Error::Parse(m)) => m,
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!(
                "accepted bad input {:?}",
                String::from_utf8_lossy(&text[..text.len().min(80)])
            ),
        }
    }

    #[test]
    fn bad_inputs_name_the_line() {
        assert!(err(b"hello world\n\n").starts_with("line 1: unknown format"));
        let t = format!("{R2005}Page allocated via order 0\n[0x1] a+1\n");
        assert!(err(t.as_bytes()).starts_with("line 5: truncated record"));
        let t = format!("{R2005}Page allocated via order 0\n[0x1] a+");
        assert!(err(t.as_bytes()).starts_with("line 6: truncated"));
        let t = format!("{R2005}Page allocated via order 0\n\x00\x01\x02garbage\n\n");
        assert!(err(t.as_bytes()).starts_with("line 6: binary data"));
        let t = format!(
            "Page allocated via order 0\n[0x1] {}\n\n",
            "a".repeat(MAX_LINE + 10)
        );
        assert!(err(t.as_bytes()).starts_with("line 2: line longer than"));
        assert!(err(b"Page allocated via order x\n[0x1] a+1\n\n").contains("order"));
        assert!(err(b"Page allocated via order 0, mask zz\n[0x1] a+1\n\n").contains("mask"));
        assert!(err(b"Page allocated via order 0, pid x\n[0x1] a+1\n\n").contains("pid"));
        assert!(
            err(b"Page allocated via order 0\nPFN type Movable\n a+0x1/0x2\n\n").contains("PFN")
        );
        assert!(err(b"Page allocated via order 0, ts abc ns\n a+0x1/0x2\n\n").contains("ts"));
        assert!(
            err(b"Page allocated via order 0\n a\nPage allocated via order 0\n\n")
                .starts_with("line 3")
        );
        assert!(err(b"Page allocated via order 0\nrandom words\n\n").contains("unexpected line"));
    }

    #[test]
    fn lenient_skips_and_counts() {
        let t =
            format!("{R2005}junk\n\x01\n\n{R2005}Page allocated via order 0, pid x\n a\n\n{R2005}");
        let a = aggregate_bytes(t.as_bytes(), true).unwrap();
        assert_eq!(a.groups().len(), 1);
        assert_eq!(a.groups()[0].count, 3);
        assert_eq!(a.stats().skipped, 2);
        assert_eq!(a.errors().len(), 2);
        // an over-long line in lenient mode costs bounded memory
        let mut a = Aggregator::new(true);
        a.feed(b"Page allocated via order 0\n ").unwrap();
        for _ in 0..100 {
            a.feed(&[b'x'; 10000]).unwrap();
        }
        a.feed(b"\n\n").unwrap();
        a.feed(R2005.as_bytes()).unwrap();
        a.finish().unwrap();
        assert!(a.memory() < 200_000);
        assert_eq!(a.stats().skipped, 1);
        assert_eq!(a.groups().len(), 1);
    }

    #[test]
    fn crlf_and_zero_mask_and_comm_with_paren() {
        let t = "Page allocated via order 0, mask 0(GFP_NOWAIT), pid 5, tgid 5 (a) b), ts 1 ns\r\n a+0x1/0x2\r\n\r\n";
        let a = aggregate_bytes(t.as_bytes(), false).unwrap();
        let g = &a.groups()[0];
        assert_eq!(g.mask, Some(0));
        assert_eq!(g.comm.as_deref(), Some("a) b"));
    }

    #[test]
    fn parallel_parts_give_the_sequential_answer() {
        let recs = [
            R2005,
            RMOD,
            "Page allocated via order 2\n[0xc0100000] x+0\n\n",
        ];
        let mut text = String::new();
        for i in 0..40_000usize {
            text.push_str(
                &recs[(i * 7 + i / 3) % 3].replace("pid 1,", &format!("pid {},", i % 13)),
            );
        }
        let b = text.as_bytes();
        let read_at = |off: u64, buf: &mut [u8]| -> std::io::Result<usize> {
            let o = (off as usize).min(b.len());
            let n = buf.len().min(b.len() - o);
            buf[..n].copy_from_slice(&b[o..o + n]);
            Ok(n)
        };
        for cull in [0, crate::page_owner::table::cull::STACKTRACE] {
            let one = aggregate_file(read_at, 0, 1, false, cull, Filter::default()).unwrap();
            // pretend the file is big so that it is cut in parts
            let four = aggregate_file(
                read_at,
                PARALLEL_MIN.max(b.len() as u64),
                4,
                false,
                cull,
                Filter::default(),
            );
            let four = four.unwrap();
            assert_eq!(one.groups(), four.groups());
            assert_eq!(one.stats(), four.stats());
        }
        // a bad record in a later part: the sequential error, with its line
        let bad = format!("{text}Page allocated via order 99\n a\n\n");
        let bb = bad.as_bytes();
        let read_bad = |off: u64, buf: &mut [u8]| -> std::io::Result<usize> {
            let o = (off as usize).min(bb.len());
            let n = buf.len().min(bb.len() - o);
            buf[..n].copy_from_slice(&bb[o..o + n]);
            Ok(n)
        };
        let want = text.matches('\n').count() + 1;
        match aggregate_file(
            read_bad,
            PARALLEL_MIN.max(bb.len() as u64),
            2,
            false,
            0,
            Filter::default(),
        ) {
            Err(Error::Parse(m)) => {
                assert!(m.starts_with(&format!("line {want}: order 99")), "{m}")
            }
            _ => panic!("order 99 accepted"),
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..2000), lenient in any::<bool>(), step in 1usize..50) {
            let mut a = Aggregator::new(lenient);
            let mut ok = true;
            for c in data.chunks(step) {
                if a.feed(c).is_err() { ok = false; break; }
            }
            if ok { let _ = a.finish(); }
        }

        #[test]
        fn counts_add_up(picks in prop::collection::vec(0usize..3, 0..50)) {
            let recs = [R2005, RMOD, "Page allocated via order 2\n[0xc0100000] x+0\n\n"];
            let text: String = picks.iter().map(|&i| recs[i]).collect();
            let a = aggregate_bytes(text.as_bytes(), false).unwrap();
            let total: u64 = a.groups().iter().map(|g| g.count).sum();
            prop_assert_eq!(total as usize, picks.len());
            let pages: u64 = a.groups().iter().map(|g| g.pages).sum();
            let want: u64 = picks.iter().map(|&i| [1u64, 2, 4][i]).sum();
            prop_assert_eq!(pages, want);
        }
    }
}
