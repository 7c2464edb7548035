//! Processes' events made in the engine (`kmm.workloads.process.processes`).
//!
//! The model (`python/kmm/workloads/process.py`) decides what a process is
//! and draws its random numbers with numpy; the per-page expansion of those
//! draws into events (a kernel stack, a pgd, PTE pages, the task's slab
//! objects, program text, anonymous pages, their touches and the frees at
//! exit) happens here, in the order the model lists them, so the trace is
//! the one the numpy expansion made, byte for byte. [`anon_times`] turns the
//! draws of the anonymous pages into their fault and free times and draws
//! the Poisson counts of their touches from the generator's stream (where
//! numpy would have drawn them, [`Pcg64`]); [`Procs::for_each`] makes the
//! events, the touches' times drawn from the stream where numpy would have
//! drawn them next.

use super::pcg::Pcg64;
use super::{Event, Sink, NO_PIN, OP_ACCESS};
use crate::error::{Error, Result};
use crate::replay::{OP_ALLOC, OP_FREE};

/// Accesses to one program's text pages by some of the processes: process
/// `sel[i]` accesses `pages[k]` at `start + trunc(u[i * pages.len() + k] * (life / 5))`.
#[derive(Clone, Copy, Debug)]
pub struct Text<'a> {
    pub sel: &'a [i64],
    pub pages: &'a [u32],
    pub u: &'a [f64],
}

/// The processes of one `processes()` call and their draws.
///
/// Process `p` lives from `start[p]` to `end[p]` (at least 10 us later),
/// its objects from `base[p]`: the kernel stack, the pgd, `n_pte[p]` PTE
/// pages, its slab objects (`slab_kinds`, the same for every process) and
/// `anon[p]` anonymous pages. The pages are listed process by process:
/// `t_alloc`, `t_free` and `touch_n` have one entry per anonymous page,
/// `u_pte` one per PTE page (the first two of a process unused: they come at
/// exec); the touches' draws come from `touch_rng`, in page order.
#[derive(Clone, Copy, Debug)]
pub struct Procs<'a> {
    pub start: &'a [i64],
    pub end: &'a [i64],
    pub base: &'a [i64],
    pub pid: &'a [u32],
    pub n_pte: &'a [i64],
    pub anon: &'a [i64],
    pub u_pte: &'a [f64],
    pub slab_kinds: &'a [u8],
    pub text: &'a [Text<'a>],
    pub t_alloc: &'a [i64],
    pub t_free: &'a [i64],
    pub touch_n: &'a [i64],
    pub touch_rng: Pcg64,
    /// kinds of the kernel stack, the page tables, the anonymous pages and the text
    pub k_task: u8,
    pub k_pt: u8,
    pub k_anon: u8,
    pub k_text: u8,
    /// the `proc` of the allocations (1: freed at exit and by stop(), 2: outlives the load)
    pub own: u8,
    /// the processes exit at `end` (their frees are events); else they have no frees
    pub exits: bool,
}

fn bad(what: &str) -> Error {
    Error::Trace(format!("processes: {what}"))
}

fn sum(v: &[i64], what: &str) -> Result<usize> {
    let mut s = 0u64;
    for &x in v {
        if x < 0 {
            return Err(bad(&format!("a negative {what}")));
        }
        s += x as u64;
    }
    Ok(s as usize)
}

fn unit(u: &[f64]) -> bool {
    u.iter().all(|x| (0.0..=1.0).contains(x))
}

/// The fault and free times of anonymous pages and their touch counts
/// (`processes()`' model): page `i` of process `p` is faulted at
/// `start + trunc(u_alloc[i] * (grow_end - start))`, `grow_end = start +
/// life * 9 / 10`; it is freed at `end`, or, if `u_short[i] < short_frac`
/// (the `k`-th such page), at `min(end, trunc(t_alloc + exp[k] * life / 10))`;
/// it is touched a Poisson number of times of mean `(t_free - t_alloc) /
/// touch_interval_us`, drawn from `rng` page by page. The same operations on
/// the same doubles as the numpy expression it replaces, so the same results
/// to the bit. Returns the times, the counts, and the stream after the counts.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn anon_times(
    start: &[i64],
    end: &[i64],
    anon: &[i64],
    u_alloc: &[f64],
    u_short: &[f64],
    short_frac: f64,
    exp: &[f64],
    touch_interval_us: f64,
    mut rng: Pcg64,
) -> Result<(Vec<i64>, Vec<i64>, Vec<i64>, Pcg64)> {
    let p = start.len();
    if end.len() != p || anon.len() != p {
        return Err(bad("start, end and anon must have one entry per process"));
    }
    let n = sum(anon, "page count")?;
    if u_alloc.len() != n || u_short.len() != n {
        return Err(bad("one fault draw and one early-free draw per page"));
    }
    if u_short.iter().filter(|&&u| u < short_frac).count() != exp.len() {
        return Err(bad("one exponential draw per page freed early"));
    }
    if start.iter().zip(end).any(|(s, e)| e < s)
        || touch_interval_us.is_nan()
        || touch_interval_us <= 0.0
        || !(unit(u_alloc) && exp.iter().all(|x| x.is_finite() && *x >= 0.0))
    {
        return Err(bad(
            "a process ends before it starts, no touch interval, or a bad draw",
        ));
    }
    let mut t_alloc = Vec::with_capacity(n);
    let mut t_free = Vec::with_capacity(n);
    let mut n_touch = Vec::with_capacity(n);
    let mut i = 0usize;
    let mut k = 0usize;
    for q in 0..p {
        let (s, e) = (start[q], end[q]);
        let life = e - s;
        let grow = ((s + life * 9 / 10) - s) as f64;
        let tenth = life as f64 / 10.0;
        for _ in 0..anon[q] {
            let ta = s + (u_alloc[i] * grow) as i64;
            let mut tf = e;
            if u_short[i] < short_frac {
                let early = (ta as f64 + exp[k] * tenth) as i64;
                k += 1;
                tf = tf.min(early);
            }
            t_alloc.push(ta);
            t_free.push(tf);
            n_touch.push(rng.poisson((tf - ta) as f64 / touch_interval_us));
            i += 1;
        }
    }
    Ok((t_alloc, t_free, n_touch, rng))
}

impl Procs<'_> {
    /// Check the arrays against each other and the times against the
    /// window's horizon `[lo, hi)` (and `nkinds`), before any event is made.
    pub(super) fn check(&self, lo: i64, hi: i64, nkinds: usize) -> Result<()> {
        let p = self.start.len();
        if [
            self.end.len(),
            self.base.len(),
            self.pid.len(),
            self.n_pte.len(),
            self.anon.len(),
        ]
        .iter()
        .any(|&l| l != p)
        {
            return Err(bad(
                "start, end, base, pid, n_pte and anon must have one entry per process",
            ));
        }
        let n_pte = sum(self.n_pte, "PTE page count")?;
        let n_anon = sum(self.anon, "page count")?;
        if self.u_pte.len() != n_pte {
            return Err(bad("one draw per PTE page"));
        }
        if self.t_alloc.len() != n_anon
            || self.t_free.len() != n_anon
            || self.touch_n.len() != n_anon
        {
            return Err(bad(
                "t_alloc, t_free and touch_n must have one entry per page",
            ));
        }
        sum(self.touch_n, "touch count")?;
        let kinds = [self.k_task, self.k_pt, self.k_anon, self.k_text];
        if kinds
            .iter()
            .chain(self.slab_kinds)
            .any(|&k| k as usize >= nkinds)
        {
            return Err(bad("an unknown kind"));
        }
        if !unit(self.u_pte) {
            return Err(bad("a draw outside [0, 1]"));
        }
        let n_slab = self.slab_kinds.len() as i64;
        let mut i = 0usize;
        for q in 0..p {
            let (s, e) = (self.start[q], self.end[q]);
            if s < lo || e >= hi || e < s + 10 {
                return Err(Error::Trace(format!(
                    "workload generated a process from {s} us to {e} us, outside the horizon \
                     [{lo}, {hi}) us (or shorter than 10 us)"
                )));
            }
            let last = self.base[q] + 2 + self.n_pte[q] + n_slab + self.anon[q];
            if self.base[q] < 0 || last > u32::MAX as i64 {
                return Err(bad("object ids out of range"));
            }
            for _ in 0..self.anon[q] {
                let (a, f) = (self.t_alloc[i], self.t_free[i]);
                if a < s || f < a || f > e {
                    return Err(bad(
                        "a page's fault and free times outside its process's life",
                    ));
                }
                i += 1;
            }
        }
        for t in self.text {
            if t.u.len() != t.sel.len() * t.pages.len() {
                return Err(bad("one text draw per process and page"));
            }
            if t.sel.iter().any(|&s| s < 0 || s as usize >= p) || !unit(t.u) {
                return Err(bad("a text access of no process, or a draw outside [0, 1]"));
            }
        }
        Ok(())
    }

    /// Every event, in the order `processes()` lists them (checked first);
    /// the touches as page `i` of [`Procs::pages`] (kind `k_anon`, proc `own`).
    pub(super) fn for_each(&self, sink: &mut impl Sink) {
        let mut put = |e: Event| sink.put(e);
        let p = self.start.len();
        let own = self.own;
        let ev = |t: i64, op: u8, order: u8, kind: u8, proc_: u8, obj: i64, pid: u32| Event {
            t,
            op,
            order,
            kind,
            proc_,
            obj: obj as u32,
            pid,
            pin: NO_PIN,
        };
        // task: the kernel stack (order 1), the pgd
        for q in 0..p {
            put(ev(
                self.start[q],
                OP_ALLOC,
                1,
                self.k_task,
                own,
                self.base[q],
                self.pid[q],
            ));
        }
        for q in 0..p {
            put(ev(
                self.start[q],
                OP_ALLOC,
                0,
                self.k_pt,
                own,
                self.base[q] + 1,
                self.pid[q],
            ));
        }
        // PTE pages: two at exec, the rest as the heap grows
        let mut i = 0usize;
        for q in 0..p {
            let s = self.start[q];
            let grow = ((s + (self.end[q] - s) * 9 / 10) - s) as f64;
            for j in 0..self.n_pte[q] {
                let t = if j < 2 {
                    s
                } else {
                    s + (self.u_pte[i] * grow) as i64
                };
                i += 1;
                put(ev(
                    t,
                    OP_ALLOC,
                    0,
                    self.k_pt,
                    own,
                    self.base[q] + 2 + j,
                    self.pid[q],
                ));
            }
        }
        for q in 0..p {
            let first = self.base[q] + 2 + self.n_pte[q];
            for (j, &k) in self.slab_kinds.iter().enumerate() {
                put(ev(
                    self.start[q],
                    OP_ALLOC,
                    0,
                    k,
                    own,
                    first + j as i64,
                    self.pid[q],
                ));
            }
        }
        // program text in the page cache
        for t in self.text {
            let npg = t.pages.len();
            for (i, &s) in t.sel.iter().enumerate() {
                let q = s as usize;
                let fifth = ((self.end[q] - self.start[q]) / 5) as f64;
                let u = &t.u[i * npg..(i + 1) * npg];
                for (&page, &u) in t.pages.iter().zip(u) {
                    let at = self.start[q] + (u * fifth) as i64;
                    put(ev(
                        at,
                        OP_ACCESS,
                        0,
                        self.k_text,
                        0,
                        page as i64,
                        self.pid[q],
                    ));
                }
            }
        }
        // anonymous pages, then their touches
        self.each_page(|q, i, obj| {
            put(ev(
                self.t_alloc[i],
                OP_ALLOC,
                0,
                self.k_anon,
                own,
                obj,
                self.pid[q],
            ));
        });
        let mut rng = self.touch_rng;
        self.each_page(|_, i, obj| {
            let (t0, t1) = (self.t_alloc[i], self.t_free[i]);
            for _ in 0..self.touch_n[i] {
                let t = t0 + (rng.next_f64() * (t1 - t0) as f64) as i64;
                sink.touch(i as u32, t, obj as u32);
            }
        });
        let mut put = |e: Event| sink.put(e);
        if !self.exits {
            return;
        }
        // exit: anonymous pages, page tables, slab, then the task
        self.each_page(|q, i, obj| {
            put(ev(
                self.t_free[i],
                OP_FREE,
                0,
                self.k_anon,
                1,
                obj,
                self.pid[q],
            ));
        });
        for q in 0..p {
            for j in 0..self.n_pte[q] {
                put(ev(
                    self.end[q],
                    OP_FREE,
                    0,
                    self.k_pt,
                    1,
                    self.base[q] + 2 + j,
                    self.pid[q],
                ));
            }
        }
        for q in 0..p {
            put(ev(
                self.end[q],
                OP_FREE,
                0,
                self.k_pt,
                1,
                self.base[q] + 1,
                self.pid[q],
            ));
        }
        for q in 0..p {
            let first = self.base[q] + 2 + self.n_pte[q];
            for (j, &k) in self.slab_kinds.iter().enumerate() {
                put(ev(
                    self.end[q],
                    OP_FREE,
                    0,
                    k,
                    1,
                    first + j as i64,
                    self.pid[q],
                ));
            }
        }
        for q in 0..p {
            put(ev(
                self.end[q],
                OP_FREE,
                1,
                self.k_task,
                1,
                self.base[q],
                self.pid[q],
            ));
        }
    }

    /// The (object id, pid) of every anonymous page, in page order: what
    /// the touches of [`Procs::for_each`] name by index.
    pub(super) fn pages(&self, out: &mut Vec<[u32; 2]>) {
        out.clear();
        out.reserve(self.t_alloc.len());
        self.each_page(|q, _, obj| out.push([obj as u32, self.pid[q]]));
    }

    /// `f(process, page index, object id)` for every anonymous page in order.
    #[inline]
    fn each_page(&self, mut f: impl FnMut(usize, usize, i64)) {
        let n_slab = self.slab_kinds.len() as i64;
        let mut i = 0usize;
        for q in 0..self.start.len() {
            let first = self.base[q] + 2 + self.n_pte[q] + n_slab;
            for j in 0..self.anon[q] {
                f(q, i, first + j);
                i += 1;
            }
        }
    }

    /// Events [`Procs::for_each`] makes.
    pub fn len(&self) -> usize {
        let p = self.start.len();
        let n_pte: i64 = self.n_pte.iter().sum();
        let n_anon = self.t_alloc.len();
        let text: usize = self.text.iter().map(|t| t.u.len()).sum();
        let alloc = 2 * p + n_pte as usize + p * self.slab_kinds.len() + text + n_anon;
        let touches = self.touch_n.iter().sum::<i64>() as usize;
        let frees = if self.exits { alloc - text } else { 0 };
        alloc + touches + frees
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
