//! Binding for `kmm_core::workload`: the emitter behind `kmm.workloads.Load`.
//! Conversion only; the merge and emission run in the engine.

use crate::enter::guard;
use kmm_core::workload::{
    anon_times, seed_sequence, Emitter, KindTable, Pcg64, Procs, Text, Touches,
};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::errors::TraceError;

/// Generated workload events in, trace records out (`kmm.workloads.Load`).
#[pyclass(name = "TraceEmitter", module = "kmm._kmm")]
pub struct PyEmitter {
    inner: Emitter,
    poisoned: bool,
}

fn bytes<'a>(a: &'a PyReadonlyArray1<'_, u8>) -> PyResult<&'a [u8]> {
    a.as_slice()
        .map_err(|_| TraceError::new_err("event bytes must be C-contiguous"))
}

fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| TraceError::new_err("touch arrays must be C-contiguous"))
}

fn arr<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| TraceError::new_err("process arrays must be C-contiguous"))
}

/// The fault and free times of anonymous pages and their touch counts
/// (`kmm_core::workload::anon_times`), the counts drawn from the PCG64 stream
/// (`state`, `inc`): (t_alloc, t_free, n_touch, the state after the counts,
/// where the touches' draws start, and the state after those draws).
#[pyfunction]
#[pyo3(name = "anon_times")]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn py_anon_times<'py>(
    py: Python<'py>,
    start: PyReadonlyArray1<'_, i64>,
    end: PyReadonlyArray1<'_, i64>,
    anon: PyReadonlyArray1<'_, i64>,
    u_alloc: PyReadonlyArray1<'_, f64>,
    u_short: PyReadonlyArray1<'_, f64>,
    short_frac: f64,
    exp: PyReadonlyArray1<'_, f64>,
    touch_interval_us: f64,
    state: u128,
    inc: u128,
) -> PyResult<(
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    u128,
    u128,
)> {
    let (a, b, c) = (arr(&start)?, arr(&end)?, arr(&anon)?);
    let (ua, us, e) = (arr(&u_alloc)?, arr(&u_short)?, arr(&exp)?);
    let rng = Pcg64 { state, inc };
    let (ta, tf, n, after) = guard(None, || {
        anon_times(a, b, c, ua, us, short_frac, e, touch_interval_us, rng)
    })?;
    let mut end_rng = after;
    end_rng.advance(n.iter().sum::<i64>() as u64);
    Ok((
        ta.into_pyarray(py),
        tf.into_pyarray(py),
        n.into_pyarray(py),
        after.state,
        end_rng.state,
    ))
}

/// `n` uniform doubles from the PCG64 stream (`state`, `inc`) and the state
/// after them, as `numpy.random.Generator.random(n)` draws them (for tests).
#[pyfunction]
#[pyo3(name = "_pcg_random")]
fn pcg_random(
    py: Python<'_>,
    state: u128,
    inc: u128,
    n: usize,
) -> (Bound<'_, PyArray1<f64>>, u128) {
    let mut r = Pcg64 { state, inc };
    let v: Vec<f64> = (0..n).map(|_| r.next_f64()).collect();
    (v.into_pyarray(py), r.state)
}

/// Poisson counts of means `lam` from the PCG64 stream and the state after
/// them, as `numpy.random.Generator.poisson(lam)` draws them (for tests).
#[pyfunction]
#[pyo3(name = "_pcg_poisson")]
fn pcg_poisson<'py>(
    py: Python<'py>,
    state: u128,
    inc: u128,
    lam: PyReadonlyArray1<'_, f64>,
) -> PyResult<(Bound<'py, PyArray1<i64>>, u128)> {
    let lam = arr(&lam)?;
    if lam.iter().any(|&l| !(l >= 0.0 && l < 1e10)) {
        return Err(TraceError::new_err("lam must be in [0, 1e10)"));
    }
    let mut r = Pcg64 { state, inc };
    let v: Vec<i64> = lam.iter().map(|&l| r.poisson(l)).collect();
    Ok((v.into_pyarray(py), r.state))
}

/// The PCG64 (state, inc) `numpy.random.default_rng(SeedSequence(entropy))`
/// starts from, `entropy` given as its 32-bit words (`Source._rng`).
#[pyfunction]
#[pyo3(name = "pcg64_seeded")]
fn pcg64_seeded(entropy: Vec<u32>) -> (u128, u128) {
    let r = seed_sequence(&entropy);
    (r.state, r.inc)
}

/// The jobserver schedule of a build's units (`kmm_core::workload::jobserver`):
/// (start, end) of each, us.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn jobserver<'py>(
    py: Python<'py>,
    cpu_us: PyReadonlyArray1<'_, f64>,
    t0: i64,
    jobs: usize,
    share_from: Vec<f64>,
    share_cpus: Vec<f64>,
) -> PyResult<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>)> {
    let cpu = arr(&cpu_us)?;
    let (s, e) = guard(None, || {
        kmm_core::workload::jobserver::schedule(cpu, t0, jobs, &share_from, &share_cpus)
    })?;
    Ok((s.into_pyarray(py), e.into_pyarray(py)))
}

/// The PCG64 state `n` draws after `state` (numpy's `PCG64.advance`).
#[pyfunction]
#[pyo3(name = "_pcg_advance")]
fn pcg_advance(state: u128, inc: u128, n: u64) -> u128 {
    let mut r = Pcg64 { state, inc };
    r.advance(n);
    r.state
}

#[pymethods]
impl PyEmitter {
    /// `cache`, `gfp`, `stack`: per kind code, its slab cache (255: pages),
    /// GFP mask and page_owner stack handle; `flags` (optional): the trace
    /// flags an owned allocation of the kind carries besides TF_TASK.
    #[new]
    #[pyo3(signature = (cache, gfp, stack, flags=None))]
    fn new(
        cache: Vec<u8>,
        gfp: Vec<u32>,
        stack: Vec<u32>,
        flags: Option<Vec<u8>>,
    ) -> PyResult<Self> {
        let flags = flags.unwrap_or_default();
        let inner = guard(None, || {
            Emitter::new(KindTable {
                cache,
                gfp,
                stack,
                flags,
            })
        })?;
        Ok(PyEmitter {
            inner,
            poisoned: false,
        })
    }

    /// Add the events generated in window `g`: each part the bytes of an
    /// array of `kmm.workloads.events.EV`, in generation order.
    fn push(&mut self, g: i64, parts: Vec<PyReadonlyArray1<'_, u8>>) -> PyResult<()> {
        let em = &mut self.inner;
        for p in &parts {
            let b = bytes(p)?;
            guard(Some(&mut self.poisoned), || em.push(g, b))?;
        }
        Ok(())
    }

    /// Add the touches generated in window `g`: page `i` touched `n[i]`
    /// times at `t0[i] + trunc(u * (t1[i] - t0[i]))`, its draws `u` in order.
    #[allow(clippy::too_many_arguments)]
    fn push_touches(
        &mut self,
        g: i64,
        u: PyReadonlyArray1<'_, f64>,
        n: PyReadonlyArray1<'_, i64>,
        t0: PyReadonlyArray1<'_, i64>,
        t1: PyReadonlyArray1<'_, i64>,
        obj: PyReadonlyArray1<'_, u32>,
        pid: PyReadonlyArray1<'_, u32>,
        kind: u8,
        proc_: u8,
    ) -> PyResult<()> {
        let t = Touches {
            u: slice(&u)?,
            n: slice(&n)?,
            t0: slice(&t0)?,
            t1: slice(&t1)?,
            obj: slice(&obj)?,
            pid: slice(&pid)?,
            kind,
            proc_,
        };
        let em = &mut self.inner;
        guard(Some(&mut self.poisoned), || em.push_touches(g, t))
    }

    /// Add the events of processes generated in window `g`, made from their
    /// draws (`kmm_core::workload::Procs`; `text`: per program, the indices
    /// of the processes running it, its pages and their draws).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (g, start, end, base, pid, n_pte, anon, u_pte, slab_kinds, text,
                        t_alloc, t_free, touch_n, touch_state, touch_inc, k_task, k_pt, k_anon,
                        k_text, own, exits))]
    fn push_procs(
        &mut self,
        g: i64,
        start: PyReadonlyArray1<'_, i64>,
        end: PyReadonlyArray1<'_, i64>,
        base: PyReadonlyArray1<'_, i64>,
        pid: PyReadonlyArray1<'_, u32>,
        n_pte: PyReadonlyArray1<'_, i64>,
        anon: PyReadonlyArray1<'_, i64>,
        u_pte: PyReadonlyArray1<'_, f64>,
        slab_kinds: PyReadonlyArray1<'_, u8>,
        text: Vec<(
            PyReadonlyArray1<'_, i64>,
            PyReadonlyArray1<'_, u32>,
            PyReadonlyArray1<'_, f64>,
        )>,
        t_alloc: PyReadonlyArray1<'_, i64>,
        t_free: PyReadonlyArray1<'_, i64>,
        touch_n: PyReadonlyArray1<'_, i64>,
        touch_state: u128,
        touch_inc: u128,
        k_task: u8,
        k_pt: u8,
        k_anon: u8,
        k_text: u8,
        own: u8,
        exits: bool,
    ) -> PyResult<()> {
        let text = text
            .iter()
            .map(|(sel, pages, u)| {
                Ok(Text {
                    sel: arr(sel)?,
                    pages: arr(pages)?,
                    u: arr(u)?,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let p = Procs {
            start: arr(&start)?,
            end: arr(&end)?,
            base: arr(&base)?,
            pid: arr(&pid)?,
            n_pte: arr(&n_pte)?,
            anon: arr(&anon)?,
            u_pte: arr(&u_pte)?,
            slab_kinds: arr(&slab_kinds)?,
            text: &text,
            t_alloc: arr(&t_alloc)?,
            t_free: arr(&t_free)?,
            touch_n: arr(&touch_n)?,
            touch_rng: Pcg64 {
                state: touch_state,
                inc: touch_inc,
            },
            k_task,
            k_pt,
            k_anon,
            k_text,
            own,
            exits,
        };
        let em = &mut self.inner;
        guard(Some(&mut self.poisoned), || em.push_procs(g, &p))
    }

    /// Events from `end_us` (rounded up to its millisecond) on are not kept:
    /// the load is never emitted past it (until stop()).
    fn set_end(&mut self, end_us: i64) -> PyResult<()> {
        let em = &mut self.inner;
        guard(Some(&mut self.poisoned), || em.set_end(end_us))
    }

    /// Make room in the output for every record from now to `t_us` (call it
    /// once every window up to `t_us` is pushed).
    fn reserve_until(&mut self, t_us: i64) -> PyResult<()> {
        let em = &mut self.inner;
        guard(Some(&mut self.poisoned), || {
            em.reserve_until(t_us);
            Ok(())
        })
    }

    /// Make window `w` the one being emitted.
    fn ready(&mut self, w: i64) -> PyResult<()> {
        let em = &mut self.inner;
        guard(Some(&mut self.poisoned), || em.ready(w))
    }

    /// Append the trace records from now to `seg_end_us` (within the ready
    /// window) to the output.
    fn emit(&mut self, seg_end_us: i64) -> PyResult<()> {
        let em = &mut self.inner;
        guard(Some(&mut self.poisoned), || em.emit(seg_end_us))
    }

    /// Append the frees of every object processes own now; later windows emit only ticks.
    fn stop(&mut self) -> PyResult<()> {
        let em = &mut self.inner;
        guard(Some(&mut self.poisoned), || {
            em.stop();
            Ok(())
        })
    }

    /// Append the frees of every cache object no permanent process maps.
    fn drop_caches(&mut self) -> PyResult<()> {
        let em = &mut self.inner;
        guard(Some(&mut self.poisoned), || {
            em.drop_caches();
            Ok(())
        })
    }

    /// The bytes of the trace records appended since the last call.
    fn take<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyArray1<u8>> {
        self.inner.take().into_pyarray(py)
    }

    /// Objects processes own that are allocated now.
    fn live_process_objects(&self) -> usize {
        self.inner.live_process_objects()
    }

    /// Cache objects allocated now.
    fn cache_objects(&self) -> usize {
        self.inner.cache_objects()
    }

    /// (events kept for windows not yet emitted, windows with a bucket,
    /// bytes the emitter's vectors hold).
    fn held(&self) -> (usize, usize, usize) {
        self.inner.held()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEmitter>()?;
    m.add_function(wrap_pyfunction!(py_anon_times, m)?)?;
    m.add_function(wrap_pyfunction!(pcg64_seeded, m)?)?;
    m.add_function(wrap_pyfunction!(jobserver, m)?)?;
    m.add_function(wrap_pyfunction!(pcg_random, m)?)?;
    m.add_function(wrap_pyfunction!(pcg_poisson, m)?)?;
    m.add_function(wrap_pyfunction!(pcg_advance, m)?)?;
    Ok(())
}
