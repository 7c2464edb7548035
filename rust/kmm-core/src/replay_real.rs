//! Replay of a real kernel's kmem page events (ftrace or `perf script` text,
//! [`crate::ftrace`]) from a snapshot of that machine, in two placements:
//!
//! - **recorded**: the kernel's own pfns. Every pfn has a state (reserved,
//!   free on the buddy lists, on a per-cpu list, taken off the buddy lists,
//!   allocated, or "as the snapshot had it"), and the events move pages
//!   between them by the rules that hold on 6.x kernels (see `docs/real.md`;
//!   the tracepoints are in `include/trace/events/kmem.h`, their call sites
//!   in `mm/page_alloc.c`):
//!   `mm_page_alloc_zone_locked` takes the block off the buddy lists (to a
//!   per-cpu list when `percpu_refill=1`, else to its caller);
//!   `mm_page_pcpu_drain` puts it back; `mm_page_free` of an order the
//!   per-cpu lists hold (0 to 3 and the pageblock order, `pcp_allowed_order`)
//!   puts it on a per-cpu list, of any other order back on the buddy lists;
//!   `mm_page_alloc` moves nothing to or from the buddy lists (its page came
//!   from a per-cpu list or was taken off already); the 6.x
//!   `mm_page_free_batched` that repeats an `mm_page_free` is counted once.
//!   An event whose pages are not in the state the rule expects (an
//!   allocation of a page kmm holds as allocated, a refill from a page kmm
//!   does not hold free, ...) is a *divergence*: counted per reason with its
//!   first examples, and then the event's outcome is applied anyway, so the
//!   state follows the real machine. The free pfns at the end are the
//!   buddy-state pages; [`RealReplay::end_kpageflags`] turns the state back
//!   into kpageflags words so that `Machine::from_snapshot` builds the end
//!   machine.
//! - **policy**: the events become kmm trace records (the importer's rules,
//!   object ids reused after frees so a replay's object table is bounded by
//!   the live objects) which the caller replays on a machine of each
//!   allocator, built from the same snapshot.
//!
//! The window: the events after the start snapshot's `kmm-snapshot LABEL end`
//! marker and before the end snapshot's `kmm-snapshot LABEL begin` marker
//! (either may be absent: from the trace's start, to its end). Streamed: the
//! memory is one state byte per pfn, the importer's map of live pfns, and one
//! partial line.

use crate::error::{Error, Result};
use crate::ftrace::{parse_line_with, Event, EventKind, GfpCache, Importer, Line, LineSplitter};
use crate::mm::kpageflags::{
    classify, PageClass, KPF_BUDDY, KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, KPF_LRU, KPF_SLAB,
};

// pfn states (low 3 bits of the state byte)
const S_RESV: u8 = 0;
const S_FREE: u8 = 1;
const S_PCP: u8 = 2;
const S_ALLOC: u8 = 3;
/// Taken off the buddy lists for a caller (`percpu_refill=0`), not yet allocated.
const S_TAKEN: u8 = 4;
/// Allocated (or on a per-cpu list) in the snapshot, untouched since.
const S_SNAP: u8 = 5;
const S_MASK: u8 = 7;
/// Migratetype of the allocation (bits 3-4).
const MT_SHIFT: u8 = 3;
/// Head / tail of a multi-page allocation.
const HEAD: u8 = 1 << 5;
const TAIL: u8 = 1 << 6;
/// The last event of this pfn was its `mm_page_free` (a batched repeat follows in 6.x).
const FREED_EV: u8 = 1 << 7;

/// State names, by state number (for examples and the binding).
pub const STATE_NAMES: [&str; 6] = ["reserved", "free", "pcp", "allocated", "taken", "snapshot"];

/// The pageblock order of x86-64 (the per-cpu lists also hold this order).
const PAGEBLOCK_ORDER: u32 = 9;
/// `PAGE_ALLOC_COSTLY_ORDER`: orders up to it have per-cpu lists.
const COSTLY_ORDER: u32 = 3;

/// Why an event disagreed with kmm's state.
pub const DIVERGENCES: [&str; 7] = [
    // mm_page_alloc_zone_locked of a page not on kmm's buddy lists
    "refill_not_free",
    // mm_page_alloc of a page on kmm's buddy lists (taken off without an event)
    "alloc_of_free",
    // mm_page_alloc of a page kmm holds as allocated (its free was not logged)
    "alloc_of_allocated",
    // mm_page_free of a page kmm holds as free (buddy or per-cpu)
    "free_of_free",
    // mm_page_pcpu_drain of a page already on kmm's buddy lists
    "drain_of_free",
    // mm_page_pcpu_drain of a page kmm holds as allocated
    "drain_of_allocated",
    // an event on a reserved page, a hole, or past the machine's end
    "reserved_or_outside",
];

/// One divergence example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub reason: &'static str,
    /// Input line (1-based).
    pub line: u64,
    pub event: &'static str,
    pub pfn: u64,
    pub order: u32,
    /// kmm's state of the first page that disagreed.
    pub found: &'static str,
}

/// Examples kept per reason.
const EXAMPLES_PER_REASON: usize = 3;

/// What a replay read and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RealReplayStats {
    pub lines: u64,
    /// Known page events before, inside and after the window.
    pub events_before: u64,
    pub events_in_window: u64,
    pub events_after: u64,
    /// Events inside the window per [`EventKind`] (markers excluded).
    pub events: [u64; 7],
    pub start_marker_line: Option<u64>,
    pub end_marker_line: Option<u64>,
    pub malformed: u64,
    pub lost_events: u64,
    pub truncated_last_line: bool,
    /// Recorded placement: divergences per reason (events, pages).
    pub divergences: [(u64, u64); 7],
    pub divergence_examples: Vec<Divergence>,
    /// `mm_page_free_batched` repeats of an `mm_page_free` (recorded placement).
    pub batched_duplicates: u64,
}

/// The start snapshot for the recorded placement: its kpageflags and its
/// zones' `[start, end)` pfn ranges.
pub type StartState<'a> = (&'a [u64], &'a [(u64, u64)]);

/// A recorded rule: the page states it expects, the divergence reason of a
/// page in another state, and the state it leaves the pages in.
type Rule = (fn(u8) -> bool, fn(u8) -> usize, u8);

/// The streaming reader of one real trace for both placements.
pub struct RealReplay {
    split: LineSplitter,
    gfp_cache: GfpCache,
    start_marker: Option<Vec<u8>>,
    end_marker: Option<Vec<u8>>,
    /// `kmm-snapshot LABEL kpageflags ` of the start and end snapshots.
    start_read: Option<Vec<u8>>,
    end_read: Option<Vec<u8>>,
    /// The pfn the start / end snapshot's kpageflags read had reached
    /// (the last `kpageflags PFN` marker), once its read began.
    start_cursor: Option<u64>,
    end_cursor: Option<u64>,
    /// 0 before the window, 1 inside, 2 after.
    phase: u8,
    state: Option<Vec<u8>>,
    importer: Option<Importer>,
    pub stats: RealReplayStats,
}

/// The state of a pfn as the snapshot's kpageflags word `f` says, `inside` a zone.
#[inline]
fn initial_state(f: u64, inside: bool) -> u8 {
    if !inside {
        return S_RESV;
    }
    match classify(f) {
        PageClass::Free => S_FREE,
        PageClass::Reserved => S_RESV,
        _ => S_SNAP,
    }
}

#[inline]
fn pcp_order(order: u32) -> bool {
    order <= COSTLY_ORDER || order == PAGEBLOCK_ORDER
}

impl RealReplay {
    /// A replay of the window between the markers `kmm-snapshot START end` and
    /// `kmm-snapshot END begin`. `start_kpageflags` and `zones` (`[start, end)`
    /// pfn ranges) are the start snapshot's, for the recorded placement;
    /// `policy` makes kmm trace records too ([`RealReplay::take_records`]).
    pub fn new(
        start_label: Option<&str>,
        end_label: Option<&str>,
        recorded: Option<StartState<'_>>,
        policy: bool,
    ) -> Result<RealReplay> {
        let state = match recorded {
            None => None,
            Some((kpf, zones)) => {
                for &(s, e) in zones {
                    if s > e || e > kpf.len() as u64 {
                        return Err(Error::Parse(format!(
                            "zone pfns {s}..{e} lie outside the {} pfns of kpageflags",
                            kpf.len()
                        )));
                    }
                }
                let mut inside = vec![false; kpf.len()];
                for &(s, e) in zones {
                    inside[s as usize..e as usize].fill(true);
                }
                Some(
                    kpf.iter()
                        .zip(&inside)
                        .map(|(&f, &i)| initial_state(f, i))
                        .collect(),
                )
            }
        };
        let importer = policy.then(|| {
            let mut im = Importer::new();
            im.reuse_object_ids();
            im
        });
        let marker = |l: Option<&str>, what: &str| {
            l.map(|l| format!("kmm-snapshot {l} {what}").into_bytes())
        };
        Ok(RealReplay {
            split: LineSplitter::default(),
            gfp_cache: GfpCache::default(),
            start_marker: marker(start_label, "end"),
            phase: if start_label.is_some() { 0 } else { 1 },
            end_marker: marker(end_label, "begin"),
            start_read: marker(start_label, "kpageflags "),
            end_read: marker(end_label, "kpageflags "),
            start_cursor: None,
            end_cursor: None,
            state,
            importer,
            stats: RealReplayStats::default(),
        })
    }

    /// Read the next bytes of the trace (a line may be cut between two chunks).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<()> {
        let mut split = std::mem::take(&mut self.split);
        let r = split.feed(chunk, |l| {
            self.line(l);
            Ok(())
        });
        self.split = split;
        r
    }

    /// End of the trace: the last line, then the checks that the window was
    /// found and held events.
    pub fn finish(&mut self) -> Result<()> {
        if let Some(line) = self.split.finish() {
            let before = self.stats.malformed;
            self.line(&line);
            if self.stats.malformed > before {
                self.stats.truncated_last_line = true;
            }
        }
        let known =
            self.stats.events_before + self.stats.events_in_window + self.stats.events_after;
        if known == 0 {
            return Err(Error::Parse(format!(
                "no kmem page event in {} lines: not a kernel trace of the kmem events",
                self.stats.lines
            )));
        }
        if let Some(m) = &self.start_marker {
            if self.stats.start_marker_line.is_none() {
                return Err(Error::Parse(format!(
                    "the trace has no {:?} marker ({} lines read): it does not contain the start snapshot",
                    String::from_utf8_lossy(m),
                    self.stats.lines
                )));
            }
        }
        if let Some(m) = &self.end_marker {
            if self.stats.end_marker_line.is_none() {
                return Err(Error::Parse(format!(
                    "the trace has no {:?} marker after the start ({} lines read): it does not reach the end snapshot",
                    String::from_utf8_lossy(m),
                    self.stats.lines
                )));
            }
        }
        if let Some(im) = self.importer.as_mut() {
            im.stats.lines = self.stats.lines;
        }
        Ok(())
    }

    /// Policy placement: the kmm records produced since the last call.
    pub fn take_records(&mut self) -> Vec<u8> {
        self.importer
            .as_mut()
            .map(|im| im.take_records())
            .unwrap_or_default()
    }

    /// Policy placement: the importer (its counts: allocations, frees, skips).
    pub fn importer(&self) -> Option<&Importer> {
        self.importer.as_ref()
    }

    fn line(&mut self, line: &[u8]) {
        self.stats.lines += 1;
        let ev = match parse_line_with(line, &mut self.gfp_cache) {
            Line::Event(ev, fields) => {
                if ev.kind == EventKind::Marker {
                    self.marker(fields);
                    return;
                }
                ev
            }
            Line::Lost(n) => {
                self.stats.lost_events += n;
                return;
            }
            Line::Malformed(_) => {
                self.stats.malformed += 1;
                return;
            }
            _ => return,
        };
        if !self.in_window(&ev) {
            if self.phase == 0 {
                self.stats.events_before += 1;
            } else {
                self.stats.events_after += 1;
            }
            return;
        }
        self.stats.events_in_window += 1;
        self.stats.events[ev.kind as usize] += 1;
        if self.state.is_some() {
            self.apply(&ev);
        }
        if let Some(im) = self.importer.as_mut() {
            im.event(&ev);
        }
    }

    /// Whether the event falls in the window. Without the snapshots'
    /// `kpageflags PFN` markers the window is from the start's `end` marker to
    /// the end's `begin` marker. With them, an event during the start's read
    /// counts when its pfn had been read already (the snapshot could not see
    /// it), one during the end's read when its pfn was not read yet; a pfn in
    /// the chunk being read counts as read after the event. (Events between
    /// the end's `begin` marker and its first `kpageflags` marker, while the
    /// small files are read, are left out.)
    #[inline]
    fn in_window(&self, ev: &Event) -> bool {
        match self.phase {
            0 => self.start_cursor.is_some_and(|c| ev.pfn < c),
            1 => true,
            _ => self.end_cursor.is_some_and(|c| ev.pfn >= c),
        }
    }

    fn marker(&mut self, fields: &[u8]) {
        let text = fields.trim_ascii();
        let cursor = |prefix: &Option<Vec<u8>>| {
            let p = prefix.as_deref()?;
            let rest = text.strip_prefix(p)?;
            std::str::from_utf8(rest).ok()?.parse::<u64>().ok()
        };
        if self.phase == 0 {
            if let Some(c) = cursor(&self.start_read) {
                self.start_cursor = Some(c);
                return;
            }
        }
        if self.phase == 2 {
            if let Some(c) = cursor(&self.end_read) {
                self.end_cursor = Some(c);
                return;
            }
        }
        if self.phase == 0 && self.start_marker.as_deref() == Some(text) {
            self.phase = 1;
            self.stats.start_marker_line = Some(self.stats.lines);
        } else if self.phase == 1 && self.end_marker.as_deref() == Some(text) {
            self.phase = 2;
            self.stats.end_marker_line = Some(self.stats.lines);
        }
    }

    fn diverge(&mut self, reason: usize, ev: &Event, found: u8, pages: u64) {
        let d = &mut self.stats.divergences[reason];
        if d.0 < EXAMPLES_PER_REASON as u64 {
            self.stats.divergence_examples.push(Divergence {
                reason: DIVERGENCES[reason],
                line: self.stats.lines,
                event: ev.kind.name(),
                pfn: ev.pfn,
                order: ev.order,
                found: STATE_NAMES[(found & S_MASK) as usize],
            });
        }
        d.0 += 1;
        d.1 += pages;
    }

    /// Recorded placement: move the event's pages by the rules of the module docs.
    fn apply(&mut self, ev: &Event) {
        let state = self.state.as_mut().expect("recorded placement");
        let (kind, pfn, order) = (ev.kind, ev.pfn, ev.order);
        if matches!(kind, EventKind::Extfrag) {
            return;
        }
        if kind == EventKind::Alloc && (ev.null_page || pfn == 0) {
            return; // a failed allocation
        }
        let n = if order < 16 { 1u64 << order } else { u64::MAX };
        if pfn.checked_add(n).is_none_or(|e| e > state.len() as u64) {
            self.diverge(6, ev, S_RESV, 0);
            return;
        }
        let (s, e) = (pfn as usize, (pfn + n) as usize);
        let pages = &mut state[s..e];
        if kind == EventKind::FreeBatched && pages[0] & FREED_EV != 0 {
            pages[0] &= !FREED_EV;
            self.stats.batched_duplicates += 1;
            return;
        }
        // expected states and the new state
        let (ok, reason_of, new): Rule = match kind {
            EventKind::AllocZoneLocked => (
                |st| st == S_FREE,
                |_| 0,
                if ev.percpu_refill > 0 { S_PCP } else { S_TAKEN },
            ),
            EventKind::Alloc => (
                |st| matches!(st, S_PCP | S_TAKEN | S_SNAP),
                |st| if st == S_FREE { 1 } else { 2 },
                S_ALLOC,
            ),
            EventKind::Free | EventKind::FreeBatched => (
                |st| matches!(st, S_ALLOC | S_TAKEN | S_SNAP),
                |_| 3,
                if pcp_order(order) { S_PCP } else { S_FREE },
            ),
            EventKind::PcpuDrain => (
                |st| matches!(st, S_PCP | S_SNAP),
                |st| if st == S_FREE { 4 } else { 5 },
                S_FREE,
            ),
            EventKind::Extfrag | EventKind::Marker => return,
        };
        let mut bad = 0u64;
        let mut first = None;
        let mut resv = false;
        for &p in pages.iter() {
            let st = p & S_MASK;
            if st == S_RESV {
                resv = true;
                first.get_or_insert(st);
            } else if !ok(st) {
                bad += 1;
                first.get_or_insert(st);
            }
        }
        let mt = (ev.migratetype.clamp(0, 3) as u8) << MT_SHIFT;
        for (i, p) in pages.iter_mut().enumerate() {
            if *p & S_MASK == S_RESV {
                continue; // reserved and holes stay so: they are not the buddy allocator's
            }
            *p = if new == S_ALLOC {
                S_ALLOC
                    | mt
                    | if n == 1 {
                        0
                    } else if i == 0 {
                        HEAD
                    } else {
                        TAIL
                    }
            } else {
                new
            };
        }
        if kind == EventKind::Free {
            pages[0] |= FREED_EV;
        }
        if resv {
            self.diverge(6, ev, S_RESV, n);
        } else if let Some(st) = first {
            self.diverge(reason_of(st), ev, st, bad);
        }
    }

    /// Recorded placement: per pfn, the state number (see [`STATE_NAMES`]).
    pub fn states(&self) -> Option<Vec<u8>> {
        self.state
            .as_ref()
            .map(|s| s.iter().map(|&b| b & S_MASK).collect())
    }

    /// Recorded placement: the end state as kpageflags words, for
    /// `Machine::from_snapshot`: free pages carry BUDDY; pages the trace
    /// allocated carry LRU (migratetype Movable), SLAB (Reclaimable) or a
    /// kernel-only bit (PGTABLE: Unmovable, HighAtomic), with compound head
    /// and tail bits on multi-page blocks; per-cpu and taken pages carry the
    /// kernel-only bit; untouched pages keep the snapshot's word.
    pub fn end_kpageflags(&self, start: &[u64]) -> Option<Vec<u64>> {
        const KERNEL: u64 = 1 << 26; // KPF_PGTABLE: an unmovable kernel page
        let state = self.state.as_ref()?;
        Some(
            state
                .iter()
                .zip(start)
                .map(|(&b, &f)| match b & S_MASK {
                    S_FREE => 1 << KPF_BUDDY,
                    S_PCP | S_TAKEN => KERNEL,
                    S_ALLOC => {
                        let class = match (b >> MT_SHIFT) & 3 {
                            1 => 1 << KPF_LRU,
                            2 => 1 << KPF_SLAB,
                            _ => KERNEL,
                        };
                        class
                            | if b & HEAD != 0 {
                                1 << KPF_COMPOUND_HEAD
                            } else {
                                0
                            }
                            | if b & TAIL != 0 {
                                1 << KPF_COMPOUND_TAIL
                            } else {
                                0
                            }
                    }
                    _ => f & !(1 << KPF_BUDDY),
                })
                .collect(),
        )
    }
}

#[cfg(test)]
#[path = "replay_real_tests.rs"]
mod tests;
