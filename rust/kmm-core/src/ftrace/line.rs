//! One line of kernel kmem event text, in ftrace's or `perf script`'s
//! format (see the [module docs](super) for both), parsed into an [`Event`].

use super::mmflags::map_gfp;

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

#[inline]
fn trim(s: &[u8]) -> &[u8] {
    trim_end(skip_blanks(s))
}

#[inline]
fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

/// `s` without its leading blanks; ftrace pads the comm column with up to 16
/// spaces, skipped eight at a time.
#[inline]
fn skip_blanks(mut s: &[u8]) -> &[u8] {
    while s.len() >= 8 && s[..8] == *b"        " {
        s = &s[8..];
    }
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
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

/// `secs.frac` (any number of fraction digits up to 9) in nanoseconds, in one pass.
#[inline]
fn timestamp(s: &[u8]) -> Option<u64> {
    let mut secs = 0u64;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        secs = secs.checked_mul(10)?.checked_add((s[i] - b'0') as u64)?;
        i += 1;
    }
    if i == 0 || i > 19 || i >= s.len() || s[i] != b'.' {
        return None;
    }
    let frac = &s[i + 1..];
    if frac.is_empty() || frac.len() > 9 {
        return None;
    }
    let f = dec(frac)? * POW10[9 - frac.len()];
    secs.checked_mul(1_000_000_000)?.checked_add(f)
}

const POW10: [u64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

#[inline]
fn null_pointer(s: &[u8]) -> bool {
    const ZEROS: &[u8; 16] = b"0000000000000000";
    matches!(s, b"(null)" | b"(nil)" | b"0" | b"0x0")
        || (!s.is_empty() && s.len() <= 16 && s == &ZEROS[..s.len()])
        || (s.len() > 16 && s.iter().all(|&b| b == b'0'))
}

/// Find the `[<cpu>]` column: the first `[digits]` preceded by a blank.
fn cpu_column(line: &[u8], from: usize) -> Option<(usize, usize, u32)> {
    let mut from = from;
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
    let lead = line.len() - skip_blanks(line).len();
    let t = trim_end(&line[lead..]);
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
    let Some((open, close, cpu)) = cpu_column(line, lead) else {
        return Line::Malformed("no [cpu] column");
    };
    let head = match ftrace_head(line, lead, open, close) {
        Some(h) => h,
        None => match general_head(line, lead, open, close) {
            Ok(h) => h,
            Err(why) => return Line::Malformed(why),
        },
    };
    let Head {
        format,
        pid,
        tgid,
        ts_ns,
        unknown_fields,
        name,
        rest,
    } = head;
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
        let Some(eq) = tok.iter().position(|&b| b == b'=') else {
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

/// The part of a line before the event's fields.
#[derive(Debug, PartialEq, Eq)]
struct Head<'a> {
    format: Format,
    pid: u32,
    tgid: u32,
    ts_ns: u64,
    unknown_fields: u32,
    /// The event name without perf's `kmem:`.
    name: &'a [u8],
    /// The fields, untrimmed.
    rest: &'a [u8],
}

/// The common ftrace line, `comm-pid [cpu] flags secs.frac: name: fields`,
/// read without the searches of [`general_head`]: None for anything else (a
/// tgid column, perf's layout, a missing flags column, extra tokens, a bad
/// number), which [`general_head`] then reads. Where it gives a head, it is
/// the one [`general_head`] gives (tested on every line of the fixtures).
#[inline]
fn ftrace_head(line: &[u8], lead: usize, open: usize, close: usize) -> Option<Head<'_>> {
    let task = trim_end(&line[lead..open]);
    let n = task.len();
    let mut i = n;
    while i > 0 && task[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i == n || i == 0 || task[i - 1] != b'-' || n - i > 10 {
        return None;
    }
    let pid = u32::try_from(dec(&task[i..])?).ok()?;
    let r = trim_start(&line[close + 1..]);
    let sp = r.iter().position(|&b| b == b' ' || b == b'\t')?;
    if sp == 0 || r[sp - 1] == b':' {
        return None; // no flags column: the general reader decides
    }
    let r = trim_start(&r[sp..]);
    // "secs.frac: " in one pass
    let mut i = 0;
    let mut secs = 0u64;
    while i < r.len() && r[i].is_ascii_digit() && i < 19 {
        secs = secs * 10 + (r[i] - b'0') as u64;
        i += 1;
    }
    if i == 0 || r.get(i) != Some(&b'.') {
        return None;
    }
    let f0 = i + 1;
    let mut frac = 0u64;
    i = f0;
    while i < r.len() && r[i].is_ascii_digit() && i - f0 < 9 {
        frac = frac * 10 + (r[i] - b'0') as u64;
        i += 1;
    }
    if i == f0 || r.get(i) != Some(&b':') || !matches!(r.get(i + 1), Some(b' ' | b'\t')) {
        return None;
    }
    let ts_ns = secs
        .checked_mul(1_000_000_000)?
        .checked_add(frac * POW10[9 - (i - f0)])?;
    // "name: " or "name:" at the end
    let r = trim_start(&r[i + 1..]);
    let c = r
        .iter()
        .position(|&b| b == b':' || b == b' ' || b == b'\t')?;
    if c == 0 || r[c] != b':' || !matches!(r.get(c + 1), None | Some(b' ' | b'\t')) {
        return None;
    }
    Some(Head {
        format: Format::Ftrace,
        pid,
        tgid: pid,
        ts_ns,
        unknown_fields: 0,
        name: &r[..c],
        rest: &r[c + 1..],
    })
}

/// The part of any line of either format before the event's fields (see the
/// module docs), or why it is malformed.
fn general_head(
    line: &[u8],
    lead: usize,
    open: usize,
    close: usize,
) -> Result<Head<'_>, &'static str> {
    // task: "comm-pid" (ftrace) or "comm pid" / "comm pid/tid" (perf), maybe "(tgid)"
    let mut task = trim_end(&line[lead..open]);
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
            None => return Err("bad pid"),
        }
    } else {
        return Err("no pid");
    };
    // after "[cpu]": [flags] <timestamp>: [other perf fields] <event>: <fields>
    let mut rest = &line[close + 1..];
    let mut ts_ns = None;
    let mut unknown_fields = 0u32;
    let event_name;
    loop {
        rest = trim_start(rest);
        if rest.is_empty() {
            return Err("no event name");
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
        return Err("no timestamp");
    };
    if format == Format::Ftrace {
        unknown_fields = unknown_fields.saturating_sub(1); // the irq-info flags column
    }
    let name = match memchr::memrchr(b':', event_name) {
        Some(c) => &event_name[c + 1..], // perf's "kmem:" / "ftrace:"
        None => event_name,
    };
    Ok(Head {
        format,
        pid,
        tgid,
        ts_ns,
        unknown_fields,
        name,
        rest,
    })
}

#[inline]
fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn heads(line: &[u8]) -> Option<(Option<Head<'_>>, Result<Head<'_>, &'static str>)> {
        let lead = line.len() - skip_blanks(line).len();
        let (open, close, _) = cpu_column(line, lead)?;
        Some((
            ftrace_head(line, lead, open, close),
            general_head(line, lead, open, close),
        ))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
        /// Where the fast reader of the common ftrace line gives a head, it is
        /// the general reader's, on lines near and off the common layout.
        #[test]
        fn the_fast_ftrace_head_is_the_general_one(
            comm in "[a-z :/.()0-9-]{0,18}",
            pid in "[0-9]{0,12}",
            tgid in proptest::option::of("[0-9 -]{1,6}"),
            pad in " {0,8}",
            flags in proptest::option::of("[.dNhs0-9:]{1,6}"),
            secs in "[0-9]{0,21}",
            frac in "[0-9]{0,11}",
            colon in proptest::bool::ANY,
            name in "(mm_page_alloc|mm_page_free|kmem:mm_page_free|sched_switch|x:y)?",
            sep in "[ :]{0,2}",
            fields in "[a-z=0-9 ]{0,20}",
        ) {
            let tg = tgid.map(|t| format!(" ({t})")).unwrap_or_default();
            let fl = flags.map(|f| format!("{f} ")).unwrap_or_default();
            let c = if colon { ":" } else { "" };
            let line = format!("{pad}{comm}-{pid}{tg} [001] {fl}{secs}.{frac}{c} {name}{sep}{fields}");
            if let Some((Some(f), general)) = heads(line.as_bytes()) {
                prop_assert_eq!(Ok(f), general, "{}", line);
            }
        }
    }

    #[test]
    fn the_fast_reader_takes_the_common_line() {
        let line = b"      opt cgu.0-1234    [001] d..2. 4087.123456: mm_page_alloc: page=0x1 pfn=0x10 order=0";
        let (fast, general) = heads(line).unwrap();
        let f = fast.expect("the common layout is read by the fast path");
        assert_eq!(Ok(f), general);
        let (fast, _) = heads(b"  sh-1 (1) [001] d..2. 1.5: mm_page_free: pfn=0x1").unwrap();
        assert!(fast.is_none(), "a tgid column is the general reader's");
    }
}
