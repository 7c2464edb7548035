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
//! One pass per event, no allocation per event: a bucket is one vector per
//! window, the ready window one vector reused, per-object state a byte of
//! flags and a pid grown with the highest object id.

use crate::error::{Error, Result};
use crate::replay::{
    OP_ALLOC, OP_FREE, OP_SLAB_ALLOC, OP_SLAB_FREE, OP_SLAB_PIN, OP_TICK, OP_TOUCH, TF_TASK,
    TF_UNEVICTABLE, TRACE_RECORD_SIZE,
};
use std::collections::VecDeque;

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

/// Merges generated events in time and writes them as trace records.
#[derive(Debug)]
pub struct Emitter {
    kinds: KindTable,
    /// buckets[i]: events of window `base_w + i`, in generation order
    buckets: VecDeque<Vec<Event>>,
    base_w: i64,
    /// push()'s count of events per window ahead (reused)
    counts: Vec<u32>,
    /// the window being emitted, ordered by millisecond; slot_end[j]: end of slot j
    ready: Vec<Event>,
    slot_end: [u32; SLOTS],
    ready_w: i64,
    pos: usize,
    now_us: i64,
    flags: Vec<u8>,
    pid_of: Vec<u32>,
    /// pids of processes that outlive stop(), sorted
    perm_pids: Vec<u32>,
    /// events from this time on are not kept ([`Emitter::set_end`]): the
    /// load is never emitted past it
    keep_before: i64,
    end_us: i64,
    stopped: bool,
    /// a part's events, decoded (reused)
    scratch: Vec<Event>,
    /// emptied buckets, reused for new windows (their memory stays mapped)
    spare: Vec<Vec<Event>>,
    out: Vec<u8>,
}

/// The touches of pages by the processes owning them (`kmm.workloads.process`):
/// page `i` is touched `n[i]` times at `t0[i] + trunc(u * (t1[i] - t0[i]))`,
/// one `u` (in `[0, 1)`) each, taken in order from `u`.
#[derive(Clone, Copy, Debug)]
pub struct Touches<'a> {
    pub u: &'a [f64],
    pub n: &'a [i64],
    pub t0: &'a [i64],
    pub t1: &'a [i64],
    pub obj: &'a [u32],
    pub pid: &'a [u32],
    pub kind: u8,
    pub proc_: u8,
}

impl<'a> Touches<'a> {
    fn check(&self) -> Result<()> {
        let p = self.n.len();
        if self.t0.len() != p || self.t1.len() != p || self.obj.len() != p || self.pid.len() != p {
            return Err(Error::Trace(
                "touches: n, t0, t1, obj and pid must have one entry per page".into(),
            ));
        }
        let mut total = 0u64;
        for &k in self.n {
            if k < 0 {
                return Err(Error::Trace("touches: a negative count".into()));
            }
            total += k as u64;
        }
        if total != self.u.len() as u64 {
            return Err(Error::Trace(format!(
                "touches: {} draws for {total} touches",
                self.u.len()
            )));
        }
        Ok(())
    }

    /// The events, page by page in draw order.
    fn events(self) -> impl Iterator<Item = Event> + 'a {
        // (page, draw) pairs walked with one cursor each, no per-page iterator
        TouchIter {
            t: self,
            page: 0,
            left: self.n.first().copied().unwrap_or(0),
            k: 0,
        }
    }
}

struct TouchIter<'a> {
    t: Touches<'a>,
    page: usize,
    left: i64,
    k: usize,
}

impl Iterator for TouchIter<'_> {
    type Item = Event;

    #[inline]
    fn next(&mut self) -> Option<Event> {
        while self.left == 0 {
            self.page += 1;
            if self.page >= self.t.n.len() {
                return None;
            }
            self.left = self.t.n[self.page];
        }
        let i = self.page;
        let u = self.t.u[self.k];
        self.k += 1;
        self.left -= 1;
        let t0 = self.t.t0[i];
        Some(Event {
            t: t0 + (u * (self.t.t1[i] - t0) as f64) as i64,
            op: OP_TOUCH,
            order: 0,
            kind: self.t.kind,
            proc_: self.t.proc_,
            obj: self.t.obj[i],
            pid: self.t.pid[i],
            pin: NO_PIN,
        })
    }
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
        let mut kinds = kinds;
        if kinds.flags.is_empty() {
            kinds.flags = vec![0; n];
        }
        Ok(Emitter {
            kinds,
            buckets: VecDeque::new(),
            base_w: 0,
            counts: Vec::new(),
            ready: Vec::new(),
            slot_end: [0; SLOTS],
            ready_w: -1,
            pos: 0,
            now_us: 0,
            flags: Vec::new(),
            pid_of: Vec::new(),
            perm_pids: Vec::new(),
            keep_before: i64::MAX,
            end_us: i64::MAX,
            stopped: false,
            scratch: Vec::new(),
            spare: Vec::new(),
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
    /// `g + MAX_AHEAD`, and `g` must not be before a window already emitted.
    pub fn push(&mut self, g: i64, events: &[u8]) -> Result<()> {
        if events.len() % EVENT_SIZE != 0 {
            return Err(Error::Trace(format!(
                "event bytes must be a multiple of {EVENT_SIZE}, got {}",
                events.len()
            )));
        }
        self.push_from(
            g,
            events
                .chunks_exact(EVENT_SIZE)
                .map(|r| Event::decode(r.try_into().expect("a record"))),
        )
    }

    /// Add the touches generated in window `g` (as [`Emitter::push`] adds
    /// events, page by page in draw order), without their event records.
    pub fn push_touches(&mut self, g: i64, touches: Touches<'_>) -> Result<()> {
        touches.check()?;
        self.push_from(g, touches.events())
    }

    /// Check every event of a part (a bad one changes nothing), keep those
    /// before the end in the decoding buffer, then file them in their buckets.
    fn push_from(&mut self, g: i64, events: impl Iterator<Item = Event>) -> Result<()> {
        if g < self.base_w {
            return Err(Error::Trace(format!(
                "events of window {g} come after window {} was emitted",
                self.base_w
            )));
        }
        let keep = self.keep_before;
        let nkinds = self.kinds.cache.len();
        let mut ev = std::mem::take(&mut self.scratch);
        ev.clear();
        let mut bad = None;
        for e in events {
            let w = e.t.div_euclid(WIN_US);
            if w < g || w >= g + MAX_AHEAD || e.kind as usize >= nkinds {
                bad = Some(e);
                break;
            }
            if e.t < keep {
                ev.push(e);
            }
        }
        if let Some(e) = bad {
            self.keep_scratch(ev);
            return Err(Error::Trace(if e.kind as usize >= nkinds {
                format!("workload event of unknown kind {}", e.kind)
            } else {
                format!(
                    "workload generated an event at {} us, outside the horizon of window {g}",
                    e.t
                )
            }));
        }
        self.file(g, &ev);
        self.keep_scratch(ev);
        Ok(())
    }

    fn keep_scratch(&mut self, mut ev: Vec<Event>) {
        // a huge part's buffer is not kept for the rest of the run
        ev.shrink_to(SCRATCH_KEEP);
        self.scratch = ev;
    }

    /// File checked events of window `g` in their buckets, growing each once.
    fn file(&mut self, g: i64, events: &[Event]) {
        let mut counts = std::mem::take(&mut self.counts);
        counts.clear();
        for e in events {
            let k = (e.t.div_euclid(WIN_US) - g) as usize;
            if counts.len() <= k {
                counts.resize(k + 1, 0);
            }
            counts[k] += 1;
        }
        let first = (g - self.base_w) as usize;
        while self.buckets.len() < first + counts.len() {
            let b = self.spare.pop().unwrap_or_default();
            self.buckets.push_back(b);
        }
        for (k, &n) in counts.iter().enumerate() {
            if n > 0 {
                self.buckets[first + k].reserve(n as usize);
            }
        }
        self.counts = counts;
        let buckets = self.buckets.make_contiguous();
        let base = self.base_w;
        for e in events {
            buckets[(e.t.div_euclid(WIN_US) - base) as usize].push(*e);
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
            self.buckets.pop_front();
            self.base_w += 1;
        }
        // the window's bucket goes (one allocation per window, not per event)
        let ev = match self.buckets.front_mut() {
            Some(v) => std::mem::take(v),
            None => Vec::new(),
        };
        // stable counting sort by millisecond slot
        let mut counts = [0u32; SLOTS];
        let w0 = w * WIN_US;
        for e in &ev {
            counts[((e.t - w0) / MS) as usize] += 1;
        }
        let mut start = [0u32; SLOTS];
        let mut acc = 0u32;
        for j in 0..SLOTS {
            start[j] = acc;
            acc += counts[j];
            self.slot_end[j] = acc;
        }
        self.ready.clear();
        self.ready.resize(ev.len(), Event::default());
        for e in &ev {
            let j = ((e.t - w0) / MS) as usize;
            self.ready[start[j] as usize] = *e;
            start[j] += 1;
        }
        self.ready_w = w;
        self.pos = 0;
        if self.spare.len() < SPARE_BUCKETS {
            let mut ev = ev;
            ev.clear();
            self.spare.push(ev);
        }
        Ok(())
    }

    fn grow(&mut self, obj: u32) {
        let need = obj as usize + 1;
        if need > self.flags.len() {
            let size = need.max(2 * self.flags.len()).max(1 << 16);
            self.flags.resize(size, 0);
            self.pid_of.resize(size, 0);
        }
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
        out.reserve((stop.saturating_sub(self.pos) + nslots) * TRACE_RECORD_SIZE);
        for (k, j) in (j0..j_end).enumerate() {
            let end = self.slot_end[(j - base) as usize] as usize;
            while self.pos < end {
                // the object state of an event a few ahead: its cache line is
                // on the way while this one is emitted (object ids are scattered)
                if let Some(a) = self.ready.get(self.pos + PREFETCH_AHEAD) {
                    crate::mm::objects::prefetch(&self.flags, a.obj as usize);
                }
                let e = self.ready[self.pos];
                self.pos += 1;
                self.emit_event(&mut out, e);
            }
            let tick = if k == 0 {
                seg_end_us.min((j0 + 1) * MS) - now
            } else if k == nslots - 1 {
                seg_end_us - (j_end - 1) * MS
            } else {
                MS
            };
            record(&mut out, OP_TICK, 0, 0, tick as u32, 0, 0, 0);
        }
        self.now_us = seg_end_us;
        self.out = out;
        Ok(())
    }

    /// The records appended since the last call (the bytes of `TRACE_DTYPE` records).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn emit_event(&mut self, out: &mut Vec<u8>, e: Event) {
        // kinds were checked by push()
        let cache = self.kinds.cache[e.kind as usize];
        let slab = cache != NO_CACHE;
        let slab_flag = if slab { SLAB } else { 0 };
        self.grow(e.obj);
        let o = e.obj as usize;
        let mut op = e.op;
        if op == OP_ALLOC && e.proc_ == 0 {
            // a direct cache allocation (a new slab object, a written page)
            self.flags[o] = (self.flags[o] & !SLAB) | CACHE | slab_flag;
        }
        if e.proc_ == 2 {
            if let Err(i) = self.perm_pids.binary_search(&e.pid) {
                self.perm_pids.insert(i, e.pid);
            }
        }
        if op == OP_ACCESS {
            if self.flags[o] & CACHE == 0 {
                op = OP_ALLOC; // the first access brings it into the cache
                self.flags[o] = (self.flags[o] & !SLAB) | CACHE | slab_flag;
            } else {
                op = OP_TOUCH;
            }
            if !self.perm_pids.is_empty() && self.perm_pids.binary_search(&e.pid).is_ok() {
                self.flags[o] |= MAPPED;
            }
        }
        if e.proc_ == 1 {
            if op == OP_ALLOC {
                self.flags[o] = (self.flags[o] & !SLAB) | LIVE | slab_flag;
                self.pid_of[o] = e.pid;
            } else if op == OP_FREE {
                self.flags[o] &= !LIVE;
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
            order = cache;
        }
        let owned = e.proc_ != 0 && (out_op == OP_ALLOC || out_op == OP_SLAB_ALLOC);
        let gfp = self.kinds.gfp[e.kind as usize];
        let stack = self.kinds.stack[e.kind as usize];
        let flags = if owned {
            TF_TASK | self.kinds.flags[e.kind as usize]
        } else {
            0
        };
        record(out, out_op, order, flags, e.obj, gfp, stack, e.pid);
        if pins {
            self.flags[o] |= PINNER;
            record(out, OP_SLAB_PIN, 0, 0, e.obj, e.pin, 0, e.pid);
        }
    }

    /// Every process exits: appends the frees of the objects processes own
    /// now, by id. Later windows emit only ticks.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.buckets.clear();
        self.ready.clear();
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
}

/// Emptied buckets kept for reuse.
const SPARE_BUCKETS: usize = 4;

/// Events of the decoding buffer kept between pushes.
const SCRATCH_KEEP: usize = 1 << 20;

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
