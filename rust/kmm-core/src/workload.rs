//! The workload generator's merge and emission (`kmm.workloads.Load`).
//!
//! The Python models (`python/kmm/workloads/`) generate *events* one window of
//! simulated time at a time (a second); an event may fall in any later window
//! (a process's whole life is generated when it starts). The [`Emitter`] keeps
//! them in per-window buckets in generation order, orders a window's events by
//! millisecond (stable: generation order inside a millisecond, so an object's
//! alloc, touches and free stay in that order), resolves each page-cache or
//! slab-cache *access* into the first allocation of that object or a touch,
//! follows an allocation that pins an inode with its `OP_SLAB_PIN`, maps each
//! event's kind to its GFP mask, page_owner stack and slab cache, and writes
//! the `TRACE_DTYPE` records with a 1 ms `OP_TICK` after each millisecond's
//! operations. It also remembers which objects processes own (freed by
//! [`Emitter::stop`]) and which are caches (freed by [`Emitter::drop_caches`]).
//!
//! No allocation per event and no copy but the ones the order needs: events
//! are made (a process's, from its draws: [`Procs`]; touches, from theirs:
//! [`Touches`]) or decoded straight into the bucket of their window, one
//! vector per window; [`Emitter::ready`] orders a window into one vector
//! reused, and grows the per-object state (a byte of flags and a pid) to the
//! window's highest object id once; [`Emitter::reserve_until`] sizes the
//! output of a whole `run_until` once.

use crate::error::{Error, Result};
use crate::replay::{
    OP_ALLOC, OP_FREE, OP_SLAB_ALLOC, OP_SLAB_FREE, OP_SLAB_PIN, OP_TICK, OP_TOUCH, TF_TASK,
    TF_UNEVICTABLE, TRACE_RECORD_SIZE,
};
use std::collections::VecDeque;

pub mod jobserver;
mod pcg;
mod procs;
mod touches;
pub use pcg::{seed_sequence, Pcg64};
pub use procs::{anon_times, Procs, Text};
pub use touches::Touches;

/// Bytes of one event (`kmm.workloads.events.EV`): t i64, op, order, kind,
/// proc u8, obj, pid, pin u32, packed little-endian.
pub const EVENT_SIZE: usize = 24;
/// Event op of a cache access (resolved at emission into OP_ALLOC or OP_TOUCH).
pub const OP_ACCESS: u8 = 5;
/// No pin target (the `pin` field of an event).
pub const NO_PIN: u32 = u32::MAX;
/// Microseconds in a millisecond slot, and in a generation window.
pub const MS: i64 = 1_000;
pub const WIN_US: i64 = 1_000_000;
const SLOTS: usize = (WIN_US / MS) as usize;
/// Events may fall at most this many windows after the one generating them.
pub const MAX_AHEAD: i64 = 1 << 16;
/// A kind that is a block of pages, not a slab object (`kinds.KIND_CACHE_ARR`).
pub const NO_CACHE: u8 = 255;

const CACHE: u8 = 1; // cache object allocated (first access done)
const LIVE: u8 = 2; // process object allocated now
const SLAB: u8 = 4; // object is a slab object
const PINNER: u8 = 8; // cache object pins an inode
const MAPPED: u8 = 16; // cache page a permanent process maps

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Event {
    t: i64,
    op: u8,
    order: u8,
    kind: u8,
    proc_: u8,
    obj: u32,
    pid: u32,
    pin: u32,
}

impl Event {
    /// The time and kind of an encoded event (what [`Emitter::push`] checks).
    #[inline]
    fn time_kind(b: &[u8]) -> (i64, u8) {
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[0..8]);
        (i64::from_le_bytes(t), b[10])
    }

    #[inline]
    fn decode(b: &[u8; EVENT_SIZE]) -> Event {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[0..8]);
        Event {
            t: i64::from_le_bytes(t),
            op: b[8],
            order: b[9],
            kind: b[10],
            proc_: b[11],
            obj: u32_at(12),
            pid: u32_at(16),
            pin: u32_at(20),
        }
    }
}

/// Per kind: slab cache (or [`NO_CACHE`]), GFP mask and page_owner stack.
#[derive(Clone, Debug)]
pub struct KindTable {
    pub cache: Vec<u8>,
    pub gfp: Vec<u32>,
    pub stack: Vec<u32>,
    /// Trace flags an owned allocation of the kind carries besides `TF_TASK`
    /// (`TF_UNEVICTABLE` for `kmm.workloads.resident`'s pages); empty: none.
    pub flags: Vec<u8>,
}

/// One kind's row of the [`KindTable`], as the emission reads it.
#[derive(Clone, Copy, Debug, Default)]
struct KindRow {
    cache: u8,
    flags: u8,
    gfp: u32,
    stack: u32,
}

/// What a window's events are made of as they are filed, and ordered by
/// when the window is emitted.
trait Sink {
    /// An event.
    fn put(&mut self, e: Event);
    /// A touch of page `page` of the source being filed (its object `obj`,
    /// given for the window's highest id) at `t` us.
    fn touch(&mut self, page: u32, t: i64, obj: u32);
}

/// A touch kept for a later window (8 bytes, not an [`Event`]'s 24: most
/// of what a long-lived process's generation holds ahead is its pages'
/// touches): page `page` of its source, `t_off` us into the window.
#[derive(Clone, Copy, Debug)]
struct Touch {
    page: u32,
    t_off: u32,
}

/// The touches of one source (a `push_procs` or `push_touches`) a bucket
/// holds, `touches[previous mark's end..end]`: they come before `ev[at]`.
#[derive(Clone, Copy, Debug)]
struct Mark {
    at: u32,
    src: u32,
    end: u32,
}

/// The pages whose touches one push filed: each page's (object id, pid),
/// the touches' kind and proc; `refs`: the marks naming it.
#[derive(Debug, Default)]
struct TouchSrc {
    pages: Vec<[u32; 2]>,
    kind: u8,
    proc_: u8,
    refs: u32,
}

/// The events of one window, in generation order (touches apart, each
/// source's at its mark); how many pin an inode, how many fall in each of
/// its milliseconds and the highest object id (counted as they are filed,
/// so that ordering the window reads its events once).
#[derive(Debug)]
struct Bucket {
    ev: Vec<Event>,
    touches: Vec<Touch>,
    marks: Vec<Mark>,
    pins: usize,
    counts: Box<[u32; SLOTS]>,
    top: u32,
}

impl Bucket {
    fn new(ev: Vec<Event>, touches: Vec<Touch>, counts: Option<Box<[u32; SLOTS]>>) -> Bucket {
        Bucket {
            ev,
            touches,
            marks: Vec::new(),
            pins: 0,
            counts: counts.unwrap_or_else(|| Box::new([0; SLOTS])),
            top: 0,
        }
    }

    fn len(&self) -> usize {
        self.ev.len() + self.touches.len()
    }
}

/// Merges generated events in time and writes them as trace records.
#[derive(Debug)]
pub struct Emitter {
    nkinds: usize,
    /// indexed by the kind byte: no bounds test (kinds past `nkinds` are refused at push)
    rows: Box<[KindRow; 256]>,
    /// buckets[i]: events of window `base_w + i`
    buckets: VecDeque<Bucket>,
    base_w: i64,
    /// the window being emitted, ordered by millisecond; slot_end[j]: end of slot j
    ready: Vec<Event>,
    ready_pins: usize,
    slot_end: [u32; SLOTS],
    ready_w: i64,
    pos: usize,
    now_us: i64,
    flags: Vec<u8>,
    pid_of: Vec<u32>,
    /// a bit per pid: processes that outlive stop()
    perm: Vec<u64>,
    /// events from this time on are not kept ([`Emitter::set_end`]): the
    /// load is never emitted past it
    keep_before: i64,
    end_us: i64,
    stopped: bool,
    /// the sources of the touches the buckets hold, by index; free ones
    srcs: Vec<TouchSrc>,
    free_srcs: Vec<u32>,
    /// emptied buckets' vectors and counts, reused for new windows (their memory stays mapped)
    spare: Vec<Vec<Event>>,
    spare_touches: Vec<Vec<Touch>>,
    #[allow(clippy::vec_box)] // a bucket takes the box: 4 KiB not copied
    spare_counts: Vec<Box<[u32; SLOTS]>>,
    /// about how many events and touches a window has (the recent windows' most)
    typical: usize,
    typical_touches: usize,
    /// what a filer of no touches counts its marks in (none)
    no_refs: u32,
    out: Vec<u8>,
}

impl Emitter {
    pub fn new(kinds: KindTable) -> Result<Emitter> {
        let n = kinds.cache.len();
        if n == 0
            || kinds.gfp.len() != n
            || kinds.stack.len() != n
            || (!kinds.flags.is_empty() && kinds.flags.len() != n)
            || n > 256
        {
            return Err(Error::Config(
                "kind tables must have one cache, gfp and stack (and flags, if any) per kind (at most 256)"
                    .into(),
            ));
        }
        if kinds.flags.iter().any(|&f| f & !TF_UNEVICTABLE != 0) {
            return Err(Error::Config(
                "a kind's flags may only be TF_UNEVICTABLE (2) or 0".into(),
            ));
        }
        let mut rows = Box::new([KindRow::default(); 256]);
        for (k, r) in rows.iter_mut().enumerate().take(n) {
            *r = KindRow {
                cache: kinds.cache[k],
                flags: kinds.flags.get(k).copied().unwrap_or(0),
                gfp: kinds.gfp[k],
                stack: kinds.stack[k],
            };
        }
        Ok(Emitter {
            nkinds: n,
            rows,
            buckets: VecDeque::new(),
            base_w: 0,
            ready: Vec::new(),
            ready_pins: 0,
            slot_end: [0; SLOTS],
            ready_w: -1,
            pos: 0,
            now_us: 0,
            flags: Vec::new(),
            pid_of: Vec::new(),
            perm: Vec::new(),
            keep_before: i64::MAX,
            end_us: i64::MAX,
            stopped: false,
            srcs: Vec::new(),
            free_srcs: Vec::new(),
            spare: Vec::new(),
            spare_touches: Vec::new(),
            spare_counts: Vec::new(),
            typical: 0,
            typical_touches: 0,
            no_refs: 0,
            out: Vec::new(),
        })
    }

    /// Simulated time emitted so far, in microseconds.
    pub fn now_us(&self) -> i64 {
        self.now_us
    }

    /// The load is never emitted past `end_us`: events from the end of its
    /// millisecond on are dropped as they are pushed (they would never be
    /// emitted), so a process's events past the run's end cost nothing kept.
    /// The end cannot move later once set, nor before what was emitted.
    pub fn set_end(&mut self, end_us: i64) -> Result<()> {
        if end_us < self.now_us || end_us > self.end_us {
            return Err(Error::Config(format!(
                "the end {end_us} us must be between now ({} us) and the end set before ({} us)",
                self.now_us, self.end_us
            )));
        }
        self.end_us = end_us;
        self.keep_before = end_us.div_euclid(MS) * MS + if end_us % MS == 0 { 0 } else { MS };
        Ok(())
    }

    /// Add the events generated in window `g` (`EVENT_SIZE`-byte records, in
    /// generation order). Every event must fall in a window from `g` on, before
    /// `g + MAX_AHEAD`, and `g` must not be before a window already emitted;
    /// a bad event changes nothing (all are checked before any is filed).
    pub fn push(&mut self, g: i64, events: &[u8]) -> Result<()> {
        if events.len() % EVENT_SIZE != 0 {
            return Err(Error::Trace(format!(
                "event bytes must be a multiple of {EVENT_SIZE}, got {}",
                events.len()
            )));
        }
        let (lo, hi) = self.horizon(g)?;
        let mut last = lo;
        for r in events.chunks_exact(EVENT_SIZE) {
            let (t, kind) = Event::time_kind(r);
            if kind as usize >= self.nkinds {
                return Err(Error::Trace(format!(
                    "workload event of unknown kind {kind}"
                )));
            }
            if t < lo || t >= hi {
                return Err(Error::Trace(format!(
                    "workload generated an event at {t} us, outside the horizon of window {g}"
                )));
            }
            last = last.max(t);
        }
        let mut f = self.filer(last, NO_SRC);
        for r in events.chunks_exact(EVENT_SIZE) {
            let e = Event::decode(r.try_into().expect("a record"));
            f.put_pinning(e);
        }
        Ok(())
    }

    /// Add the touches generated in window `g` (as [`Emitter::push`] adds
    /// events, page by page in draw order), without their event records.
    pub fn push_touches(&mut self, g: i64, touches: Touches<'_>) -> Result<()> {
        let (lo, hi) = self.horizon(g)?;
        touches.check(lo, hi, self.nkinds)?;
        let last = touches.t1.iter().copied().max().unwrap_or(lo);
        let src = self.new_src(touches.kind, touches.proc_, |p| touches.pages(p));
        let mut f = self.filer(last, src);
        touches.for_each(&mut f);
        self.settle_src(src);
        Ok(())
    }

    /// Add the events of processes generated in window `g` (as [`Emitter::push`]
    /// adds the events of their arrays), made from their draws here.
    pub fn push_procs(&mut self, g: i64, procs: &Procs<'_>) -> Result<()> {
        let (lo, hi) = self.horizon(g)?;
        procs.check(lo, hi, self.nkinds)?;
        let last = procs.end.iter().copied().max().unwrap_or(lo);
        let src = self.new_src(procs.k_anon, procs.own, |p| procs.pages(p));
        let mut f = self.filer(last, src);
        procs.for_each(&mut f);
        self.settle_src(src);
        Ok(())
    }

    /// A source for the touches about to be filed, its pages listed by `pages`.
    fn new_src(&mut self, kind: u8, proc_: u8, pages: impl FnOnce(&mut Vec<[u32; 2]>)) -> u32 {
        let i = self.free_srcs.pop().unwrap_or_else(|| {
            self.srcs.push(TouchSrc::default());
            (self.srcs.len() - 1) as u32
        });
        let s = &mut self.srcs[i as usize];
        pages(&mut s.pages);
        s.kind = kind;
        s.proc_ = proc_;
        s.refs = 0;
        i
    }

    /// A source no bucket names (every touch of it dropped, or none) is free again.
    fn settle_src(&mut self, src: u32) {
        if self.srcs[src as usize].refs == 0 {
            self.free_src(src);
        }
    }

    fn free_src(&mut self, src: u32) {
        let s = &mut self.srcs[src as usize];
        s.pages.clear();
        if s.pages.capacity() > SRC_PAGES_KEPT {
            s.pages = Vec::new();
        }
        self.free_srcs.push(src);
    }

    /// The times window `g`'s events may have, `[lo, hi)`.
    fn horizon(&self, g: i64) -> Result<(i64, i64)> {
        if g < self.base_w {
            return Err(Error::Trace(format!(
                "events of window {g} come after window {} was emitted",
                self.base_w
            )));
        }
        Ok((g * WIN_US, (g + MAX_AHEAD) * WIN_US))
    }

    /// A filer of checked events that fall at most at `last` us (its touches
    /// of source `src`): the buckets up to `last`'s window (or the end's) exist.
    fn filer(&mut self, last: i64, src: u32) -> Filer<'_> {
        let keep = self.keep_before;
        let last_w = last.min(keep - 1).div_euclid(WIN_US);
        let need = (last_w - self.base_w + 1).max(0) as usize;
        while self.buckets.len() < need {
            let mut ev = self.spare.pop().unwrap_or_default();
            if self.buckets.len() < GROW_AHEAD && ev.capacity() < self.typical {
                // a window soon emitted: room for a window's events at once
                ev.reserve(self.typical + self.typical / 8);
            }
            let mut touches = self.spare_touches.pop().unwrap_or_default();
            if self.buckets.len() < GROW_AHEAD && touches.capacity() < self.typical_touches {
                touches.reserve(self.typical_touches + self.typical_touches / 8);
            }
            let counts = self.spare_counts.pop();
            self.buckets.push_back(Bucket::new(ev, touches, counts));
        }
        Filer {
            buckets: self.buckets.make_contiguous(),
            base: self.base_w,
            keep,
            src,
            refs: match self.srcs.get_mut(src as usize) {
                Some(s) => &mut s.refs,
                None => &mut self.no_refs,
            },
        }
    }

    /// Make window `w` the one being emitted (every window before it done,
    /// every event of it pushed): its events ordered by millisecond.
    pub fn ready(&mut self, w: i64) -> Result<()> {
        if w == self.ready_w {
            return Ok(());
        }
        if w < self.base_w {
            return Err(Error::Trace(format!("window {w} was emitted already")));
        }
        while self.base_w < w {
            if let Some(b) = self.buckets.pop_front() {
                self.recycle(b);
            }
            self.base_w += 1;
        }
        // the window's bucket goes (one allocation per window, not per event)
        let Some(b) = self.buckets.pop_front() else {
            self.ready.clear();
            self.ready_pins = 0;
            self.slot_end = [0; SLOTS];
            self.ready_w = w;
            self.pos = 0;
            self.base_w = w + 1;
            return Ok(());
        };
        self.base_w = w + 1;
        // stable counting sort by millisecond slot, from the counts of filing
        let mut start = [0u32; SLOTS];
        let mut acc = 0u32;
        for ((s, e), &c) in start
            .iter_mut()
            .zip(self.slot_end.iter_mut())
            .zip(b.counts.iter())
        {
            *s = acc;
            acc += c;
            *e = acc;
        }
        let n = b.len();
        self.ready.clear();
        self.ready.reserve(n);
        let dst = &mut self.ready.spare_capacity_mut()[..n];
        let mut place = |e: Event| {
            let j = (e.t.rem_euclid(WIN_US) / MS) as usize;
            dst[start[j] as usize].write(e);
            start[j] += 1;
        };
        // the events in generation order: each source's touches at its mark
        let (mut at, mut lo) = (0usize, 0usize);
        let w0 = w * WIN_US;
        for m in &b.marks {
            for e in &b.ev[at..m.at as usize] {
                place(*e);
            }
            let src = &self.srcs[m.src as usize];
            for t in &b.touches[lo..m.end as usize] {
                let [obj, pid] = src.pages[t.page as usize];
                place(Event {
                    t: w0 + t.t_off as i64,
                    op: OP_TOUCH,
                    order: 0,
                    kind: src.kind,
                    proc_: src.proc_,
                    obj,
                    pid,
                    pin: NO_PIN,
                });
            }
            (at, lo) = (m.at as usize, m.end as usize);
        }
        for e in &b.ev[at..] {
            place(*e);
        }
        assert!(
            lo == b.touches.len(),
            "a window's marks do not cover its touches"
        );
        // every slot filled to its end: each of 0..n was written once
        assert!(
            acc as usize == n && start == self.slot_end,
            "a window's millisecond counts do not match its events"
        );
        // SAFETY: the slots partition 0..n (prefix sums of counts adding up
        // to n), and each slot's cursor ended at its end, so every index of
        // 0..n was written exactly once above
        unsafe { self.ready.set_len(n) };
        if n > 0 {
            self.grow(b.top);
        }
        self.ready_pins = b.pins;
        self.ready_w = w;
        self.pos = 0;
        let ntouch = b.touches.len();
        self.recycle(b);
        // the next windows get most of their events from now on: room for
        // about as many as this one had, once, rather than doubling into it
        let ne = n - ntouch;
        self.typical = ne.max(self.typical - self.typical / 8);
        self.typical_touches = ntouch.max(self.typical_touches - self.typical_touches / 8);
        let want = self.typical + self.typical / 8;
        let want_t = self.typical_touches + self.typical_touches / 8;
        for b in self.buckets.iter_mut().take(GROW_AHEAD) {
            if b.ev.capacity() < want {
                b.ev.reserve(want - b.ev.len());
            }
            if b.touches.capacity() < want_t {
                b.touches.reserve(want_t - b.touches.len());
            }
        }
        Ok(())
    }

    /// An emptied bucket's vectors kept for reuse, its sources released.
    fn recycle(&mut self, b: Bucket) {
        let Bucket {
            mut ev,
            mut touches,
            marks,
            mut counts,
            ..
        } = b;
        for m in &marks {
            let s = &mut self.srcs[m.src as usize];
            s.refs -= 1;
            if s.refs == 0 {
                self.free_src(m.src);
            }
        }
        if self.spare.len() < SPARE_BUCKETS && ev.capacity() > 0 {
            ev.clear();
            self.spare.push(ev);
        }
        if self.spare_touches.len() < SPARE_BUCKETS && touches.capacity() > 0 {
            touches.clear();
            self.spare_touches.push(touches);
        }
        if self.spare_counts.len() < SPARE_COUNTS {
            *counts = [0; SLOTS];
            self.spare_counts.push(counts);
        }
    }

    fn grow(&mut self, obj: u32) {
        let need = obj as usize + 1;
        if need > self.flags.len() {
            let size = need.max(2 * self.flags.len()).max(1 << 16);
            self.flags.resize(size, 0);
            self.pid_of.resize(size, 0);
        }
    }

    /// Make room in the output for every record from now to `t_us`, once
    /// (the events already pushed, their pins and the ticks): call it after
    /// every window up to `t_us` is pushed, before emitting them.
    pub fn reserve_until(&mut self, t_us: i64) {
        if t_us <= self.now_us {
            return;
        }
        let w_now = self.now_us.div_euclid(WIN_US);
        let w_last = (t_us - 1).div_euclid(WIN_US);
        let mut n = ((t_us - self.now_us) / MS + 2) as usize;
        if self.ready_w == w_now {
            n += self.ready.len() - self.pos + self.ready_pins;
        }
        for (i, b) in self.buckets.iter().enumerate() {
            let w = self.base_w + i as i64;
            if w > w_last {
                break;
            }
            if w >= w_now && w != self.ready_w {
                n += b.len() + b.pins;
            }
        }
        self.out.reserve(n * TRACE_RECORD_SIZE);
    }

    /// Append the records from now to `seg_end_us` (within the ready window)
    /// to the output: each millisecond's operations, then its tick.
    pub fn emit(&mut self, seg_end_us: i64) -> Result<()> {
        let w = self.ready_w;
        let now = self.now_us;
        if w < 0
            || now.div_euclid(WIN_US) != w
            || seg_end_us <= now
            || seg_end_us > (w + 1) * WIN_US
            || (seg_end_us > self.end_us && !self.stopped)
        {
            return Err(Error::Trace(format!(
                "cannot emit from {now} us to {seg_end_us} us in window {w}"
            )));
        }
        let j0 = now / MS;
        let j_end = (seg_end_us + MS - 1) / MS;
        let nslots = (j_end - j0) as usize;
        let base = w * SLOTS as i64;
        let stop = self.slot_end[(j_end - 1 - base) as usize] as usize;
        let mut out = std::mem::take(&mut self.out);
        out.reserve((stop.saturating_sub(self.pos) + self.ready_pins + nslots) * TRACE_RECORD_SIZE);
        let ready = std::mem::take(&mut self.ready);
        let mut pos = self.pos;
        for (k, j) in (j0..j_end).enumerate() {
            let end = (self.slot_end[(j - base) as usize] as usize).max(pos);
            for (i, e) in ready[pos..end].iter().enumerate() {
                // the object state of an event a few ahead: its cache line is
                // on the way while this one is emitted (object ids are scattered)
                if let Some(a) = ready.get(pos + i + PREFETCH_AHEAD) {
                    crate::mm::objects::prefetch(&self.flags, a.obj as usize);
                    crate::mm::objects::prefetch(&self.pid_of, a.obj as usize);
                }
                self.emit_event(&mut out, e);
            }
            pos = end;
            let tick = if k == 0 {
                seg_end_us.min((j0 + 1) * MS) - now
            } else if k == nslots - 1 {
                seg_end_us - (j_end - 1) * MS
            } else {
                MS
            };
            record(&mut out, OP_TICK, 0, 0, tick as u32, 0, 0, 0);
        }
        self.pos = pos;
        self.ready = ready;
        self.now_us = seg_end_us;
        self.out = out;
        Ok(())
    }

    /// The records appended since the last call (the bytes of `TRACE_DTYPE` records).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    #[inline]
    fn is_perm(&self, pid: u32) -> bool {
        self.perm
            .get(pid as usize >> 6)
            .is_some_and(|b| b >> (pid & 63) & 1 != 0)
    }

    /// One event's records; its object's state is grown already (ready()).
    #[inline]
    fn emit_event(&mut self, out: &mut Vec<u8>, e: &Event) {
        let row = self.rows[e.kind as usize];
        let slab = row.cache != NO_CACHE;
        let slab_flag = if slab { SLAB } else { 0 };
        let o = e.obj as usize;
        let mut f = self.flags[o];
        let mut op = e.op;
        if op == OP_ALLOC && e.proc_ == 0 {
            // a direct cache allocation (a new slab object, a written page)
            f = (f & !SLAB) | CACHE | slab_flag;
        }
        if e.proc_ == 2 {
            let i = e.pid as usize >> 6;
            if i >= self.perm.len() {
                self.perm.resize(i + 1, 0);
            }
            self.perm[i] |= 1 << (e.pid & 63);
        }
        if op == OP_ACCESS {
            if f & CACHE == 0 {
                op = OP_ALLOC; // the first access brings it into the cache
                f = (f & !SLAB) | CACHE | slab_flag;
            } else {
                op = OP_TOUCH;
            }
            if self.is_perm(e.pid) {
                f |= MAPPED;
            }
        }
        if e.proc_ == 1 {
            if op == OP_ALLOC {
                f = (f & !SLAB) | LIVE | slab_flag;
                self.pid_of[o] = e.pid;
            } else if op == OP_FREE {
                f &= !LIVE;
            }
        }
        let pins = op == OP_ALLOC && e.pin != NO_PIN;
        let mut out_op = op;
        let mut order = e.order;
        if slab {
            out_op = match op {
                OP_ALLOC => OP_SLAB_ALLOC,
                OP_FREE => OP_SLAB_FREE,
                x => x,
            };
            order = row.cache;
        }
        let owned = e.proc_ != 0 && (out_op == OP_ALLOC || out_op == OP_SLAB_ALLOC);
        let flags = if owned { TF_TASK | row.flags } else { 0 };
        record(out, out_op, order, flags, e.obj, row.gfp, row.stack, e.pid);
        if pins {
            f |= PINNER;
            record(out, OP_SLAB_PIN, 0, 0, e.obj, e.pin, 0, e.pid);
        }
        self.flags[o] = f;
    }

    /// Every process exits: appends the frees of the objects processes own
    /// now, by id. Later windows emit only ticks.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.buckets.clear();
        // no bucket names a source now
        self.srcs.clear();
        self.free_srcs.clear();
        self.ready.clear();
        self.ready_pins = 0;
        self.slot_end = [0; SLOTS];
        self.pos = 0;
        let mut out = std::mem::take(&mut self.out);
        for (o, f) in self.flags.iter_mut().enumerate() {
            if *f & LIVE != 0 {
                let op = if *f & SLAB != 0 {
                    OP_SLAB_FREE
                } else {
                    OP_FREE
                };
                let pid = self.pid_of[o];
                record(&mut out, op, 0, 0, o as u32, 0, 0, pid);
                *f &= !LIVE;
            }
        }
        self.out = out;
    }

    /// Appends the frees of every cache object no permanent process maps:
    /// first the objects pinning an inode, then the rest, each by id.
    pub fn drop_caches(&mut self) {
        let mut out = std::mem::take(&mut self.out);
        for pinners in [true, false] {
            for (o, f) in self.flags.iter_mut().enumerate() {
                if *f & CACHE != 0 && *f & MAPPED == 0 && (*f & PINNER != 0) == pinners {
                    let op = if *f & SLAB != 0 {
                        OP_SLAB_FREE
                    } else {
                        OP_FREE
                    };
                    record(&mut out, op, 0, 0, o as u32, 0, 0, 0);
                    *f &= !CACHE;
                }
            }
        }
        self.out = out;
    }

    /// Objects processes own that are allocated now.
    pub fn live_process_objects(&self) -> usize {
        self.flags.iter().filter(|&&f| f & LIVE != 0).count()
    }

    /// Cache objects allocated now.
    pub fn cache_objects(&self) -> usize {
        self.flags.iter().filter(|&&f| f & CACHE != 0).count()
    }

    /// What the emitter holds now: (events kept for windows not yet
    /// emitted, windows with a bucket, bytes of its vectors' capacity).
    pub fn held(&self) -> (usize, usize, usize) {
        let ev = std::mem::size_of::<Event>();
        let touch = std::mem::size_of::<Touch>();
        let pending = self.buckets.iter().map(Bucket::len).sum::<usize>()
            + self.ready.len().saturating_sub(self.pos);
        let bytes = self
            .buckets
            .iter()
            .map(|b| {
                b.ev.capacity() * ev
                    + b.touches.capacity() * touch
                    + b.marks.capacity() * std::mem::size_of::<Mark>()
                    + std::mem::size_of::<[u32; SLOTS]>()
            })
            .sum::<usize>()
            + self.spare.iter().map(|v| v.capacity() * ev).sum::<usize>()
            + self
                .spare_touches
                .iter()
                .map(|v| v.capacity() * touch)
                .sum::<usize>()
            + self
                .srcs
                .iter()
                .map(|s| s.pages.capacity() * 8)
                .sum::<usize>()
            + self.spare_counts.len() * std::mem::size_of::<[u32; SLOTS]>()
            + self.ready.capacity() * ev
            + self.flags.capacity()
            + self.pid_of.capacity() * 4
            + self.perm.capacity() * 8
            + self.out.capacity();
        (pending, self.buckets.len(), bytes)
    }
}

/// Files checked events in their buckets as they are made (no copy), the
/// touches of source `src` as [`Touch`]es at its marks (counted in `refs`).
struct Filer<'a> {
    buckets: &'a mut [Bucket],
    base: i64,
    keep: i64,
    src: u32,
    refs: &'a mut u32,
}

impl Filer<'_> {
    /// The bucket of a checked event (its time is from the first bucket's
    /// window on, so not negative), its millisecond counted.
    #[inline]
    fn bucket(&mut self, e: &Event) -> &mut Bucket {
        let t = e.t as u64;
        let b = &mut self.buckets[(t / WIN_US as u64) as usize - self.base as usize];
        b.counts[((t % WIN_US as u64) / MS as u64) as usize] += 1;
        b.top = b.top.max(e.obj);
        b
    }

    /// File an event that pins nothing (a process's, a touch).
    #[inline]
    fn put(&mut self, e: Event) {
        if e.t < self.keep {
            self.bucket(&e).ev.push(e);
        }
    }

    /// File an event that may pin an inode (counted: its pin is a record more).
    #[inline]
    fn put_pinning(&mut self, e: Event) {
        if e.t < self.keep {
            let b = self.bucket(&e);
            b.pins += (e.pin != NO_PIN) as usize;
            b.ev.push(e);
        }
    }
}

impl Sink for Filer<'_> {
    #[inline]
    fn put(&mut self, e: Event) {
        Filer::put(self, e)
    }

    #[inline]
    fn touch(&mut self, page: u32, t: i64, obj: u32) {
        if t >= self.keep {
            return;
        }
        debug_assert!(self.src != NO_SRC, "a touch filed without a source");
        let t = t as u64;
        let b = &mut self.buckets[(t / WIN_US as u64) as usize - self.base as usize];
        let off = t % WIN_US as u64;
        b.counts[(off / MS as u64) as usize] += 1;
        b.top = b.top.max(obj);
        let at = b.ev.len() as u32;
        match b.marks.last_mut() {
            Some(m) if m.src == self.src && m.at == at => m.end += 1,
            _ => {
                b.marks.push(Mark {
                    at,
                    src: self.src,
                    end: b.touches.len() as u32 + 1,
                });
                *self.refs += 1;
            }
        }
        b.touches.push(Touch {
            page,
            t_off: off as u32,
        });
    }
}

/// Emptied buckets kept for reuse.
const SPARE_BUCKETS: usize = 8;
/// The source of a filer that files no touches.
const NO_SRC: u32 = u32::MAX;
/// A freed source keeps its page table's memory up to this many pages.
const SRC_PAGES_KEPT: usize = 1 << 16;
/// Windows after the ready one whose buckets are grown to a window's size at once.
const GROW_AHEAD: usize = 16;
/// Emptied buckets' millisecond counts kept for reuse (4 KiB each).
const SPARE_COUNTS: usize = 64;

/// Events ahead whose object state emit() prefetches.
const PREFETCH_AHEAD: usize = 16;

#[allow(clippy::too_many_arguments)]
#[inline]
fn record(
    out: &mut Vec<u8>,
    op: u8,
    order: u8,
    flags: u8,
    obj: u32,
    gfp: u32,
    stack: u32,
    pid: u32,
) {
    let mut r = [0u8; TRACE_RECORD_SIZE];
    r[0] = op;
    r[1] = order;
    r[2] = flags;
    r[4..8].copy_from_slice(&obj.to_le_bytes());
    r[8..12].copy_from_slice(&gfp.to_le_bytes());
    r[12..16].copy_from_slice(&stack.to_le_bytes());
    r[16..20].copy_from_slice(&pid.to_le_bytes());
    r[20..24].copy_from_slice(&pid.to_le_bytes());
    out.extend_from_slice(&r);
}

#[cfg(test)]
mod tests;
