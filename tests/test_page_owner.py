"""page_owner: stack depot, recording, exact dump formats, engine aggregation, memory."""

from __future__ import annotations

import io
import itertools
import re

import kmm
import kmm.page_owner as po
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kmm import symbols
from kmm.errors import PageOwnerError, PfnError, TraceError
from kmm.machine import OP_ALLOC, OP_FREE, OP_TICK
from kmm.page_owner.view import _TextSink
from kmm.symbols import CHAINS

README_CHAIN = [("__do_page_cache_readahead", 290), ("max_sane_readahead", 48), ("filemap_nopage", 790)]


def machine(**kw) -> kmm.Machine:
    kw.setdefault("mem", "64MiB")
    return kmm.Machine(page_owner=True, **kw)


# ---------------------------------------------------------------------------
# stack depot


def test_intern_known_stack_same_handle_and_no_growth() -> None:
    m = machine()
    frames = symbols.chain(*README_CHAIN)
    h = m.page_owner.intern(frames)
    assert h != 0
    before = m.page_owner.depot_stats()
    assert m.page_owner.intern(frames) == h
    after = m.page_owner.depot_stats()
    assert after["bytes"] == before["bytes"]
    assert after["stacks"] == 1 and after["frames"] == 3
    assert after["hits"] == before["hits"] + 1
    assert m.page_owner.frames(h) == [tuple(f) for f in frames]
    assert m.page_owner.frames(0) == []
    # four-item frames (no module) and a module frame make different stacks
    h4 = m.page_owner.intern([f[:4] for f in frames])
    assert h4 == h
    h5 = m.page_owner.intern([*frames[:2], (*frames[2][:4], "ext3")])
    assert h5 not in (0, h)
    assert m.page_owner.frames(h5)[2][4] == "ext3"


@pytest.mark.parametrize(
    "frames",
    [
        [],
        "kmem_getpages",
        [(1, "f", 0)],
        [(1, "f", 4, 4)],  # offset outside the symbol
        [(1, "", 0, 4)],
        [(1, "two words", 0, 4)],
        [(1, "a+b", 0, 4)],
        [(-1, "f", 0, 4)],
        [(1, "f", 0, 4, 7)],
        [(1, "f", 0, 4)] * 65,
        [(1, "f", True, 4)],
    ],
)
def test_intern_rejects_bad_frames(frames) -> None:
    m = machine()
    with pytest.raises(PageOwnerError):
        m.page_owner.intern(frames)
    assert m.page_owner.depot_stats()["stacks"] == 0


def test_machine_without_page_owner() -> None:
    m = kmm.Machine(mem="64MiB")
    with pytest.raises(PageOwnerError, match="without page_owner"):
        _ = m.page_owner


def test_unknown_handles_are_errors_and_change_nothing() -> None:
    m = machine()
    h = m.page_owner.intern_symbols(README_CHAIN)
    with pytest.raises(PageOwnerError, match="not in this machine's stack depot"):
        m.alloc(0, stack=h + 1)
    pfn = m.alloc(0, stack=h, pid=3)
    with pytest.raises(PageOwnerError):
        m.free(pfn, stack=h + 7)
    assert m.page_owner.owner(pfn)["stack"] == h  # still allocated, still owned
    with pytest.raises(PageOwnerError):
        m.page_owner.frames(h + 1)
    t = kmm.empty_trace(2)
    t["op"] = [OP_ALLOC, OP_FREE]
    t["obj"] = [0, 0]
    t["gfp"] = kmm.GFP_KERNEL
    t["stack"] = [h, 99]
    snapshot = m.page_owner.dumps("modern")
    with pytest.raises(TraceError, match="stack handle"):
        m.replay(t)
    assert m.page_owner.dumps("modern") == snapshot
    m.check()


def test_owner_of_a_non_head_is_a_pfn_error() -> None:
    m = machine()
    pfn = m.alloc(2)
    with pytest.raises(PfnError):
        m.page_owner.owner(pfn + 1)
    m.free(pfn)
    with pytest.raises(PfnError):
        m.page_owner.owner(pfn)


def test_comm_validation_and_inheritance() -> None:
    m = machine()
    m.page_owner.set_comm(100, "make")
    assert m.page_owner.comm(101, 100) == "make"  # a thread of make
    assert m.page_owner.comm(0) == "swapper"
    assert m.page_owner.comm(5) == "kmm"
    for bad in ("", "x" * 16, "a(b", "tab\there"):
        with pytest.raises(PageOwnerError):
            m.page_owner.set_comm(7, bad)
    with pytest.raises(PageOwnerError):
        m.page_owner.set_comm(-1, "x")


# ---------------------------------------------------------------------------
# exact dump formats


def test_dump_2005_is_the_articles_format() -> None:
    m = machine(allocator="antifrag")
    h = m.page_owner.intern_symbols(symbols.CHAINS["pagecache_read"])
    m.alloc(0, "GFP_HIGHUSER", stack=h, pid=1)
    assert m.page_owner.dumps("2005") == (
        "Page allocated via order 0, mask 0x200d2\n"
        "[0xc0146572] __do_page_cache_readahead+290\n"
        "[0xc0146a70] max_sane_readahead+48\n"
        "[0xc0140166] filemap_nopage+790\n"
        "[0xc013fe50] filemap_nopage+0\n"
        "[0xc0150861] do_no_page+193\n"
        "[0xc0150cc6] handle_mm_fault+246\n"
        "[0xc01126cc] do_page_fault+492\n"
        "[0xc0151b3c] remove_vm_struct+140\n"
        "\n"
    )


def test_dump_2005_keeps_eight_frames_modern_sixteen() -> None:
    m = machine()
    frames = [(0xC0100000 + 0x100 * i, f"fn{i}", 1, 0x100) for i in range(20)]
    h = m.page_owner.intern(frames)
    m.alloc(0, stack=h)
    old = m.page_owner.dumps("2005").splitlines()
    new = m.page_owner.dumps("modern").splitlines()
    assert len(old) == 1 + 8 + 1 and old[-2] == "[0xc0100700] fn7+1"
    assert len(new) == 2 + 16 + 1 and new[-2] == " fn15+0x1/0x100"


@pytest.mark.parametrize("allocator,types", [
    ("mobility", ("Unmovable", "Movable", "Reclaimable")),
    ("antifrag", ("KernNoRclm", "UserRclm", "KernRclm")),
    ("vanilla", ("Unmovable", "Movable", "Reclaimable")),
])
def test_dump_modern_exact(allocator: str, types: tuple[str, str, str]) -> None:
    m = machine(allocator=allocator)
    h = m.page_owner.intern_symbols(README_CHAIN)
    hm = m.page_owner.intern([(0xF88A1035, "leaky_alloc_buffer", 37, 0x60, "leakydrv")])
    m.page_owner.set_comm(42, "cc1")
    m.advance(0.25)
    a = m.alloc(1, kmm.GFP_KERNEL | kmm.gfp.__GFP_COMP, stack=h, pid=43, tgid=42)
    b = m.alloc(0, "GFP_HIGHUSER", stack=hm, pid=7)
    c = m.alloc(0, "GFP_KERNEL|__GFP_KERNRCLM", stack=h, pid=0)
    zt = {p: m.zone_names.index(z.zone) for p in (a, b, c) for z in m.zone_stats()
          if z.start_pfn <= p < z.start_pfn + z.spanned}
    bo = m.pageblock_order
    recs = {
        a: (f"Page allocated via order 1, mask 0x40d0(GFP_KERNEL|__GFP_COMP), pid 43, tgid 42 (cc1), ts 250000000 ns\n"
            f"PFN {a:#x} type {types[0]} Block {a >> bo} type {types[0]} Flags {(zt[a] << 30) | (1 << 16):#x}(head|node=0|zone={zt[a]})\n"
            " __do_page_cache_readahead+0x122/0x1a0\n max_sane_readahead+0x30/0x40\n filemap_nopage+0x316/0x3a0\n\n"),
        b: (f"Page allocated via order 0, mask 0x200d2(GFP_HIGHUSER), pid 7, tgid 7 (kmm), ts 250000000 ns\n"
            f"PFN {b:#x} type {types[1]} Block {b >> bo} type {types[1]} Flags {zt[b] << 30:#x}(node=0|zone={zt[b]})\n"
            " leaky_alloc_buffer+0x25/0x60 [leakydrv]\n\n"),
        c: (f"Page allocated via order 0, mask 0x100d0(GFP_KERNEL|__GFP_KERNRCLM), pid 0, tgid 0 (swapper), ts 250000000 ns\n"
            f"PFN {c:#x} type {types[2]} Block {c >> bo} type {types[2]} Flags {zt[c] << 30:#x}(node=0|zone={zt[c]})\n"
            " __do_page_cache_readahead+0x122/0x1a0\n max_sane_readahead+0x30/0x40\n filemap_nopage+0x316/0x3a0\n\n"),
    }
    assert m.page_owner.dumps("modern") == "".join(recs[p] for p in sorted(recs))


def test_dump_to_path_text_file_and_chunked_binary(tmp_path) -> None:
    m = machine()
    h = m.page_owner.intern_symbols(README_CHAIN)
    for i in range(3000):
        m.alloc(0, stack=h, pid=i % 7)
    want = m.page_owner.dumps("modern")
    p = tmp_path / "po.txt"
    assert m.page_owner.dump(p, "modern") == 3000
    assert p.read_text() == want
    s = io.StringIO()
    m.page_owner.dump(s, "modern")
    assert s.getvalue() == want

    class Counting(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            self.calls += 1
            self.buf += b
            return len(b)

    c = Counting()
    m.page_owner.dump(c, "modern")
    assert c.buf.decode() == want and c.calls == 1  # < 1 MiB: one write
    with pytest.raises(PageOwnerError, match="format"):
        m.page_owner.dump(c, "1999")
    with pytest.raises(PageOwnerError):
        m.page_owner.dump(12, "modern")
    with pytest.raises(OSError):
        m.page_owner.dump(tmp_path / "no" / "such" / "dir.txt", "2005")


def test_dump_only_allocated_heads_in_pfn_order() -> None:
    m = machine()
    h = m.page_owner.intern_symbols(README_CHAIN)
    pfns = [m.alloc(o % 4, stack=h, pid=o) for o in range(40)]
    for p in pfns[::3]:
        m.free(p)
    text = m.page_owner.dumps("modern")
    got = [int(x, 16) for x in re.findall(r"^PFN (0x[0-9a-f]+)", text, re.MULTILINE)]
    assert got == sorted(set(pfns) - set(pfns[::3]))
    orders = [int(x) for x in re.findall(r"via order (\d+)", text)]
    want = {p: o % 4 for o, p in enumerate(pfns)}
    assert orders == [want[p] for p in got]


def test_zero_mask_and_utf8_comm_round_trip() -> None:
    m = machine()
    h = m.page_owner.intern_symbols(README_CHAIN)
    m.page_owner.set_comm(5, "café")
    m.alloc(0, 0, stack=h, pid=5)
    text = m.page_owner.dumps("modern")
    assert text.startswith("Page allocated via order 0, mask 0(GFP_NOWAIT), pid 5, tgid 5 (café), ts 0 ns\n")
    assert _summary(po.read(text.encode()).groups) == _summary(m.page_owner.groups("modern"))
    # a text file gets whole characters even when a chunk ends inside one
    out = io.StringIO()
    sink = _TextSink(out)
    raw = text.encode()
    cut = raw.index("é".encode()) + 1
    sink.write(raw[:cut])
    sink.write(raw[cut:])
    assert out.getvalue() == text


# ---------------------------------------------------------------------------
# show_stacks and the engine's own aggregation


def test_show_stacks_exact_and_threshold() -> None:
    m = machine()
    h1 = m.page_owner.intern_symbols(README_CHAIN)
    h2 = m.page_owner.intern_symbols(symbols.CHAINS["task_struct"])
    for _ in range(3):
        m.alloc(1, stack=h2, pid=9)
    ps = [m.alloc(0, stack=h1, pid=1) for _ in range(4)]
    m.free(ps[0])
    m.alloc(0)  # no stack: not shown
    s = m.page_owner.stacks()
    assert list(s.handles) == [0, h1, h2] and list(s.nr_base_pages) == [1, 3, 6]
    assert s.text == (
        " __do_page_cache_readahead+0x122/0x1a0\n max_sane_readahead+0x30/0x40\n"
        " filemap_nopage+0x316/0x3a0\nnr_base_pages: 3\n\n"
        " __get_free_pages+0x1e/0x40\n copy_process+0xb7/0xd10\n do_fork+0x78/0x1a0\n"
        " sys_clone+0x36/0x50\n syscall_call+0x7/0x30\nnr_base_pages: 6\n\n"
    )
    t = m.page_owner.stacks(threshold=4)
    assert list(t.handles) == [h2] and t.text.count("nr_base_pages") == 1
    assert m.page_owner.show_stacks(7) == ""
    # 6.19's show_handles and show_stacks_handles, byte-exact
    assert m.page_owner.show_handles() == f"handle: {h1}\nnr_base_pages: 3\n\nhandle: {h2}\nnr_base_pages: 6\n\n"
    assert m.page_owner.show_handles(4) == f"handle: {h2}\nnr_base_pages: 6\n\n"
    assert m.page_owner.show_stacks_handles() == s.text.replace(
        "nr_base_pages: 3\n", f"handle: {h1}\n").replace("nr_base_pages: 6\n", f"handle: {h2}\n")
    # and kmm page-owner sort reads a show_stacks file
    r = kmm.page_owner.read(s.text.encode())
    assert [(g.count, g.pages) for g in r.groups] == [(1, 3), (1, 6)]


def test_engine_aggregate_by_stack_and_context() -> None:
    m = machine()
    h1 = m.page_owner.intern_symbols(README_CHAIN)
    h2 = m.page_owner.intern_symbols(symbols.CHAINS["leak"])
    for i in range(10):
        m.alloc(0, stack=h2, pid=1 + i % 2)
    for _ in range(4):
        m.alloc(2, stack=h1, pid=3)
    a = m.page_owner.aggregate()
    assert list(a["stack"]) == [h2, h1]
    assert list(a["blocks"]) == [10, 4] and list(a["pages"]) == [10, 16]
    c = m.page_owner.aggregate(by="context")
    assert sorted(zip(c["pid"].tolist(), c["blocks"].tolist())) == [(1, 5), (2, 5), (3, 4)]
    with pytest.raises(PageOwnerError):
        m.page_owner.aggregate(by="comm")


def test_free_stack_recorded_when_asked() -> None:
    m = kmm.Machine(mem="64MiB", page_owner=True, page_owner_free_stacks=True)
    h = m.page_owner.intern_symbols(README_CHAIN)
    hf = m.page_owner.intern_symbols(symbols.CHAINS["task_struct"])
    p = m.alloc(0, stack=h, pid=1)
    rec = m.page_owner.owner(p)
    assert rec["stack"] == h and rec["free_stack"] == 0
    m.free(p, stack=hf)
    m.drain_pcp()
    q = m.alloc(0, stack=h, pid=2)  # reuse resets the record
    assert m.page_owner.owner(q)["free_stack"] == 0


# ---------------------------------------------------------------------------
# round trip: dump -> parse -> the engine's own counts


def _random_machine(ops: list[tuple[int, int, int, bool]], allocator: str = "mobility") -> kmm.Machine:
    m = machine(allocator=allocator)
    kinds = list(symbols.CHAINS)
    handles = [0] + [m.page_owner.intern_symbols(symbols.CHAINS[k]) for k in kinds]
    m.page_owner.set_comm(3, "cc1")
    live: list[int] = []
    for order, pid, stack, free in ops:
        if free and live:
            m.free(live.pop(pid % len(live)))
        else:
            gfp = ("GFP_KERNEL", "GFP_HIGHUSER", "GFP_KERNEL|__GFP_KERNRCLM")[stack % 3]
            p = m.alloc(order, gfp, stack=handles[stack % len(handles)], pid=pid)
            if p is not None:
                live.append(p)
        m.advance(0.001)
    return m


def _summary(groups) -> list[tuple[str, int, int]]:
    return sorted((g.text, g.count, g.pages) for g in groups)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(0, 20), st.booleans()),
                 min_size=1, max_size=120),
    fmt=st.sampled_from(po.FORMATS),
    allocator=st.sampled_from(["vanilla", "antifrag", "mobility"]),
)
def test_round_trip_dump_parse_equals_engine(ops, fmt, allocator) -> None:
    m = _random_machine(ops, allocator)
    text = m.page_owner.dumps(fmt)
    report = po.read(text.encode())
    assert report.stats["skipped"] == 0
    engine = m.page_owner.groups(fmt)
    assert _summary(report.groups) == _summary(engine)
    # and per stack handle, the pages match the vectorised aggregation
    agg = m.page_owner.aggregate()
    assert int(agg["pages"].sum()) == sum(g.pages for g in report.groups)
    assert report.records == int(agg["blocks"].sum())
    if fmt == "modern":
        assert report.stats["records_modern"] == report.records
        first = {g.text: g.first_ts for g in engine}
        assert all(g.first_ts == first[g.text] for g in report.groups)


# ---------------------------------------------------------------------------
# memory


def test_memory_target_on_a_loaded_machine() -> None:
    """At most 8 bytes per page, depot and context table included, under a
    kernel-build load (contexts repeat: a task allocates through a few call sites)."""
    workloads = pytest.importorskip("kmm.workloads")
    m = kmm.Machine(mem="512MiB", allocator="antifrag", page_owner=True)
    stacks = po.workload_stacks(m)
    m.replay(workloads.stress_highalloc_load(builds=2, jobs=4, seed=5, stacks=stacks).trace(20.0),
             outcomes=False)
    mem = m.page_owner.memory()
    assert mem["per_page"] == 6 * m.nr_pages
    assert m.page_owner.depot_stats()["contexts"] > 500
    assert sum(m.page_owner.aggregate()["pages"]) > m.nr_pages // 4  # really loaded
    assert m.page_owner.bytes_per_page() <= 8.0
    assert mem["total"] == mem["per_page"] + mem["contexts"] + mem["depot"] + mem["comms"]


def test_context_table_grows_with_distinct_contexts() -> None:
    m = kmm.Machine(mem="64MiB", page_owner=True)
    h = m.page_owner.intern_symbols(README_CHAIN)
    base = m.page_owner.memory()["contexts"]
    t = kmm.empty_trace(5000)
    t["op"] = OP_ALLOC
    t["obj"] = np.arange(5000)
    t["gfp"] = kmm.GFP_KERNEL
    t["stack"] = h
    t["pid"] = np.arange(5000)  # every allocation its own task: one context each
    t["tgid"] = t["pid"]
    m.replay(t, outcomes=False)
    assert m.page_owner.depot_stats()["contexts"] == 5000
    grown = m.page_owner.memory()["contexts"] - base
    assert 20 * 5000 <= grown <= 40 * 5000  # 20-byte contexts, quarter growth, 3/4 load table


def test_workload_stacks_cover_every_kind() -> None:
    m = machine()
    s = po.workload_stacks(m)
    assert set(s) == set(po.WORKLOAD_KINDS)
    # one handle per distinct chain (kinds faulted on the same path share one)
    chains = {tuple(c) for c in CHAINS.values()}
    assert len(set(s.values())) == len(chains) and 0 not in s.values()
    assert po.workload_stacks(m) == s  # interning again finds the same stacks
    try:
        from kmm import workloads
    except ImportError:  # pragma: no cover
        return
    assert set(workloads.KINDS) <= set(s)


def test_symbol_table_is_consistent() -> None:
    syms = sorted(symbols.SYMBOLS.values(), key=lambda s: s.addr)
    for a, b in itertools.pairwise(syms):
        assert a.addr + a.size <= b.addr, (a.name, b.name)
    for s in syms:
        assert (0xC0100000 <= s.addr < 0xC0500000) or (s.module and s.addr >= 0xF8800000)
    for calls in symbols.CHAINS.values():
        for name, off in calls:
            assert 0 <= off < symbols.SYMBOLS[name].size
    assert symbols.lookup(0xC0146F01)[0].name == "kmem_getpages"
    assert symbols.lookup(0xC0146F01)[1] == 49
    assert symbols.lookup(0x1000) is None
    with pytest.raises(PageOwnerError):
        symbols.frame("no_such_function", 0)
    with pytest.raises(PageOwnerError):
        symbols.frame("kmem_getpages", 10_000)


# ---------------------------------------------------------------------------
# leak hunting, end to end


def _leaky_trace(stacks: dict[str, int], leaks: int, seed: int = 0) -> np.ndarray:
    """Background kinds allocate and free; one call site allocates and never frees."""
    rng = np.random.default_rng(seed)
    ops = []
    live: list[int] = []
    obj = 0
    kinds = [k for k in stacks if k != "leak"]
    leak_at = set(rng.choice(4000, leaks, replace=False).tolist())
    for i in range(4000):
        if live and rng.random() < 0.5:
            o = live.pop(int(rng.integers(len(live))))
            ops.append((OP_FREE, 0, o, 0, 0, 0))
        k = kinds[int(rng.integers(len(kinds)))]
        ops.append((OP_ALLOC, 0, obj, kmm.GFP_KERNEL, stacks[k], 100 + i % 50))
        live.append(obj)
        obj += 1
        if i in leak_at:
            ops.append((OP_ALLOC, 0, obj, kmm.GFP_KERNEL, stacks["leak"], 4242))
            obj += 1
        if i % 100 == 0:
            ops.append((OP_TICK, 0, 1000, 0, 0, 0))
    t = kmm.empty_trace(len(ops))
    arr = np.array(ops, dtype=np.int64)
    for j, f in enumerate(("op", "order", "obj", "gfp", "stack", "pid")):
        t[f] = arr[:, j]
    t["tgid"] = t["pid"]
    return t


@pytest.mark.parametrize("fmt", po.FORMATS)
def test_leak_stands_first_with_its_count(fmt: str) -> None:
    m = kmm.Machine(mem="128MiB", page_owner=True)
    stacks = po.workload_stacks(m)
    m.page_owner.set_comm(4242, "leakyd")
    m.replay(_leaky_trace(stacks, leaks=600))
    report = po.read(m.page_owner.dumps(fmt).encode())
    top = po.sort_groups(report.groups)[0]
    assert top.count == 600
    assert top.symbols()[:3] == ["__get_free_pages", "leaky_alloc_buffer", "leaky_ioctl"]
    assert po.format_classic([top]).startswith("600 times:\nPage allocated via order 0, mask 0xd0")
    if fmt == "modern":
        assert top.comm == "leakyd" and top.pid == 4242
    # the engine's own aggregation agrees without any text
    a = m.page_owner.aggregate()
    assert int(a["stack"][0]) == stacks["leak"] and int(a["blocks"][0]) == 600


def test_leak_with_the_workload_generators() -> None:
    workloads = pytest.importorskip("kmm.workloads")
    m = kmm.Machine(mem="256MiB", page_owner=True)
    stacks = po.workload_stacks(m)
    trace = workloads.kernel_build(2, seed=3, stacks=stacks).trace(3.0)
    trace = workloads.inject_leak(trace, every=20, stack=stacks["leak"])
    n_leaks = int(((trace["op"] == OP_ALLOC) & (trace["stack"] == stacks["leak"])).sum())
    m.replay(trace, outcomes=False)
    report = po.read(m.page_owner.dumps("2005").encode())
    top = po.sort_groups(report.groups)[0]
    assert top.count == n_leaks
    assert "leaky_alloc_buffer" in top.symbols()


# ---------------------------------------------------------------------------
# compaction's migrations in the dump


def test_migrated_records_print_the_migrate_reason() -> None:
    """A block compaction moved prints print_page_owner's "Page has been
    migrated, last migrate reason: compaction" line after its stack (today's
    format only); the text aggregation leaves it out of the group key."""
    m = kmm.Machine("x86_64", "64MiB", allocator="mobility", page_owner=True)
    stacks = po.workload_stacks(m)
    rng = np.random.default_rng(3)
    n = 6000
    freed = np.flatnonzero(rng.random(n) < 2 / 3)
    t = kmm.empty_trace(n + len(freed))
    t["op"][:n] = OP_ALLOC
    t["obj"][:n] = np.arange(n)
    t["order"][:n] = rng.integers(0, 3, n)
    t["gfp"][:n] = kmm.gfp.parse("GFP_HIGHUSER")
    t["stack"][:n] = stacks["anon_fault"]
    t["op"][n:] = kmm.OP_FREE
    t["obj"][n:] = freed
    m.replay(t, outcomes=False)
    before = m.page_owner.dumps("modern")
    assert "Page has been migrated" not in before
    assert m.compact() > 0
    text = m.page_owner.dumps("modern")
    recs = [r for r in text.split("\n\n") if r]
    moved = [r for r in recs if "Page has been migrated" in r]
    assert 0 < len(moved) < len(recs)
    for r in moved:
        lines = r.split("\n")
        assert lines[-1] == "Page has been migrated, last migrate reason: compaction"
        assert lines[0].startswith("Page allocated via order ") and lines[1].startswith("PFN 0x")
        assert all(line.startswith(" ") for line in lines[2:-1]) and len(lines) > 3
        pfn = int(lines[1].split()[1], 16)
        assert m.page_owner.owner(pfn)["last_migrate_reason"] == "compaction"
    still = next(r for r in recs if "Page has been migrated" not in r)
    assert m.page_owner.owner(int(still.split("\n")[1].split()[1], 16))["last_migrate_reason"] is None
    assert "Page has been migrated" not in m.page_owner.dumps("2005")
    # migrated or not, the same context is one group, and the engine agrees
    report = po.read(text.encode())
    assert _summary(report.groups) == _summary(m.page_owner.groups("modern"))
    assert report.records == len(recs)
    # and the engine's groups print what `kmm page-owner sort` prints of the dump
    buf = io.BytesIO()
    report.table.render(buf, "sort", report.table.order([("times", True)]))
    engine = po.sort_groups(m.page_owner.groups("modern"))
    assert po.format_sort(engine) == buf.getvalue().decode()
    culled = po.cull_groups(engine, ["stacktrace"])
    assert po.format_sort(po.sort_groups(culled, "-pages")) == po.format_sort(
        po.sort_groups(po.read(text.encode(), cull=["stacktrace"]).groups, "-pages"))


def test_sort_reads_the_page_owner_stacks_files(tmp_path, capsys) -> None:
    """show_stacks, and show_handles joined with show_stacks_handles, give the same groups."""
    from kmm.cli import main

    m = kmm.Machine(mem="64MiB", page_owner=True)
    stacks = po.workload_stacks(m)
    for i, k in enumerate(("anon_fault", "leak", "anon_fault", "anon_fault")):
        m.alloc(i % 2, "GFP_KERNEL", stack=stacks[k], pid=1)
    outs = []
    for name, text in (("stacks", m.page_owner.show_stacks()),
                       ("joined", m.page_owner.show_stacks_handles() + m.page_owner.show_handles())):
        f = tmp_path / name
        f.write_text(text)
        assert main(["page-owner", "sort", str(f), "--cull=stacktrace"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    assert outs[0].startswith("1 times, 2 pages:\n __get_free_pages") and "\n1 times, 4 pages:\n" in outs[0]
    f = tmp_path / "handles"
    f.write_text(m.page_owner.show_handles())
    assert main(["page-owner", "sort", str(f)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^1 times, 4 pages, allocated by OTHERS :\nhandle: \d+\n\n", out, re.M)
    assert out.count("handle: ") == 2
