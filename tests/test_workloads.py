"""Tests of kmm.workloads: the generated load is valid, deterministic, and means what it says."""

from __future__ import annotations

import kmm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kmm import workloads as wl

ALLOCATORS = ("vanilla", "antifrag", "mobility")
KERNRCLM = kmm.GFP_KERNEL | kmm.gfp.KERNRCLM


def small_tree() -> wl.TreeLayout:
    return wl.kernel_tree(files=3_000, units=120, headers=300, seed=3)


def small_build(**kw) -> wl.Load:
    kw.setdefault("layout", small_tree())
    return wl.kernel_build(kw.pop("jobs", 4), **kw)


def small_stress(seed: int = 0) -> wl.Load:
    """Two builds of a small tree (one copies it first) and a small updatedb."""
    lay = small_tree()
    return wl.combine(
        wl.updatedb(seed=seed, files=20_000, files_per_s=4_000),
        wl.kernel_build(
            2, seed=seed + 1, layout=lay, copy_tree=True, tree="copy1", source_tree="main"
        ),
        wl.kernel_build(2, seed=seed, layout=lay, tree="main", start=1.0),
    )


def ops(trace: np.ndarray) -> np.ndarray:
    return trace[trace["op"] != kmm.OP_TICK]


def fields_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Record-by-record equality of every field (fancy indexing does not keep padding bytes)."""
    return a.shape == b.shape and all(np.array_equal(a[f], b[f]) for f in kmm.TRACE_DTYPE.names)


def check_consistent(trace: np.ndarray, live: dict[int, bool] | None = None) -> dict[int, bool]:
    """Independent check of the trace's object discipline (what the engine validates);
    ``live`` maps each allocated object to whether it is a slab object."""
    live = {} if live is None else live
    for op, obj, gfp in zip(trace["op"].tolist(), trace["obj"].tolist(), trace["gfp"].tolist()):
        if op in (kmm.OP_ALLOC, kmm.OP_SLAB_ALLOC):
            assert obj not in live, f"object {obj} allocated twice"
            live[obj] = op == kmm.OP_SLAB_ALLOC
        elif op in (kmm.OP_FREE, kmm.OP_SLAB_FREE):
            assert obj in live, f"object {obj} freed but not allocated"
            assert live.pop(obj) == (op == kmm.OP_SLAB_FREE), f"object {obj} freed by the wrong op"
        elif op == kmm.OP_TOUCH:
            assert obj in live, f"object {obj} touched but not allocated"
        elif op == kmm.OP_SLAB_PIN:
            assert obj in live and live.get(gfp), f"object {obj} pins {gfp}: both must be allocated"
        else:
            assert op == kmm.OP_TICK
    return live


@pytest.fixture(scope="module")
def build_trace() -> tuple[np.ndarray, np.ndarray, wl.Load]:
    load = small_build(seed=5)
    tr = load.trace(12.0)
    return tr, load.stop(), load


# -- determinism -------------------------------------------------------------


def test_same_seed_same_bytes() -> None:
    a = small_stress(seed=4).trace(6.0)
    b = small_stress(seed=4).trace(6.0)
    assert a.shape[0] > 50_000
    assert a.tobytes() == b.tobytes()


def test_different_seeds_differ() -> None:
    a = small_build(seed=1).trace(5.0)
    b = small_build(seed=2).trace(5.0)
    assert a.tobytes() != b.tobytes()


@pytest.mark.parametrize("chunk_s", [1.0, 0.1, 0.137, 2.5])
def test_chunked_equals_whole(chunk_s: float) -> None:
    whole = small_stress(seed=1).trace(6.0)
    parts = list(small_stress(seed=1).chunks(6.0, chunk_s))
    assert len(parts) == int(np.ceil(6.0 / chunk_s - 1e-9))
    assert b"".join(p.tobytes() for p in parts) == whole.tobytes()


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=1500), min_size=1, max_size=8))
def test_chunked_at_any_millisecond_equals_whole(steps_ms: list[int]) -> None:
    end_ms = sum(steps_ms)
    whole = small_build(seed=9).trace(end_ms / 1000)
    load = small_build(seed=9)
    t = 0
    parts = []
    for s in steps_ms:
        t += s
        parts.append(load.run_until(t / 1000))
    assert b"".join(p.tobytes() for p in parts) == whole.tobytes()


def test_off_grid_chunks_keep_ops_and_times() -> None:
    """Boundaries off the 1 ms grid split ticks but move no operation in time."""
    whole = small_build(seed=6).trace(3.0)
    load = small_build(seed=6)
    parts = [load.run_until(t) for t in (0.0004, 0.2503, 1.0001, 1.9999, 3.0)]
    chunked = np.frombuffer(b"".join(p.tobytes() for p in parts), dtype=kmm.TRACE_DTYPE)

    def timed_ops(tr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tick = np.where(tr["op"] == kmm.OP_TICK, tr["obj"].astype(np.int64), 0)
        clock = np.cumsum(tick) - tick
        keep = tr["op"] != kmm.OP_TICK
        return tr[keep], clock[keep]

    a, ta = timed_ops(whole)
    b, tb = timed_ops(chunked)
    assert fields_equal(a, b)
    # an op emitted early in a split millisecond is at most that millisecond early
    assert np.all(ta - tb >= 0) and np.all(ta - tb < 1000)


@pytest.mark.parametrize("end", [2.5, 4.0, 6.0])
def test_an_end_keeps_the_trace_up_to_it(end: float) -> None:
    """end_at() drops only what comes after the end: the chunks, stop() and
    drop_caches() are the same bytes, and the load cannot run past it."""
    plain = small_stress(seed=4)
    ended = small_stress(seed=4)
    ended.end_at(end)
    for ld in (plain, ended):
        ld.run_until(0.3)
    ended.end_at(end)  # the same end again is fine
    a = [plain.run_until(t) for t in (1.7, end)] + [plain.stop(), plain.drop_caches()]
    b = [ended.run_until(t) for t in (1.7, end)]
    with pytest.raises(kmm.ConfigError):
        ended.run_until(end + 0.001)
    b += [ended.stop(), ended.drop_caches()]
    assert [x.tobytes() for x in a] == [x.tobytes() for x in b]
    assert ended.run_until(end + 1.0).shape[0] == 1000, "after stop(): ticks, past the end too"


def test_end_at_errors() -> None:
    load = small_build()
    load.run_until(1.0)
    for bad in (0.5, float("nan"), "2", True):
        with pytest.raises(kmm.ConfigError):
            load.end_at(bad)
    load.end_at(3.0)
    with pytest.raises(kmm.ConfigError):
        load.end_at(4.0)
    load.end_at(2.0)
    assert load.run_until(2.0).shape[0] > 0


# -- time --------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.0005, 0.001, 0.25, 1.0, 2.3456789])
def test_ticks_add_up(t: float) -> None:
    load = small_build(seed=0)
    tr = load.run_until(t)
    ticks = tr["obj"][tr["op"] == kmm.OP_TICK].astype(np.int64)
    assert ticks.sum() == round(t * 1e6)
    assert ticks.max() <= 1000 and ticks.min() > 0
    assert load.now == pytest.approx(t)
    tr2 = load.run_until(t + 0.5)
    assert tr2["obj"][tr2["op"] == kmm.OP_TICK].astype(np.int64).sum() == 500_000


def test_run_until_now_is_empty() -> None:
    load = small_build()
    load.run_until(0.5)
    assert load.run_until(0.5).shape[0] == 0


def test_allocations_spread_in_time(build_trace) -> None:
    """Operations come between many ticks, not in one burst per window."""
    tr, _, _ = build_trace
    tick_idx = np.nonzero(tr["op"] == kmm.OP_TICK)[0]
    ops_per_ms = np.diff(np.concatenate([[-1], tick_idx])) - 1
    busy = ops_per_ms[2000:] > 0  # after the first make reads its Makefiles
    assert busy.mean() > 0.5


# -- validity on the engine -----------------------------------------------------


def test_trace_is_consistent(build_trace) -> None:
    tr, stop, _ = build_trace
    live = check_consistent(tr)
    check_consistent(stop, live)


@pytest.mark.parametrize("allocator", ALLOCATORS)
def test_replays_on_every_allocator_and_stop_frees_processes(allocator: str) -> None:
    m = kmm.Machine(mem="256MiB", allocator=allocator)
    load = small_stress(seed=2)
    for chunk in load.chunks(9.0, 1.5):
        m.replay(chunk, outcomes=False)
    m.check()
    _, orders, _ = m.allocated_blocks()
    assert (orders == 1).sum() > 0  # kernel stacks of running processes
    _, c = m.replay(load.stop())
    m.check()
    assert c["free"] + c["free_reclaimed"] + c["free_noop"] > 1000
    pfns, orders, _ = m.allocated_blocks()
    assert (orders == 0).all(), "a kernel stack survived stop()"
    assert load.live_process_objects() == 0
    # what is left is exactly the caches (some of which reclaim may have taken)
    assert 0 < pfns.shape[0] <= load.cache_objects()


def test_stop_leaves_no_unreclaimable_pages() -> None:
    m = kmm.Machine(mem="256MiB", allocator="antifrag")
    pm0 = np.bincount(m.page_map(), minlength=6)
    load = small_build(seed=3)
    m.replay(load.trace(8.0), outcomes=False)
    assert np.bincount(m.page_map(), minlength=6)[kmm.PM_KERNNORCLM] > pm0[kmm.PM_KERNNORCLM] + 50
    m.replay(load.stop(), outcomes=False)
    m.drain_pcp()
    pm = np.bincount(m.page_map(), minlength=6)
    assert pm[kmm.PM_KERNNORCLM] == pm0[kmm.PM_KERNNORCLM]
    assert pm[kmm.PM_USERRCLM] > 0 and pm[kmm.PM_KERNRCLM] > 0  # page cache, dentries, inodes


def test_after_stop_only_ticks() -> None:
    load = small_build(seed=1)
    load.run_until(3.0)
    load.stop()
    assert load.stopped
    tr = load.run_until(5.0)
    assert (tr["op"] == kmm.OP_TICK).all() and tr["obj"].astype(np.int64).sum() == 2_000_000
    assert load.stop().shape[0] == 0


def test_memory_fills_and_reclaim_runs() -> None:
    """On a small machine the load fills memory by itself and reclaim keeps up."""
    m = kmm.Machine(mem="128MiB", allocator="vanilla")
    _, c = m.replay(small_stress(seed=0).trace(10.0), outcomes=False)
    assert c["pgsteal"] > 0 and c["alloc_fail"] == 0
    m.check()


# -- object ids, pids, kinds ------------------------------------------------------


def test_object_ids_in_range_and_recycled(build_trace) -> None:
    tr, _, load = build_trace
    o = ops(tr)
    assert o["obj"].max() < load.peak_objects
    allocs = o["obj"][o["op"] == kmm.OP_ALLOC]
    # ids come back: far fewer distinct ids than allocations
    assert np.unique(allocs).shape[0] < 0.6 * allocs.shape[0]
    assert load.peak_objects < allocs.shape[0]


def test_kinds_map_to_gfp_order_and_stack() -> None:
    stacks = {k: 100 + i for i, k in enumerate(wl.KINDS)}
    lay = small_tree()
    load = wl.combine(
        wl.updatedb(files=5_000, files_per_s=5_000),
        wl.kernel_build(2, layout=lay, copy_tree=True, tree="c", source_tree="m"),
        stacks=stacks,
    )
    tr = load.trace(6.0)
    a = tr[(tr["op"] == kmm.OP_ALLOC) | (tr["op"] == kmm.OP_SLAB_ALLOC)]
    seen = set()
    for kind, handle in stacks.items():
        sel = a[a["stack"] == handle]
        # inject_leak's; the system load's test module; the THP workers' (thp.py); workloads.nic's;
        # workloads.resident's (tests/test_resident.py)
        if kind in ("leak", "kmalloc_4096", "thp_fault", "nic_rx", "anon_resident"):
            assert sel.shape[0] == 0
            continue
        assert sel.shape[0] > 0, kind
        seen.add(kind)
        gfps = set(sel["gfp"].tolist())
        if kind in ("dentry", "inode", "buffer_head"):
            assert gfps == {KERNRCLM}
        elif kind in ("page_table", "task_struct") or kind in wl.kinds.KIND_SLAB:
            assert gfps == {kmm.GFP_KERNEL}
        elif kind == "pagecache_read":  # block-device pages are GFP_USER
            assert gfps <= {kmm.GFP_HIGHUSER, kmm.GFP_USER} and kmm.GFP_HIGHUSER in gfps
        else:
            assert gfps == {kmm.GFP_HIGHUSER}
        orders = set(sel["order"].tolist())
        if kind in wl.kinds.KIND_SLAB:  # slab objects: the order byte names the cache
            assert (sel["op"] == kmm.OP_SLAB_ALLOC).all(), kind
            assert orders == {kmm.SLAB_CACHES[wl.kinds.KIND_SLAB[kind]]}, kind
        else:
            assert (sel["op"] == kmm.OP_ALLOC).all(), kind
            assert orders == ({1} if kind == "task_struct" else {0}), kind
    assert (a["stack"] >= 100).all()
    assert (tr["stack"][tr["op"] == kmm.OP_TICK] == 0).all()


def test_stacks_replay_with_page_owner() -> None:
    from kmm import page_owner

    m = kmm.Machine(mem="256MiB", allocator="antifrag", page_owner=True)
    load = small_build(seed=2, stacks=page_owner.workload_stacks(m))
    m.replay(load.trace(4.0), outcomes=False)
    m.replay(load.stop(), outcomes=False)
    m.check()


def test_default_stack_is_zero(build_trace) -> None:
    tr, _, _ = build_trace
    assert (tr["stack"] == 0).all()


def test_pids_and_tgids() -> None:
    tr = ops(small_build(seed=1).trace(6.0))
    assert (tr["pid"] == tr["tgid"]).all()
    # a compile spawns sh, gcc, cc1, as and fixdep: many processes
    assert np.unique(tr["pid"]).shape[0] > 50


def test_combine_disjoint_ids_and_pids() -> None:
    lay = small_tree()
    a = wl.kernel_build(2, seed=1, layout=lay, tree="a").trace(5.0)
    b = wl.kernel_build(2, seed=1, layout=lay, tree="b").trace(5.0)
    both = wl.combine(
        wl.kernel_build(2, seed=1, layout=lay, tree="a"),
        wl.kernel_build(2, seed=1, layout=lay, tree="b"),
    ).trace(5.0)
    check_consistent(both)
    na = np.unique(ops(a)["pid"]).shape[0]
    nb = np.unique(ops(b)["pid"]).shape[0]
    assert np.unique(ops(both)["pid"]).shape[0] == na + nb
    # the same processes and caches, only renumbered (shared program text is a
    # touch instead of an alloc for the second build, still one op)
    assert ops(both).shape[0] == ops(a).shape[0] + ops(b).shape[0]
    ticks = both["obj"][both["op"] == kmm.OP_TICK].astype(np.int64).sum()
    assert ticks == 5_000_000


def test_combine_rejects_reuse() -> None:
    a = small_build()
    wl.combine(a)
    with pytest.raises(kmm.ConfigError):
        a.run_until(1.0)
    with pytest.raises(kmm.ConfigError):
        wl.combine(a)
    b = small_build()
    b.run_until(0.1)
    with pytest.raises(kmm.ConfigError):
        wl.combine(b)
    c = small_build()
    with pytest.raises(kmm.ConfigError):
        wl.combine(c, c)
    with pytest.raises(kmm.ConfigError):
        wl.combine()
    with pytest.raises(kmm.ConfigError):
        wl.combine("load")  # type: ignore[arg-type]


# -- the benchmark's load -----------------------------------------------------------


def test_stress_highalloc_load_shape() -> None:
    """updatedb and the first cp start at once; no compile before the copy is done."""
    load = wl.stress_highalloc_load(builds=3, jobs=2, seed=0)
    tr = load.trace(2.0)
    a = tr[tr["op"] == kmm.OP_ALLOC]
    nsys = load.describe()[0]["processes"]  # the long-lived system processes
    assert (a["order"] == 1).sum() == 2 + nsys  # kernel stacks: cp, updatedb and the system
    s = tr[tr["op"] == kmm.OP_SLAB_ALLOC]
    assert (s["gfp"] == KERNRCLM).sum() > 100  # updatedb's dentries and inodes
    assert (a["gfp"] == kmm.GFP_HIGHUSER).sum() > 10_000  # the copy's page cache
    assert (a["gfp"] == kmm.GFP_USER).sum() > 50  # inode tables and directory blocks


# -- inject_leak -------------------------------------------------------------------


def test_inject_leak_semantics(build_trace) -> None:
    tr, _stop, _ = build_trace
    t = tr[:50_000]
    leaky = wl.inject_leak(t, every=1000, order=2, stack=0)
    n = t.shape[0] // 1000
    assert leaky.shape[0] == t.shape[0] + n
    pos = (np.arange(n) + 1) * 1000 + np.arange(n)
    leaks = leaky[pos]
    assert (leaks["op"] == kmm.OP_ALLOC).all() and (leaks["order"] == 2).all()
    assert (leaks["gfp"] == kmm.GFP_KERNEL).all()
    base = int(ops(t)["obj"].max()) + 1
    assert leaks["obj"].tolist() == list(range(base, base + n))
    mask = np.ones(leaky.shape[0], bool)
    mask[pos] = False
    assert fields_equal(leaky[mask], t)
    assert (leaks["pid"] == leaks["tgid"]).all() and leaks["pid"][0] not in set(t["pid"].tolist())
    # on the engine: the leaked blocks are never freed
    m = kmm.Machine(mem="256MiB", allocator="antifrag")
    out, _ = m.replay(leaky)
    assert (out[pos] >= 0).all()
    for obj in leaks["obj"][:5]:
        assert m.object_block(int(obj))[1] == 2


def test_inject_leak_custom_ids_and_errors(build_trace) -> None:
    tr, _, _ = build_trace
    t = tr[:10_000]
    leaky = wl.inject_leak(t, every=3000, obj_base=2**31, pid=7, gfp="GFP_HIGHUSER")
    lk = leaky[leaky["obj"] >= 2**31]
    assert lk["obj"].tolist() == [2**31, 2**31 + 1, 2**31 + 2]
    assert (lk["pid"] == 7).all() and (lk["gfp"] == kmm.GFP_HIGHUSER).all()
    used = int(ops(t)["obj"][0])
    with pytest.raises(kmm.ConfigError):
        wl.inject_leak(t, obj_base=used)
    with pytest.raises(kmm.ConfigError):
        wl.inject_leak(t, every=0)
    with pytest.raises(kmm.ConfigError):
        wl.inject_leak(t, order=11)
    with pytest.raises(kmm.GfpError):
        wl.inject_leak(t, gfp=1 << 30)
    with pytest.raises(kmm.TraceError):
        wl.inject_leak(np.zeros(10, dtype=np.int64))
    with pytest.raises(kmm.ConfigError):
        wl.inject_leak(t, obj_base=2**32 - 2)
    assert wl.inject_leak(t[:10], every=100).tobytes() == t[:10].tobytes()


# -- bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: wl.kernel_build(-1),
        lambda: wl.kernel_build(0),
        lambda: wl.kernel_build(4.5),
        lambda: wl.kernel_build(4, seed=-1),
        lambda: wl.kernel_build(4, cpus=0),
        lambda: wl.kernel_build(4, start=float("nan")),
        lambda: wl.kernel_build(4, cpu_share=[]),
        lambda: wl.kernel_build(4, cpu_share=[(0, -1)]),
        lambda: wl.kernel_build(4, tree="x", source_tree="x"),
        lambda: wl.kernel_build(4, stacks={"anon_fault": -3}),
        lambda: wl.kernel_build(4, stacks=[1, 2]),
        lambda: wl.kernel_build(4, layout="big"),
        lambda: wl.updatedb(files=0),
        lambda: wl.updatedb(files_per_s=float("inf")),
        lambda: wl.stress_highalloc_load(builds=-1),
        lambda: wl.stress_highalloc_load(jobs=0),
        lambda: wl.stress_highalloc_load(builds=0, updatedb=False),
        lambda: wl.stress_highalloc_load(updatedb="yes"),
        lambda: wl.kernel_tree(files=10, units=20),
        lambda: wl.kernel_build(4, cpus=0.01, cpu_median_s=10.0),  # a build of weeks
        lambda: wl.updatedb(files=10_000_000, files_per_s=10),
    ],
)
def test_bad_arguments(make) -> None:
    with pytest.raises(kmm.ConfigError):
        make()


def test_bad_times() -> None:
    load = small_build()
    load.run_until(1.0)
    with pytest.raises(kmm.TraceError):
        load.run_until(0.5)
    with pytest.raises(kmm.ConfigError):
        load.run_until(float("nan"))
    with pytest.raises(kmm.ConfigError):
        load.run_until("2")  # type: ignore[arg-type]
    with pytest.raises(kmm.ConfigError):
        load.run_until(1e9)
    with pytest.raises(kmm.ConfigError):
        next(load.chunks(3.0, 0.0))
    with pytest.raises(kmm.TraceError):
        next(load.chunks(0.2))
    # nothing changed by the failures
    assert load.now == 1.0
    tr = load.run_until(1.5)
    assert tr["obj"][tr["op"] == kmm.OP_TICK].astype(np.int64).sum() == 500_000


@settings(max_examples=8, deadline=None)
@given(
    jobs=st.integers(min_value=1, max_value=12),
    cpus=st.floats(min_value=0.5, max_value=16.0),
    seed=st.integers(min_value=0, max_value=2**32),
    touch=st.floats(min_value=0.2, max_value=20.0),
    short=st.floats(min_value=0.0, max_value=1.0),
)
def test_any_build_replays(jobs: int, cpus: float, seed: int, touch: float, short: float) -> None:
    load = small_build(jobs=jobs, cpus=cpus, seed=seed, touch_interval_s=touch, short_frac=short)
    m = kmm.Machine(mem="128MiB", allocator="antifrag")
    for chunk in load.chunks(3.0, 0.7):
        m.replay(chunk, outcomes=False)
    m.replay(load.stop(), outcomes=False)
    m.check()
    assert load.live_process_objects() == 0


@settings(max_examples=20, deadline=None)
@given(every=st.integers(min_value=1, max_value=5000), n=st.integers(min_value=0, max_value=20_000))
def test_inject_leak_counts(build_trace, every: int, n: int) -> None:
    tr, _, _ = build_trace
    t = tr[:n]
    leaky = wl.inject_leak(t, every=every)
    k = n // every
    assert leaky.shape[0] == n + k
    is_leak = np.zeros(leaky.shape[0], bool)
    is_leak[(np.arange(k) + 1) * every + np.arange(k)] = True
    assert fields_equal(leaky[~is_leak], t)
    assert (leaky["op"][is_leak] == kmm.OP_ALLOC).all()
    if n <= 3000:  # a prefix of a valid trace plus leaks is still valid
        check_consistent(leaky)


def test_describe_stress_schedule() -> None:
    """Copies run one after another; each build starts when its copy is done."""
    d = wl.stress_highalloc_load(builds=4, jobs=4, seed=0).describe()
    assert [x["kind"] for x in d] == ["system", "updatedb"] + ["kernel_build"] * 4
    d = d[1:]
    assert d[0]["start_s"] == 0 and d[0]["walk_end_s"] == pytest.approx(100.0)
    copies = d[1:4]
    copy_s = wl.kernel_tree(seed=0).bytes / 35e6
    for k, b in enumerate(copies):
        assert b["copy_from"] == "linux-2.6.11"
        assert b["copy_start_s"] == pytest.approx(k * copy_s, abs=1e-5)
        assert b["make_start_s"] == pytest.approx((k + 1) * copy_s, abs=1e-5)
    main = d[4]
    assert main["copy_from"] is None and main["tree"] == "linux-2.6.11"
    assert main["make_start_s"] == pytest.approx(copies[-1]["make_start_s"], abs=1e-5)
    assert all(b["make_end_s"] > 196 for b in d[1:])  # still building when the test ends


def test_public_names_of_the_module_survive_the_package():
    assert set(wl.__all__) == {
        "KINDS",
        "KIND_GFP",
        "Load",
        "TreeLayout",
        "combine",
        "copies_done_s",
        "fio_writers",
        "inject_leak",
        "kernel_build",
        "kernel_tree",
        "load_for_memory",
        "resident",
        "stress_highalloc_load",
        "system",
        "thp_workers",
        "updatedb",
    }
    assert callable(wl.updatedb)  # the function, not the module that holds it
    assert wl.inject_leak is kmm.trace.inject_leak
    assert wl.PAGE == 4096 and wl.MS == 1000 and wl.PROGRAMS["cc1"] == (700, 3072)


def test_a_build_waiting_for_a_slot() -> None:
    kw = dict(copy_tree=True, tree="c", source_tree="m", seed=2)
    now = small_build(**kw).describe()[0]
    # the make waits for its slot; the copy does not
    late = small_build(make_from=now["make_start_s"] + 5.0, **kw).describe()[0]
    assert late["copy_start_s"] == now["copy_start_s"]
    assert late["make_start_s"] == now["make_start_s"] + 5.0
    assert late["make_end_s"] - late["make_start_s"] == pytest.approx(
        now["make_end_s"] - now["make_start_s"], abs=0.2
    )
    # a slot already free: as if not waiting
    assert small_build(make_from=0.0, **kw).describe()[0] == now
    # a slot freeing too late for the make to end within the horizon: copied only
    ld = small_build(make_from=59_999.0, cpus=0.01, **kw)
    d = ld.describe()[0]
    assert d["make_start_s"] is None and d["units"] == 0
    tr = ld.trace(10.0)
    assert tr.shape[0] > 0
    with pytest.raises(kmm.ConfigError, match="make_from"):
        small_build(make_from=-1.0, **kw)


def test_held_counts_the_events_generated_ahead_and_end_at_bounds_them() -> None:
    # what the generator holds for the trace still to come (Load.held): a
    # process's whole life is generated when it starts, so a build holds
    # events ahead; with the end declared, none past it is kept, so every
    # event held at 12 s is emitted in the last second
    load = small_build(seed=5)
    assert load.held() == {"pending_events": 0, "windows": 0, "bytes": 0}
    load.trace(12.0)
    h = load.held()
    assert h["pending_events"] > 1000 and h["windows"] > 10 and h["bytes"] >= 24 * h["pending_events"]
    ended = small_build(seed=5)
    ended.end_at(13.0)
    ended.trace(12.0)
    e = ended.held()
    assert 0 < e["pending_events"] < h["pending_events"]
    last = ops(ended.run_until(13.0))
    assert e["pending_events"] <= last.shape[0]
    assert ended.held()["pending_events"] == 0
