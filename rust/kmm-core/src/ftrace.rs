//! The kernel's kmem page events as text (`include/trace/events/kmem.h` and
//! `tracing_mark_write`), read from ftrace's `trace` / `trace_pipe` or from
//! `perf script`, auto-detected line by line, and turned into a kmm trace.
//!
//! Streaming: [`Importer::feed`] takes any chunk of bytes (a line may be cut
//! between two chunks), [`Importer::finish`] ends the input. Memory is the
//! carry-over of one partial line plus one map entry per pfn the trace has
//! touched (bounded by the machine), never proportional to the trace length;
//! the kmm records produced are handed out by [`Importer::take_records`].
//!
//! Line formats (FACTS-2 section 3):
//! - ftrace: `<comm>-<pid> [(<tgid>)] [<cpu>] <flags> <secs>.<usecs>: <event>: <fields>`;
//!   comm may hold spaces and dashes, so the pid is after the LAST `-` before ` [`.
//! - perf script: `<comm> <pid>[/<tid>] [<cpu>] <secs>.<usecs>: kmem:<event>: <fields>`,
//!   possibly with other fields perf was asked for; those are counted, not fatal.
//!
//! The rules that make a kmm trace from the events:
//! - `mm_page_alloc` of a real page (a failed one prints a null page and pfn 0)
//!   is an allocation of a new object, identified from then on by its pfn;
//! - `mm_page_free` of a pfn that holds an object frees it; in 6.x the same
//!   page also logs `mm_page_free_batched` a few microseconds later when it was
//!   freed in a batch, and that duplicate is counted once;
//! - `mm_page_free_batched` with no `mm_page_free` before it (older kernels,
//!   where it was the only event of a batched free) is a free;
//! - a free of a page allocated before the trace began frees nothing kmm knows:
//!   it is counted (`frees_untracked`);
//! - `mm_page_alloc_zone_locked`, `mm_page_pcpu_drain`, `mm_page_alloc_extfrag`
//!   are counted (they say where pages moved between per-cpu and buddy lists,
//!   which a policy replay decides for itself).

use crate::error::{Error, Result};
use crate::gfp;
use crate::replay::{TraceOp, OP_ALLOC, OP_FREE, TRACE_RECORD_SIZE};
use crate::MAX_ORDER;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// The events this module knows, in [`EventKind`] order.
pub const EVENT_NAMES: [&str; 7] = [
    "mm_page_alloc",
    "mm_page_alloc_zone_locked",
    "mm_page_free",
    "mm_page_free_batched",
    "mm_page_pcpu_drain",
    "mm_page_alloc_extfrag",
    "tracing_mark_write",
];

/// A known event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    Alloc = 0,
    AllocZoneLocked = 1,
    Free = 2,
    FreeBatched = 3,
    PcpuDrain = 4,
    Extfrag = 5,
    Marker = 6,
}

impl EventKind {
    const ALL: [EventKind; 7] = [
        EventKind::Alloc,
        EventKind::AllocZoneLocked,
        EventKind::Free,
        EventKind::FreeBatched,
        EventKind::PcpuDrain,
        EventKind::Extfrag,
        EventKind::Marker,
    ];
    fn from_name(name: &[u8]) -> Option<EventKind> {
        EVENT_NAMES
            .iter()
            .position(|n| n.as_bytes() == name)
            .map(|i| EventKind::ALL[i])
    }
    pub fn name(self) -> &'static str {
        EVENT_NAMES[self as usize]
    }
}

/// Which tool wrote a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ftrace,
    Perf,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Ftrace => "ftrace",
            Format::Perf => "perf",
        }
    }
}

/// One parsed event line. Fields an event does not print are left 0 / -1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub format: Format,
    pub pid: u32,
    /// The thread group id when the line shows one, else the pid.
    pub tgid: u32,
    pub cpu: u32,
    pub ts_ns: u64,
    /// The page pointer printed as null (a failed allocation).
    pub null_page: bool,
    pub pfn: u64,
    pub order: u32,
    pub migratetype: i32,
    /// The kernel's gfp flag names mapped to kmm's gfp bits ([`map_gfp`]).
    pub gfp: u32,
    /// gfp names kmm has no bit for (counted, ignored).
    pub gfp_unknown: u32,
    pub percpu_refill: i32,
    pub fallback_order: i32,
    pub fallback_migratetype: i32,
    /// Tokens of the line this parser did not use (perf's extra fields).
    pub unknown_fields: u32,
}

/// What one line was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    Blank,
    /// `#` comment lines of the `trace` file header.
    Header,
    /// `CPU:N [LOST M EVENTS]`: the ring buffer overwrote or dropped M events.
    Lost(u64),
    Event(Event, &'a [u8]),
    /// A well-formed event line of an event this module does not know.
    OtherEvent(&'a [u8]),
    /// Anything else (a reason).
    Malformed(&'static str),
}

/// Kernel (6.x `include/trace/events/mmflags.h`) gfp names -> kmm's 2.6.11-era bits.
/// Modern modifiers with no 2.6.11 meaning (accounting, hardwall, KASAN, ...)
/// map to 0: they do not change where a page goes. `__GFP_DIRECT_RECLAIM` is
/// 2.6.11's `__GFP_WAIT`; `__GFP_RETRY_MAYFAIL` its `__GFP_REPEAT`.
const KERNEL_GFP: &[(&str, u32)] = {
    use gfp::*;
    const RECLAIM: u32 = __GFP_WAIT; // __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM
    const KERNEL: u32 = RECLAIM | __GFP_IO | __GFP_FS;
    const HIGHUSER_MOVABLE: u32 = KERNEL | __GFP_HIGHMEM | __GFP_MOVABLE;
    &[
        (
            "GFP_TRANSHUGE",
            HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOWARN,
        ),
        (
            "GFP_TRANSHUGE_LIGHT",
            (HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOWARN) & !__GFP_WAIT,
        ),
        ("GFP_HIGHUSER_MOVABLE", HIGHUSER_MOVABLE),
        ("GFP_HIGHUSER", KERNEL | __GFP_HIGHMEM),
        ("GFP_USER", KERNEL),
        ("GFP_KERNEL_ACCOUNT", KERNEL),
        ("GFP_KERNEL", KERNEL),
        ("GFP_NOFS", RECLAIM | __GFP_IO),
        ("GFP_ATOMIC", __GFP_HIGH),
        ("GFP_NOIO", RECLAIM),
        ("GFP_NOWAIT", 0),
        ("GFP_DMA", __GFP_DMA),
        ("GFP_DMA32", __GFP_DMA32),
        ("__GFP_HIGH", __GFP_HIGH),
        ("__GFP_IO", __GFP_IO),
        ("__GFP_FS", __GFP_FS),
        ("__GFP_DIRECT_RECLAIM", __GFP_WAIT),
        ("__GFP_KSWAPD_RECLAIM", 0),
        ("__GFP_RECLAIM", __GFP_WAIT),
        ("__GFP_NOWARN", __GFP_NOWARN),
        ("__GFP_RETRY_MAYFAIL", __GFP_REPEAT),
        ("__GFP_NOFAIL", __GFP_NOFAIL),
        ("__GFP_NORETRY", __GFP_NORETRY),
        ("__GFP_COMP", __GFP_COMP),
        ("__GFP_ZERO", __GFP_ZERO),
        ("__GFP_HIGHMEM", __GFP_HIGHMEM),
        ("__GFP_DMA", __GFP_DMA),
        ("__GFP_DMA32", __GFP_DMA32),
        ("__GFP_MOVABLE", __GFP_MOVABLE),
        ("__GFP_RECLAIMABLE", __GFP_RECLAIMABLE),
        ("__GFP_NOMEMALLOC", 0),
        ("__GFP_MEMALLOC", 0),
        ("__GFP_HARDWALL", 0),
        ("__GFP_THISNODE", 0),
        ("__GFP_ACCOUNT", 0),
        ("__GFP_WRITE", 0),
        ("__GFP_NOLOCKDEP", 0),
        ("__GFP_NO_OBJ_EXT", 0),
        ("__GFP_SKIP_ZERO", 0),
        ("__GFP_SKIP_KASAN", 0),
        ("__GFP_ZEROTAGS", 0),
        ("__GFP_UNMAPPED", 0),
        ("none", 0),
    ]
};

/// Map the kernel's `gfp_flags=` text (names joined by `|`, leftover bits as
/// hex) to kmm's gfp bits; returns (mask, names kmm does not know). The mask
/// always passes [`gfp::validate`]: a zone modifier wins over `__GFP_HIGHMEM`
/// (the kernel's own `gfp_zone` order), `__GFP_MOVABLE` over
/// `__GFP_RECLAIMABLE`.
pub fn map_gfp(text: &[u8]) -> (u32, u32) {
    let mut mask = 0u32;
    let mut unknown = 0u32;
    for name in text.split(|&b| b == b'|') {
        if name.is_empty() || name.starts_with(b"0x") {
            // leftover bits the kernel has no name for: no kmm meaning
            continue;
        }
        match KERNEL_GFP.iter().find(|(n, _)| n.as_bytes() == name) {
            Some(&(_, v)) => mask |= v,
            None => unknown += 1,
        }
    }
    use gfp::*;
    if mask & (__GFP_DMA | __GFP_DMA32) != 0 {
        mask &= !__GFP_HIGHMEM;
        if mask & __GFP_DMA != 0 {
            mask &= !__GFP_DMA32;
        }
    }
    if mask & __GFP_MOVABLE != 0 {
        mask &= !__GFP_RECLAIMABLE;
    }
    (mask, unknown)
}

#[inline]
fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

#[inline]
fn dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v = 0u64;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u64;
    }
    Some(v)
}

#[inline]
fn sdec(s: &[u8]) -> Option<i64> {
    match s {
        [b'-', rest @ ..] => dec(rest).map(|v| -(v as i64)),
        _ => dec(s).map(|v| v as i64),
    }
}

#[inline]
fn hex(s: &[u8]) -> Option<u64> {
    let s = s.strip_prefix(b"0x").unwrap_or(s);
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for &b in s {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

/// `secs.frac` (any number of fraction digits up to 9) in nanoseconds.
fn timestamp(s: &[u8]) -> Option<u64> {
    let dot = s.iter().position(|&b| b == b'.')?;
    let secs = dec(&s[..dot])?;
    let frac = &s[dot + 1..];
    if frac.is_empty() || frac.len() > 9 {
        return None;
    }
    let f = dec(frac)? * 10u64.pow(9 - frac.len() as u32);
    Some(secs * 1_000_000_000 + f)
}

fn null_pointer(s: &[u8]) -> bool {
    matches!(s, b"(null)" | b"(nil)" | b"0" | b"0x0")
        || (!s.is_empty() && s.iter().all(|&b| b == b'0'))
}

/// Find the `[<cpu>]` column: the first `[digits]` preceded by a blank.
fn cpu_column(line: &[u8]) -> Option<(usize, usize, u32)> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'[', &line[from..]) {
        let open = from + i;
        if open > 0 && line[open - 1] == b' ' {
            if let Some(j) = memchr::memchr(b']', &line[open + 1..]) {
                let close = open + 1 + j;
                if let Some(cpu) = dec(&line[open + 1..close]) {
                    return Some((open, close, cpu as u32));
                }
            }
        }
        from = open + 1;
    }
    None
}

/// The last `gfp_flags=` text and what it mapped to (lines repeat a few masks).
#[derive(Debug, Default)]
pub struct GfpCache {
    text: Vec<u8>,
    mask: u32,
    unknown: u32,
}

impl GfpCache {
    #[inline]
    fn map(&mut self, text: &[u8]) -> (u32, u32) {
        if text != self.text.as_slice() {
            (self.mask, self.unknown) = map_gfp(text);
            self.text.clear();
            self.text.extend_from_slice(text);
        }
        (self.mask, self.unknown)
    }
}

/// Parse one line (without its newline).
pub fn parse_line(line: &[u8]) -> Line<'_> {
    parse_line_with(line, &mut GfpCache::default())
}

/// [`parse_line`] reusing the gfp mapping of the line before.
pub fn parse_line_with<'a>(line: &'a [u8], gfp_cache: &mut GfpCache) -> Line<'a> {
    let t = trim(line);
    if t.is_empty() {
        return Line::Blank;
    }
    if t[0] == b'#' {
        return Line::Header;
    }
    if t.starts_with(b"CPU:") {
        if let Some(i) = memchr::memmem::find(t, b"[LOST ") {
            let rest = &t[i + 6..];
            let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if let Some(v) = dec(&rest[..n]) {
                return Line::Lost(v);
            }
        }
    }
    let Some((open, close, cpu)) = cpu_column(line) else {
        return Line::Malformed("no [cpu] column");
    };
    // task: "comm-pid" (ftrace) or "comm pid" / "comm pid/tid" (perf), maybe "(tgid)"
    let mut task = trim(&line[..open]);
    let mut tgid: Option<u32> = None;
    if let [rest @ .., b')'] = task {
        if let Some(p) = rest.iter().rposition(|&b| b == b'(') {
            tgid = dec(trim(&rest[p + 1..])).map(|v| v as u32);
            task = trim(&rest[..p]);
        }
    }
    let last_sp = task.iter().rposition(|&b| b == b' ' || b == b'\t');
    let tail = match last_sp {
        Some(p) => &task[p + 1..],
        None => task,
    };
    let perf_pid = if last_sp.is_none() {
        None
    } else if let Some(v) = dec(tail) {
        Some((v as u32, tgid.unwrap_or(v as u32)))
    } else {
        // perf `pid/tid`
        tail.iter()
            .position(|&b| b == b'/')
            .and_then(|s| Some((dec(&tail[s + 1..])? as u32, dec(&tail[..s])? as u32)))
    };
    let (format, pid, tgid) = if let Some((pid, tgid)) = perf_pid {
        (Format::Perf, pid, tgid)
    } else if let Some(dash) = task.iter().rposition(|&b| b == b'-') {
        match dec(&task[dash + 1..]) {
            Some(v) => (Format::Ftrace, v as u32, tgid.unwrap_or(v as u32)),
            None => return Line::Malformed("bad pid"),
        }
    } else {
        return Line::Malformed("no pid");
    };
    // after "[cpu]": [flags] <timestamp>: [other perf fields] <event>: <fields>
    let mut rest = &line[close + 1..];
    let mut ts_ns = None;
    let mut unknown_fields = 0u32;
    let event_name;
    loop {
        rest = trim_start(rest);
        if rest.is_empty() {
            return Line::Malformed("no event name");
        }
        let end = rest
            .iter()
            .position(|&b| b == b' ' || b == b'\t')
            .unwrap_or(rest.len());
        let tok = &rest[..end];
        rest = &rest[end..];
        match tok {
            [body @ .., b':'] if ts_ns.is_none() => match timestamp(body) {
                Some(v) => ts_ns = Some(v),
                None => unknown_fields += 1,
            },
            [body @ .., b':'] => {
                event_name = body;
                break;
            }
            _ => unknown_fields += 1,
        }
    }
    let Some(ts_ns) = ts_ns else {
        return Line::Malformed("no timestamp");
    };
    if format == Format::Ftrace {
        unknown_fields = unknown_fields.saturating_sub(1); // the irq-info flags column
    }
    let name = match memchr::memrchr(b':', event_name) {
        Some(c) => &event_name[c + 1..], // perf's "kmem:" / "ftrace:"
        None => event_name,
    };
    let Some(kind) = EventKind::from_name(name) else {
        return Line::OtherEvent(name);
    };
    let fields = trim(rest);
    let mut ev = Event {
        kind,
        format,
        pid,
        tgid,
        cpu,
        ts_ns,
        null_page: false,
        pfn: 0,
        order: 0,
        migratetype: -1,
        gfp: 0,
        gfp_unknown: 0,
        percpu_refill: -1,
        fallback_order: -1,
        fallback_migratetype: -1,
        unknown_fields,
    };
    if kind == EventKind::Marker {
        return Line::Event(ev, fields);
    }
    // bit per field seen: page, pfn, order, migratetype, gfp_flags, percpu_refill
    let mut seen = 0u32;
    let mut rest = fields;
    while !rest.is_empty() {
        let end = memchr::memchr2(b' ', b'\t', rest).unwrap_or(rest.len());
        let tok = &rest[..end];
        rest = &rest[(end + 1).min(rest.len())..];
        if tok.is_empty() {
            continue;
        }
        let Some(eq) = memchr::memchr(b'=', tok) else {
            ev.unknown_fields += 1;
            continue;
        };
        let (k, v) = (&tok[..eq], &tok[eq + 1..]);
        let ok = match k {
            b"page" => {
                seen |= 1;
                ev.null_page = null_pointer(v);
                true
            }
            b"pfn" => {
                seen |= 2;
                hex(v).map(|x| ev.pfn = x).is_some()
            }
            b"order" | b"alloc_order" => {
                seen |= 4;
                dec(v)
                    .filter(|&x| x < 64)
                    .map(|x| ev.order = x as u32)
                    .is_some()
            }
            b"migratetype" | b"alloc_migratetype" => {
                seen |= 8;
                sdec(v).map(|x| ev.migratetype = x as i32).is_some()
            }
            b"gfp_flags" => {
                seen |= 16;
                let (m, u) = gfp_cache.map(v);
                ev.gfp = m;
                ev.gfp_unknown = u;
                true
            }
            b"percpu_refill" => {
                seen |= 32;
                sdec(v).map(|x| ev.percpu_refill = x as i32).is_some()
            }
            b"fallback_order" => sdec(v).map(|x| ev.fallback_order = x as i32).is_some(),
            b"fallback_migratetype" => sdec(v)
                .map(|x| ev.fallback_migratetype = x as i32)
                .is_some(),
            b"pageblock_order" | b"fragmenting" | b"change_ownership" => true,
            _ => {
                ev.unknown_fields += 1;
                true
            }
        };
        if !ok {
            return Line::Malformed("bad field value");
        }
    }
    let need = match kind {
        EventKind::Alloc => 1 | 2 | 4 | 8 | 16,
        EventKind::AllocZoneLocked => 1 | 2 | 4 | 8,
        EventKind::Free | EventKind::FreeBatched => 1 | 2 | 4,
        EventKind::PcpuDrain => 1 | 2 | 4 | 8,
        EventKind::Extfrag => 1 | 2 | 4 | 8,
        EventKind::Marker => 0,
    };
    if seen & need != need {
        return Line::Malformed("missing field");
    }
    Line::Event(ev, fields)
}

#[inline]
fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

/// A fast hasher for pfn keys (Fibonacci multiply; pfns are not adversarial).
#[derive(Default)]
pub struct PfnHasher(u64);

impl Hasher for PfnHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub type PfnMap<V> = HashMap<u64, V, BuildHasherDefault<PfnHasher>>;

/// A `tracing_mark_write` line and where it fell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub text: String,
    /// Input line number (1-based).
    pub line: u64,
    /// Number of kmm records emitted before it.
    pub record: u64,
    /// Number of known page events (all kinds but markers) before it.
    pub event: u64,
    pub ts_ns: u64,
}

/// What an import saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Input lines, the last one counted even when cut mid-line.
    pub lines: u64,
    /// Known events per [`EventKind`].
    pub events: [u64; 7],
    /// Lines of events this module does not know, by name (at most 64 names;
    /// further names are added up under `"..."`).
    pub other_events: BTreeMap<String, u64>,
    pub headers: u64,
    pub blank: u64,
    /// Lines that are neither events nor headers.
    pub malformed: u64,
    /// The first malformed lines: (line number, reason, text up to 200 bytes).
    pub malformed_examples: Vec<(u64, &'static str, String)>,
    /// Events the ring buffer reported lost (`[LOST N EVENTS]` lines).
    pub lost_events: u64,
    /// kmm records written.
    pub records: u64,
    pub allocations: u64,
    /// Frees of an object (counted once however many events logged them).
    pub frees: u64,
    /// Allocations that failed (null page): skipped.
    pub failed_allocations: u64,
    /// `mm_page_free_batched` events that repeat an `mm_page_free`: skipped.
    pub batched_duplicates: u64,
    /// Frees of pages allocated before the trace began: skipped.
    pub frees_untracked: u64,
    /// Allocations of a pfn the trace still held as allocated (a free was not
    /// logged): the old object is freed first.
    pub alloc_of_allocated: u64,
    /// Frees whose order differs from the allocation's: the whole object is freed.
    pub free_order_mismatch: u64,
    /// Allocations of an order kmm cannot hold (>= MAX_ORDER): skipped.
    pub orders_too_high: u64,
    /// gfp names kmm has no bit for.
    pub gfp_unknown_names: u64,
    /// Tokens of event lines this parser did not use (perf's extra fields).
    pub unknown_fields: u64,
    /// The input ended without a newline and its last line did not parse.
    pub truncated_last_line: bool,
    /// The format of the first event line.
    pub format: Option<Format>,
    /// Lines of the other format after the first event line.
    pub mixed_format_lines: u64,
    pub first_ts_ns: Option<u64>,
    pub last_ts_ns: u64,
    pub markers: Vec<Marker>,
}

impl ImportStats {
    /// Every skipped line or event, by reason (the `skipped` of the summary).
    pub fn skipped(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("malformed_lines", self.malformed),
            (
                "other_event_lines",
                self.other_events.values().copied().sum(),
            ),
            ("failed_allocations", self.failed_allocations),
            ("batched_duplicates", self.batched_duplicates),
            ("frees_untracked", self.frees_untracked),
            ("orders_too_high", self.orders_too_high),
            ("lost_events", self.lost_events),
        ]
    }
}

/// Marker of a pfn whose object `mm_page_free` freed: a `mm_page_free_batched`
/// of it before its next allocation is the 6.x duplicate.
const FREED: u32 = u32::MAX;
/// Pfn freed by `mm_page_free_batched` alone.
const FREED_BATCHED: u32 = u32::MAX - 1;

/// Longest partial line kept between chunks.
const MAX_LINE: usize = 1 << 16;

/// The streaming importer: kernel event text in, kmm records out.
pub struct Importer {
    carry: Vec<u8>,
    /// pfn -> (object id, order) of live objects, or FREED / FREED_BATCHED.
    pages: PfnMap<(u32, u8)>,
    next_obj: u32,
    out: Vec<u8>,
    gfp_cache: GfpCache,
    pub stats: ImportStats,
}

impl Default for Importer {
    fn default() -> Self {
        Importer::new()
    }
}

impl Importer {
    pub fn new() -> Importer {
        Importer {
            carry: Vec::new(),
            pages: PfnMap::default(),
            next_obj: 0,
            out: Vec::new(),
            gfp_cache: GfpCache::default(),
            stats: ImportStats::default(),
        }
    }

    /// Objects allocated in the trace and not freed by its end.
    pub fn live_objects(&self) -> usize {
        self.pages
            .values()
            .filter(|(o, _)| *o < FREED_BATCHED)
            .count()
    }

    /// Parse a chunk of input; complete lines are handled now, a trailing partial
    /// line waits for the next chunk.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<()> {
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                Some(nl) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&chunk[..nl]);
                    self.line(&line)?;
                    line.clear();
                    self.carry = line; // keep the allocation
                    chunk = &chunk[nl + 1..];
                }
                None => {
                    self.carry.extend_from_slice(chunk);
                    return self.check_carry();
                }
            }
        }
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            self.line(&chunk[start..nl])?;
            start = nl + 1;
        }
        self.carry.extend_from_slice(&chunk[start..]);
        self.check_carry()
    }

    fn check_carry(&self) -> Result<()> {
        if self.carry.len() > MAX_LINE {
            return Err(Error::Parse(format!(
                "line {} is longer than {MAX_LINE} bytes: not a kernel trace",
                self.stats.lines + 1
            )));
        }
        Ok(())
    }

    /// End of input: handle a last line without newline (a trace cut mid-line
    /// is counted as `truncated_last_line` when it does not parse), then refuse
    /// an input of which nothing parsed.
    pub fn finish(&mut self) -> Result<()> {
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            let before = self.stats.malformed;
            self.line(&line)?;
            if self.stats.malformed > before {
                self.stats.truncated_last_line = true;
            }
        }
        let known: u64 = self.stats.events.iter().sum();
        if known == 0 {
            let other: u64 = self.stats.other_events.values().sum();
            return Err(Error::Parse(if self.stats.lines == 0 {
                "empty input: no kernel trace lines".to_string()
            } else if other > 0 {
                let names: Vec<&str> = self.stats.other_events.keys().map(|s| s.as_str()).collect();
                format!(
                    "no kmem page events in {} lines: only other events ({}); enable kmem/mm_page_alloc, mm_page_free, ...",
                    self.stats.lines,
                    names.join(", ")
                )
            } else {
                let ex = self
                    .stats
                    .malformed_examples
                    .first()
                    .map(|(n, why, t)| format!("; line {n}: {why}: {t:?}"))
                    .unwrap_or_default();
                format!(
                    "not an ftrace or perf script text: no event parsed in {} lines{ex}",
                    self.stats.lines
                )
            }));
        }
        Ok(())
    }

    /// The records produced since the last call (TRACE_DTYPE bytes).
    pub fn take_records(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn emit(&mut self, op: TraceOp) {
        let n = self.out.len();
        self.out.resize(n + TRACE_RECORD_SIZE, 0);
        op.write(&mut self.out[n..]);
        self.stats.records += 1;
    }

    fn free_obj(&mut self, obj: u32, ev: &Event) {
        self.emit(TraceOp {
            op: OP_FREE,
            obj,
            pid: ev.pid,
            tgid: ev.tgid,
            ..TraceOp::default()
        });
        self.stats.frees += 1;
    }

    fn line(&mut self, line: &[u8]) -> Result<()> {
        self.stats.lines += 1;
        let (ev, fields) = match parse_line_with(line, &mut self.gfp_cache) {
            Line::Blank => {
                self.stats.blank += 1;
                return Ok(());
            }
            Line::Header => {
                self.stats.headers += 1;
                return Ok(());
            }
            Line::Lost(n) => {
                self.stats.lost_events += n;
                return Ok(());
            }
            Line::OtherEvent(name) => {
                let st = &mut self.stats.other_events;
                let key =
                    if st.len() < 64 || st.contains_key(std::str::from_utf8(name).unwrap_or("?")) {
                        String::from_utf8_lossy(name).into_owned()
                    } else {
                        "...".to_string()
                    };
                *st.entry(key).or_insert(0) += 1;
                return Ok(());
            }
            Line::Malformed(why) => {
                self.stats.malformed += 1;
                if self.stats.malformed_examples.len() < 5 {
                    let t = &line[..line.len().min(200)];
                    self.stats.malformed_examples.push((
                        self.stats.lines,
                        why,
                        String::from_utf8_lossy(t).into_owned(),
                    ));
                }
                return Ok(());
            }
            Line::Event(ev, fields) => (ev, fields),
        };
        match self.stats.format {
            None => self.stats.format = Some(ev.format),
            Some(f) if f != ev.format => self.stats.mixed_format_lines += 1,
            _ => {}
        }
        self.stats.first_ts_ns.get_or_insert(ev.ts_ns);
        self.stats.last_ts_ns = ev.ts_ns;
        self.stats.unknown_fields += ev.unknown_fields as u64;
        if ev.kind == EventKind::Marker {
            let known: u64 = self.stats.events[..6].iter().sum();
            self.stats.events[EventKind::Marker as usize] += 1;
            self.stats.markers.push(Marker {
                text: String::from_utf8_lossy(fields).into_owned(),
                line: self.stats.lines,
                record: self.stats.records,
                event: known,
                ts_ns: ev.ts_ns,
            });
            return Ok(());
        }
        self.stats.events[ev.kind as usize] += 1;
        match ev.kind {
            EventKind::Alloc => self.alloc(&ev),
            EventKind::Free => self.free(&ev, false),
            EventKind::FreeBatched => self.free(&ev, true),
            _ => {}
        }
        Ok(())
    }

    fn alloc(&mut self, ev: &Event) {
        if ev.null_page || ev.pfn == 0 {
            self.stats.failed_allocations += 1;
            return;
        }
        if ev.order as usize >= MAX_ORDER {
            self.stats.orders_too_high += 1;
            return;
        }
        self.stats.gfp_unknown_names += ev.gfp_unknown as u64;
        let obj = self.next_obj;
        self.next_obj = self.next_obj.wrapping_add(1);
        if self.next_obj >= FREED_BATCHED {
            self.next_obj = 0; // 4 G objects: ids of long-freed objects are reused
        }
        if let Some((old, _)) = self.pages.insert(ev.pfn, (obj, ev.order as u8)) {
            if old < FREED_BATCHED {
                self.stats.alloc_of_allocated += 1;
                self.free_obj(old, ev);
            }
        }
        self.emit(TraceOp {
            op: OP_ALLOC,
            order: ev.order as u8,
            obj,
            gfp: ev.gfp,
            stack: 0,
            pid: ev.pid,
            tgid: ev.tgid,
        });
        self.stats.allocations += 1;
    }

    fn free(&mut self, ev: &Event, batched: bool) {
        let state = if batched { FREED_BATCHED } else { FREED };
        let slot = self.pages.entry(ev.pfn).or_insert((FREED_BATCHED, 0));
        let (obj, order) = *slot;
        if obj == FREED && batched {
            self.stats.batched_duplicates += 1;
            *slot = (FREED_BATCHED, 0);
        } else if obj < FREED_BATCHED {
            *slot = (state, 0);
            if order as u32 != ev.order {
                self.stats.free_order_mismatch += 1;
            }
            self.free_obj(obj, ev);
        } else {
            *slot = (state, 0);
            self.stats.frees_untracked += 1;
        }
    }
}

/// Import a whole text held in memory (tests, small inputs).
pub fn import_bytes(text: &[u8]) -> Result<(Vec<u8>, ImportStats)> {
    let mut im = Importer::new();
    im.feed(text)?;
    im.finish()?;
    Ok((im.take_records(), im.stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::TraceOp;

    const A: &str = "             sh-19934   [001] .....  1976.273556: mm_page_alloc: page=00000000b130e681 pfn=0x1bc36d order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP";

    fn ops(b: &[u8]) -> Vec<TraceOp> {
        b.chunks(TRACE_RECORD_SIZE).map(TraceOp::read).collect()
    }

    #[test]
    fn ftrace_alloc_line() {
        let Line::Event(ev, _) = parse_line(A.as_bytes()) else {
            panic!("not an event")
        };
        assert_eq!(ev.kind, EventKind::Alloc);
        assert_eq!(ev.format, Format::Ftrace);
        assert_eq!((ev.pid, ev.cpu, ev.pfn, ev.order), (19934, 1, 0x1bc36d, 0));
        assert_eq!(ev.ts_ns, 1_976_273_556_000);
        assert_eq!(ev.gfp, gfp::GFP_KERNEL | gfp::__GFP_ZERO | gfp::__GFP_COMP);
        assert_eq!(ev.unknown_fields, 0);
    }

    #[test]
    fn comm_with_spaces_and_dashes() {
        let l =
            b"  opt cgu.0-x-12256 [003] d..2. 10.5: mm_page_free: page=ffffea0001 pfn=0x10 order=2";
        let Line::Event(ev, _) = parse_line(l) else {
            panic!()
        };
        assert_eq!((ev.pid, ev.cpu, ev.order, ev.pfn), (12256, 3, 2, 0x10));
        assert_eq!(ev.ts_ns, 10_500_000_000);
        let l = b"  opt cgu.0 12256 [003] 10.000001: kmem:mm_page_free: page=0x1 pfn=0x10 order=2";
        let Line::Event(ev, _) = parse_line(l) else {
            panic!()
        };
        assert_eq!(
            (ev.format, ev.pid, ev.ts_ns),
            (Format::Perf, 12256, 10_000_001_000)
        );
        let l = b"  kworker/1:1-15832   [001] d..2.  1.5: mm_page_free: page=1 pfn=0x10 order=0";
        let Line::Event(ev, _) = parse_line(l) else {
            panic!()
        };
        assert_eq!((ev.format, ev.pid), (Format::Ftrace, 15832));
        let l = b"  tgid-test-7 (    5) [000] ..... 1.0: mm_page_free: page=1 pfn=0x10 order=0";
        let Line::Event(ev, _) = parse_line(l) else {
            panic!()
        };
        assert_eq!((ev.pid, ev.tgid), (7, 5));
    }

    #[test]
    fn perf_unknown_fields_are_counted() {
        let l = b"python3 99/100 [1] 5.000002:          1 kmem:mm_page_free: page=0x1 pfn=0x10 order=0 extra=3 ffffffff8123 __free_pages";
        let Line::Event(ev, _) = parse_line(l) else {
            panic!()
        };
        assert_eq!((ev.pid, ev.tgid), (100, 99));
        assert_eq!(ev.unknown_fields, 4);
    }

    #[test]
    fn malformed_and_others() {
        assert_eq!(parse_line(b"# tracer: nop"), Line::Header);
        assert_eq!(parse_line(b"   "), Line::Blank);
        assert_eq!(parse_line(b"CPU:1 [LOST 42 EVENTS]"), Line::Lost(42));
        assert!(matches!(parse_line(b"garbage"), Line::Malformed(_)));
        assert!(matches!(
            parse_line(b" a-1 [000] ..... 1.0: sched_switch: prev=a"),
            Line::OtherEvent(b"sched_switch")
        ));
        assert!(matches!(
            parse_line(b" a-1 [000] ..... 1.0: mm_page_free: page=1 pfn=0x10"),
            Line::Malformed("missing field")
        ));
        assert!(matches!(
            parse_line(b" a-1 [000] ..... 1.0: mm_page_free: page=1 pfn=0x1g order=0"),
            Line::Malformed("bad field value")
        ));
    }

    #[test]
    fn gfp_mapping() {
        let (m, u) = map_gfp(b"GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP");
        assert_eq!(u, 0);
        assert_eq!(m, gfp::GFP_HIGHUSER | gfp::__GFP_ZERO | gfp::__GFP_COMP);
        assert!(gfp::validate(m).is_ok());
        let (m, u) = map_gfp(b"GFP_KERNEL|__GFP_BOGUS|0x40000000");
        assert_eq!((m, u), (gfp::GFP_KERNEL, 1));
        let (m, _) = map_gfp(b"GFP_DMA|__GFP_HIGHMEM|__GFP_MOVABLE|__GFP_RECLAIMABLE");
        assert!(gfp::validate(m).is_ok());
        assert_eq!(map_gfp(b"none"), (0, 0));
    }

    #[test]
    fn batched_duplicate_counted_once_and_failed_skipped() {
        let t = "\
# tracer: nop
 a-1 [000] ..... 1.000001: mm_page_alloc: page=1 pfn=0x10 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE
 a-1 [000] ..... 1.000002: mm_page_alloc: page=(null) pfn=0x0 order=3 migratetype=0 gfp_flags=GFP_KERNEL
 a-1 [000] ..... 1.000003: mm_page_free: page=1 pfn=0x10 order=0
 a-1 [000] ..... 1.000004: mm_page_free_batched: page=1 pfn=0x10 order=0
 a-1 [000] ..... 1.000005: mm_page_free_batched: page=1 pfn=0x99 order=0
 a-1 [000] ..... 1.000006: mm_page_alloc: page=1 pfn=0x20 order=1 migratetype=0 gfp_flags=GFP_KERNEL
 a-1 [000] ..... 1.000007: tracing_mark_write: kmm-snapshot x begin
 a-1 [000] ..... 1.000008: mm_page_free_batched: page=1 pfn=0x20 order=1
 a-1 [000] ..... 1.000009: mm_page_pcpu_drain: page=1 pfn=0x20 order=1 migratetype=0
 a-1 [000] ..... 1.0000";
        let (rec, st) = import_bytes(t.as_bytes()).unwrap();
        let o = ops(&rec);
        assert_eq!(o.len(), 4);
        assert_eq!((o[0].op, o[0].obj, o[0].pid), (OP_ALLOC, 0, 1));
        assert_eq!((o[1].op, o[1].obj), (OP_FREE, 0));
        assert_eq!((o[2].op, o[2].obj, o[2].order), (OP_ALLOC, 1, 1));
        assert_eq!((o[3].op, o[3].obj), (OP_FREE, 1));
        assert_eq!((st.allocations, st.frees, st.failed_allocations), (2, 2, 1));
        assert_eq!((st.batched_duplicates, st.frees_untracked), (1, 1));
        assert_eq!(st.events, [3, 0, 1, 3, 1, 0, 1]);
        assert!(st.truncated_last_line);
        assert_eq!(st.malformed, 1);
        assert_eq!(st.lines, 11);
        assert_eq!(st.markers.len(), 1);
        assert_eq!(st.markers[0].text, "kmm-snapshot x begin");
        assert_eq!((st.markers[0].record, st.markers[0].event), (3, 6));
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        let mut t = String::new();
        for i in 0..200u32 {
            t += &format!(" p q-{i} [00{}] ..... {}.{:06}: mm_page_alloc: page=1 pfn={:#x} order={} migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE\n", i % 2, i / 10, i, 0x100 + i * 8, i % 4);
            if i % 3 == 0 {
                t += &format!(
                    " p q-{i} [000] ..... {}.{:06}: mm_page_free: page=1 pfn={:#x} order={}\n",
                    i / 10,
                    i,
                    0x100 + i * 8,
                    i % 4
                );
            }
        }
        let (whole, st) = import_bytes(t.as_bytes()).unwrap();
        for step in [1usize, 7, 100, 4096] {
            let mut im = Importer::new();
            let mut got = Vec::new();
            for c in t.as_bytes().chunks(step) {
                im.feed(c).unwrap();
                got.extend(im.take_records());
            }
            im.finish().unwrap();
            got.extend(im.take_records());
            assert_eq!(got, whole, "chunk size {step}");
            assert_eq!(im.stats, st);
        }
    }

    #[test]
    fn nothing_parsed_is_an_error() {
        assert!(import_bytes(b"").is_err());
        let e = import_bytes(b" a-1 [000] ..... 1.0: sched_switch: x=1\n").unwrap_err();
        assert!(
            e.message().contains("only other events (sched_switch)"),
            "{e}"
        );
        let e = import_bytes(b"hello\nworld\n").unwrap_err();
        assert!(
            e.message().contains("not an ftrace or perf script text"),
            "{e}"
        );
    }
}
