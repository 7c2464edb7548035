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
//! Line formats (the `TP_printk` formats of `include/trace/events/kmem.h`):
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
//!
//! The module's files: `line` parses one line of either format, `mmflags`
//! maps the kernel's gfp flag names (as
//! `include/trace/events/mmflags.h` prints them) to kmm's bits, and this
//! file holds the streaming importer and its counts.

pub mod extfrag;
mod line;
mod lines;
mod mmflags;
#[cfg(test)]
mod tests;

pub use line::{
    parse_line, parse_line_with, Event, EventKind, Format, GfpCache, Line, EVENT_NAMES,
};
pub use lines::{LineSplitter, MAX_LINE};
pub use mmflags::map_gfp;

use crate::error::{Error, Result};
use crate::replay::{TraceOp, OP_ALLOC, OP_FREE, TRACE_RECORD_SIZE};
use crate::MAX_ORDER;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

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

/// The streaming importer: kernel event text in, kmm records out.
pub struct Importer {
    split: LineSplitter,
    /// pfn -> (object id, order) of live objects, or FREED / FREED_BATCHED.
    pages: PfnMap<(u32, u8)>,
    next_obj: u32,
    out: Vec<u8>,
    gfp_cache: GfpCache,
    /// Freed object ids to hand out again ([`Importer::reuse_object_ids`]).
    reuse_ids: bool,
    free_ids: Vec<u32>,
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
            split: LineSplitter::default(),
            pages: PfnMap::default(),
            next_obj: 0,
            out: Vec::new(),
            gfp_cache: GfpCache::default(),
            reuse_ids: false,
            free_ids: Vec::new(),
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
    pub fn feed(&mut self, chunk: &[u8]) -> Result<()> {
        let mut split = std::mem::take(&mut self.split);
        let r = split.feed(chunk, |l| self.line(l));
        self.split = split;
        r
    }

    /// End of input: handle a last line without newline (a trace cut mid-line
    /// is counted as `truncated_last_line` when it does not parse), then refuse
    /// an input of which nothing parsed.
    pub fn finish(&mut self) -> Result<()> {
        if let Some(line) = self.split.finish() {
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
        if self.reuse_ids {
            self.free_ids.push(obj);
        }
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
        self.event(&ev);
        Ok(())
    }

    /// Count one parsed page event (not a marker) and turn it into kmm
    /// records: the importer's rules without its line reading, for a reader
    /// that parses lines itself (the real-trace replay's window).
    pub fn event(&mut self, ev: &Event) {
        self.stats.events[ev.kind as usize] += 1;
        match ev.kind {
            EventKind::Alloc => self.alloc(ev),
            EventKind::Free => self.free(ev, false),
            EventKind::FreeBatched => self.free(ev, true),
            _ => {}
        }
    }

    /// Give new objects the ids of freed ones (lowest-freed-last first), so
    /// that ids stay below the peak number of live objects: a replay's object
    /// table is then bounded by the live objects, not by the trace length.
    pub fn reuse_object_ids(&mut self) {
        self.reuse_ids = true;
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
        if let Some(&(old, _)) = self.pages.get(&ev.pfn) {
            if old < FREED_BATCHED {
                self.stats.alloc_of_allocated += 1;
                self.free_obj(old, ev);
            }
        }
        let obj = match self.free_ids.pop() {
            Some(id) => id,
            None => {
                let id = self.next_obj;
                self.next_obj = self.next_obj.wrapping_add(1);
                if self.next_obj >= FREED_BATCHED {
                    self.next_obj = 0; // 4 G objects: ids of long-freed objects are reused
                }
                id
            }
        };
        self.pages.insert(ev.pfn, (obj, ev.order as u8));
        self.emit(TraceOp {
            op: OP_ALLOC,
            order: ev.order as u8,
            flags: 0,
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
