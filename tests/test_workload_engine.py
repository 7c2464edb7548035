"""The parts of workload generation the engine does, against what they
replace. The PCG64 draws (kmm-core/src/workload/pcg.rs) against numpy's:
``processes()`` lets the engine draw the touch counts and times from the
window's generator, so they must be numpy's draws to the bit and leave the
generator where numpy would have left it; the processes' events against their
numpy expansion; the jobserver schedule against a heap in Python."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kmm import _kmm


def state(rng: np.random.Generator) -> tuple[int, int]:
    s = rng.bit_generator.state["state"]
    return s["state"], s["inc"]


def numpy_state(rng: np.random.Generator) -> int:
    return rng.bit_generator.state["state"]["state"]


@given(seed=st.integers(0, 2**32), n=st.integers(0, 3000))
@settings(max_examples=40, deadline=None)
def test_uniform_draws_and_advance_are_numpys(seed: int, n: int) -> None:
    rng = np.random.default_rng([seed, 7])
    s, inc = state(rng)
    ours, after = _kmm._pcg_random(s, inc, n)
    assert np.array_equal(ours, rng.random(n))
    assert after == numpy_state(rng)
    assert _kmm._pcg_advance(s, inc, n) == after


@given(seed=st.integers(0, 2**70), stream=st.integers(0, 2**31 - 2), w=st.integers(0, 70_000))
@settings(max_examples=200, deadline=None)
def test_a_sources_window_stream_is_default_rngs(seed: int, stream: int, w: int) -> None:
    from kmm.workloads.source import Source

    src = Source()
    src.seed, src.stream = seed, stream
    ours = src._rng(w)
    want = np.random.default_rng([seed, stream, w])
    assert ours.bit_generator.state == want.bit_generator.state
    assert np.array_equal(ours.random(5), want.random(5))
    assert np.array_equal(src._rng(w + 1).standard_normal(3), np.random.default_rng([seed, stream, w + 1]).standard_normal(3))


# means on both sides of the method switch at 10, tiny and large ones, and the
# means processes() draws with (page lives over touch intervals)
LAMS = [0.0, 1e-9, 0.3, 2.0, 9.999999, 10.0, 10.5, 37.0, 250.0, 4096.5, 1e6]


@pytest.mark.parametrize("lam", LAMS)
def test_poisson_draws_are_numpys_for_every_mean(lam: float) -> None:
    rng = np.random.default_rng([11, int(lam * 1000) % 2**31])
    s, inc = state(rng)
    lams = np.full(20_000, lam)
    ours, after = _kmm._pcg_poisson(s, inc, lams)
    assert np.array_equal(ours, rng.poisson(lams))
    assert after == numpy_state(rng)


def test_poisson_draws_are_numpys_on_a_spread_of_means() -> None:
    # 400k means spread over [0, 60): both methods, and the rejection
    # branch of the large-mean method (its log-gamma) many times
    rng = np.random.default_rng(3)
    lams = np.concatenate([rng.random(200_000) * 12, rng.exponential(20.0, 200_000)])
    s, inc = state(rng)
    ours, after = _kmm._pcg_poisson(s, inc, lams)
    assert np.array_equal(ours, rng.poisson(lams))
    assert after == numpy_state(rng)


def test_a_processes_call_leaves_the_generator_where_numpy_would() -> None:
    """processes() through the engine and through numpy's own draws (the
    reference expansion) give the same events and the same generator state."""
    from kmm.workloads import context, process

    def run(engine: bool) -> tuple[list[np.ndarray], int]:
        ctx = context.Ctx()
        rng = np.random.default_rng([5, 1, 2])
        P = 12
        start = np.sort(rng.integers(0, 900_000, P))
        end = start + rng.integers(10, 60_000_000, P)
        anon = rng.integers(0, 3000, P)
        pid = ctx.pids(P)
        kw = {"touch_interval_us": 2e6, "short_frac": 0.25}
        if engine:
            [procs] = process.processes(ctx, rng, ["cc1", "sh"] * 6, start, end, anon, pid, **kw)
            ev = procs.as_events()
        else:
            ev = _numpy_processes(ctx, rng, start, end, anon, pid, **kw)
        return ev, numpy_state(rng)

    a, sa = run(True)
    b, sb = run(False)
    assert sa == sb
    assert [x.tobytes() for x in a if x.shape[0]] == [x.tobytes() for x in b if x.shape[0]]


def _numpy_processes(ctx, rng, start, end, anon, pid, *, touch_interval_us, short_frac):
    """The numpy expansion processes() had before its draws moved to the
    engine (an own-slab, exiting process group of cc1 and sh, alternating)."""
    from kmm.trace import OP_ALLOC, OP_FREE
    from kmm.workloads.events import OP_ACCESS, Touches, events
    from kmm.workloads.kinds import K
    from kmm.workloads.params import PTES_PER_PGD_ENTRY
    from kmm.workloads.process import _SLAB_KINDS

    prog = ["cc1", "sh"] * 6
    P = start.shape[0]
    start = start.astype(np.int64)
    end = np.maximum(end.astype(np.int64), start + 10)
    life = end - start
    grow_end = start + (life * 9) // 10
    anon = anon.astype(np.int64)
    n_pte = 2 + -(-anon // PTES_PER_PGD_ENTRY)
    n_slab = np.full(P, _SLAB_KINDS.shape[0], dtype=np.int64)
    size = 2 + n_pte + n_slab + anon
    base = np.array([ctx.ids.block(int(size[p]), int(end[p])) for p in range(P)], dtype=np.int64)
    k_task, k_pt, k_anon = K["task_struct"], K["page_table"], K["anon_fault"]
    out = [events(start, OP_ALLOC, base, pid, k_task, order=1), events(start, OP_ALLOC, base + 1, pid, k_pt)]
    r = np.repeat(np.arange(P), n_pte)
    j = np.arange(r.shape[0]) - np.repeat(np.cumsum(n_pte) - n_pte, n_pte)
    t_pte = np.where(j < 2, start[r], start[r] + (rng.random(r.shape[0]) * (grow_end - start)[r]).astype(np.int64))
    pte_ids = base[r] + 2 + j
    out.append(events(t_pte, OP_ALLOC, pte_ids, pid[r], k_pt))
    rs = np.repeat(np.arange(P), n_slab)
    js = np.arange(rs.shape[0]) - np.repeat(np.cumsum(n_slab) - n_slab, n_slab)
    slab_ids = base[rs] + 2 + n_pte[rs] + js
    slab_kind = _SLAB_KINDS[js]
    out.append(events(start[rs], OP_ALLOC, slab_ids, pid[rs], slab_kind))
    prog_arr = np.asarray(prog)
    for name in sorted(set(prog)):
        sel = np.nonzero(prog_arr == name)[0]
        pages = ctx.text_pages(name)
        npg = pages.shape[0]
        tt = np.repeat(start[sel], npg) + (rng.random(sel.shape[0] * npg) * np.repeat(life[sel] // 5, npg)).astype(np.int64)
        out.append(events(tt, OP_ACCESS, np.tile(pages, sel.shape[0]), np.repeat(pid[sel], npg), K["pagecache_read"], proc=0))
    n_anon = int(anon.sum())
    anon_ids = np.repeat(base + 2 + n_pte + n_slab - (np.cumsum(anon) - anon), anon) + np.arange(n_anon)
    pid_a = np.repeat(pid, anon)
    t_alloc = np.repeat(start, anon) + (rng.random(n_anon) * np.repeat(grow_end - start, anon)).astype(np.int64)
    t_free = np.repeat(end, anon)
    short = rng.random(n_anon) < short_frac
    if short.any():
        early = t_alloc[short] + rng.exponential(1.0, short.sum()) * (np.repeat(life, anon)[short] / 10)
        t_free[short] = np.minimum(early.astype(np.int64), t_free[short])
    out.append(events(t_alloc, OP_ALLOC, anon_ids, pid_a, k_anon))
    n_touch = rng.poisson((t_free - t_alloc) / touch_interval_us)
    u = rng.random(int(n_touch.sum()))
    out.append(Touches(u, n_touch, t_alloc, t_free, anon_ids, pid_a, k_anon, 1).as_events())
    out.append(events(t_free, OP_FREE, anon_ids, pid_a, k_anon))
    out.append(events(end[r], OP_FREE, pte_ids, pid[r], k_pt))
    out.append(events(end, OP_FREE, base + 1, pid, k_pt))
    out.append(events(end[rs], OP_FREE, slab_ids, pid[rs], slab_kind))
    out.append(events(end, OP_FREE, base, pid, k_task, order=1))
    return out


@given(seed=st.integers(0, 2**20), exits=st.booleans(), own_slab=st.booleans(), end_s=st.sampled_from([None, 1.5, 7.0]))
@settings(max_examples=25, deadline=None)
def test_the_engines_process_events_are_the_reference_expansions(
    seed: int, exits: bool, own_slab: bool, end_s: float | None
) -> None:
    """Procs pushed to the engine (its events made there) against the same
    processes' events made by numpy (Procs.as_events) pushed as event arrays:
    the same trace, with or without an end declared."""
    from kmm._kmm import TraceEmitter
    from kmm.workloads import context, process
    from kmm.workloads.events import WIN_US
    from kmm.workloads.kinds import KIND_CACHE_ARR, KIND_FLAGS_ARR, KIND_GFP_ARR, stack_table

    ctx = context.Ctx()
    rng = np.random.default_rng([seed, 3])
    P = int(rng.integers(1, 9))
    start = np.sort(rng.integers(0, WIN_US, P))
    end = start + rng.integers(0, 8 * WIN_US, P)
    anon = rng.integers(0, 2500, P)
    progs = list(rng.choice(["cc1", "sh", "make", "as"], P))
    [procs] = process.processes(ctx, rng, progs, start, end, anon, ctx.pids(P), touch_interval_us=3e5,
                                short_frac=0.3, own_slab=own_slab, exits=exits)

    def emitter() -> TraceEmitter:
        em = TraceEmitter(KIND_CACHE_ARR.tolist(), KIND_GFP_ARR.tolist(), stack_table(None).tolist(),
                          KIND_FLAGS_ARR.tolist())
        if end_s is not None:
            em.set_end(round(end_s * 1e6))
        return em

    a, b = emitter(), emitter()
    procs.push(a, 0)
    b.push(0, [np.ascontiguousarray(e).view(np.uint8) for e in procs.as_events() if e.shape[0]])
    stop = 10 if end_s is None else math.ceil(end_s)
    outs = []
    for em in (a, b):
        parts = []
        for w in range(stop):
            em.ready(w)
            em.emit(min((w + 1) * WIN_US, round((end_s or 1e9) * 1e6)))
            parts.append(em.take())
        em.stop()
        parts.append(em.take())
        outs.append(b"".join(p.tobytes() for p in parts))
    assert outs[0] == outs[1]
    assert len(outs[0]) > 0


def test_bad_process_arrays_are_refused_and_change_nothing() -> None:
    from kmm import TraceError
    from kmm._kmm import TraceEmitter
    from kmm.workloads.kinds import KIND_CACHE_ARR, KIND_GFP_ARR, stack_table

    em = TraceEmitter(KIND_CACHE_ARR.tolist(), KIND_GFP_ARR.tolist(), stack_table(None).tolist())
    i64, u32, f64 = (lambda *v: np.array(v, np.int64)), (lambda *v: np.array(v, np.uint32)), (lambda *v: np.array(v, np.float64))
    good = dict(start=i64(10), end=i64(5000), base=i64(0), pid=u32(7), n_pte=i64(2), anon=i64(1),
                u_pte=f64(0.5, 0.5), slab_kinds=np.zeros(0, np.uint8), text=[], t_alloc=i64(100),
                t_free=i64(4000), touch_n=i64(2), touch_state=1, touch_inc=3, k_task=7, k_pt=6,
                k_anon=0, k_text=1, own=1, exits=True)
    bad = [dict(t_free=i64(6000)), dict(u_pte=f64(0.5)), dict(k_anon=250), dict(end=i64(5)),
           dict(start=i64(-1)), dict(u_pte=f64(0.5, 1.5)), dict(touch_n=i64(-1)),
           dict(text=[(i64(3), u32(1), f64(0.1))])]
    for b in bad:
        with pytest.raises(TraceError):
            em.push_procs(0, **{**good, **b})
    em.ready(0)
    em.emit(WIN := 1_000_000)
    assert set(np.frombuffer(em.take().tobytes(), np.uint8)[::24]) == {_kmm_op_tick()}
    em.push_procs(1, **{**good, "start": i64(WIN + 10), "end": i64(WIN + 5000),
                        "t_alloc": i64(WIN + 100), "t_free": i64(WIN + 4000)})


def _kmm_op_tick() -> int:
    from kmm.trace import OP_TICK

    return OP_TICK


def _jobserver_reference(cpu_us, t0, jobs, share):
    """The schedule as build.py made it in Python: a heap of (free at, slot)."""
    import bisect
    import heapq

    share_us = [t * 1e6 for t, _ in share]

    def share_of(t: int) -> float:
        i = bisect.bisect_right(share_us, t)
        return share[i - 1][1] if i else share[0][1]

    slots = [(t0, s) for s in range(jobs)]
    heapq.heapify(slots)
    start, end = [], []
    for cpu in cpu_us.tolist():
        t, s = heapq.heappop(slots)
        dur = int(cpu / min(1.0, share_of(t) / jobs)) + 2_000
        start.append(t)
        end.append(t + dur)
        heapq.heappush(slots, (t + dur + 1_000, s))
    return np.array(start, np.int64), np.array(end, np.int64)


@given(seed=st.integers(0, 2**20), jobs=st.integers(1, 9), steps=st.integers(1, 5), ties=st.booleans())
@settings(max_examples=60, deadline=None)
def test_the_jobserver_schedule_is_the_heaps(seed: int, jobs: int, steps: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    cpu = rng.lognormal(np.log(0.35e6), 0.8, n)
    if ties:  # equal CPU times: slots free at the same time, the lower one first
        cpu = np.round(cpu / 1e5) * 1e5
    share = sorted((float(t), float(c)) for t, c in zip(rng.random(steps) * 60, 0.05 + rng.random(steps) * 4))
    t0 = int(rng.integers(0, 10**8))
    want = _jobserver_reference(cpu, t0, jobs, share)
    got = _kmm.jobserver(cpu, t0, jobs, [t * 1e6 for t, _ in share], [c for _, c in share])
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
