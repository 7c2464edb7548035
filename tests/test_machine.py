"""kmm.Machine: layout, zones, fallback rules, watermarks, views and bad input."""

from __future__ import annotations

import json
import re

import kmm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

MIB = 1 << 20
BUDDY_RE = re.compile(r"^Node (\d+), zone ([ A-Za-z0-9]{8}) ((?:[ 0-9]{6} ){11})$")


def small(**kw) -> kmm.Machine:
    kw.setdefault("mem", "128MiB")
    return kmm.Machine(**kw)


# ---- boot and layout ---------------------------------------------------------


def test_x86_32_zones_and_boot_reservations():
    m = kmm.Machine(layout="x86_32", mem="1536MiB")
    zs = m.zone_stats()
    assert [z.zone for z in zs] == ["DMA", "Normal", "HighMem"]
    assert [(z.start_pfn, z.spanned) for z in zs] == [
        (0, 4096),
        (4096, 896 * 256 - 4096),
        (896 * 256, 1536 * 256 - 896 * 256),
    ]
    # page 0, the ISA hole, the kernel image and mem_map are reserved, never free
    pm = m.page_map()
    assert pm[0] == kmm.PM_RESERVED
    assert (pm[160:256] == kmm.PM_RESERVED).all()
    memmap_pages = (1536 * 256 * 32 + 4095) // 4096
    reserved = 1 + 96 + 1024 + memmap_pages
    assert int((pm == kmm.PM_RESERVED).sum()) == reserved
    # bootmem puts mem_map above MAX_DMA_ADDRESS (16 MiB), keeping ZONE_DMA for DMA
    assert (pm[4096 : 4096 + memmap_pages] == kmm.PM_RESERVED).all()
    assert sum(z.present - z.managed for z in zs) == reserved
    assert sum(z.free + z.pcp for z in zs) == m.nr_pages - reserved
    m.check()


def test_x86_64_zones_absent_zone_and_numa_split():
    m = kmm.Machine(layout="x86_64", mem="2GiB")
    assert [z.zone for z in m.zone_stats()] == ["DMA", "DMA32"]  # Normal would be empty: absent
    fa = m.free_area()
    assert fa.shape == (1, 3, 11) and fa.dtype == np.uint64
    assert fa[0, 2].sum() == 0
    m2 = kmm.Machine(layout="x86_64", mem="8GiB", nodes=2)
    # node 0 is [0, 4 GiB): DMA and all of DMA32; node 1 is [4, 8 GiB): Normal only
    assert [(z.node, z.zone) for z in m2.zone_stats()] == [(0, "DMA"), (0, "DMA32"), (1, "Normal")]
    m6 = kmm.Machine(layout="x86_64", mem="6GiB", nodes=2)
    assert [(z.node, z.zone) for z in m6.zone_stats()] == [(0, "DMA"), (0, "DMA32"), (1, "DMA32"), (1, "Normal")]
    m2.check()


def test_watermarks_follow_2_6_11_formula():
    m = kmm.Machine(layout="x86_32", mem="1536MiB")
    zs = {z.zone: z for z in m.zone_stats()}
    lowmem = zs["DMA"].present + zs["Normal"].present
    min_free_kbytes = min(max(int((lowmem * 4 * 16) ** 0.5), 128), 65536)
    pages_min = min_free_kbytes // 4
    for name in ("DMA", "Normal"):
        z = zs[name]
        assert z.min == pages_min * z.present // lowmem
        assert z.low == z.min + z.min // 4
        assert z.high == z.min + z.min // 2
    hm = zs["HighMem"]
    assert hm.min == min(max(hm.present // 1024, 32), 128)
    # lowmem_reserve: DMA protects against Normal (ratio 256) and HighMem (Normal+HighMem)/256
    assert zs["DMA"].lowmem_reserve == [0, zs["Normal"].present // 256, (zs["Normal"].present + hm.present) // 256]
    assert zs["Normal"].lowmem_reserve == [0, 0, hm.present // 32]


# ---- buddyinfo ---------------------------------------------------------------


def test_buddyinfo_exact_format():
    m = kmm.Machine(layout="x86_32", mem="1536MiB")
    text = m.buddyinfo()
    lines = text.split("\n")
    assert lines[-1] == ""
    fa = m.free_area()
    for line, (zt, name) in zip(lines[:-1], enumerate(m.zone_names)):
        mt = BUDDY_RE.match(line)
        assert mt, repr(line)
        assert mt.group(2) == f"{name:>8}"
        counts = [int(x) for x in mt.group(3).split()]
        assert counts == [int(x) for x in fa[0, zt]]
        expect = f"Node 0, zone {name:>8} " + "".join(f"{int(c):6d} " for c in fa[0, zt])
        assert line == expect
    # a freshly booted HighMem zone is 160 blocks of order 10
    assert lines[2] == "Node 0, zone  HighMem" + "      0" * 10 + "    160 "


# ---- zone fallback rules -------------------------------------------------------


@pytest.mark.parametrize("allocator", ["vanilla", "antifrag", "mobility"])
def test_zone_rules(allocator):
    m = kmm.Machine(layout="x86_32", mem="1536MiB", allocator=allocator)
    zs = {z.zone: z for z in m.zone_stats()}

    def zone_of(pfn):
        return next(z.zone for z in zs.values() if z.start_pfn <= pfn < z.start_pfn + z.spanned)

    for _ in range(200):
        assert zone_of(m.alloc(0, kmm.GFP_KERNEL)) == "Normal"
        assert zone_of(m.alloc(0, kmm.GFP_DMA)) == "DMA"
        assert zone_of(m.alloc(0, kmm.GFP_HIGHUSER)) == "HighMem"
    m.check()


def test_gfp_kernel_never_gets_highmem_and_falls_back_to_dma():
    m = kmm.Machine(layout="x86_32", mem="256MiB", pcp=False)
    zs = m.zone_stats()
    dma, normal = zs[0], zs[1]
    got = []
    while (p := m.alloc(0, kmm.GFP_KERNEL)) is not None:
        got.append(p)
    in_dma = [p for p in got if p < dma.start_pfn + dma.spanned]
    assert all(p < normal.start_pfn + normal.spanned for p in got)
    # Normal is used first; DMA is used only down to its lowmem_reserve for Normal requests
    assert len(in_dma) > 0
    after = {z.zone: z for z in m.zone_stats()}
    # the second pass goes down to pages_min; lowmem_reserve[Normal] still protects DMA
    assert after["DMA"].free >= after["DMA"].min + after["DMA"].lowmem_reserve[1]
    m.check()


def test_numa_node_local_first():
    m = kmm.Machine(layout="x86_64", mem="8GiB", nodes=2, pcp=False)
    zs = m.zone_stats()
    node_of = lambda p: next(z.node for z in zs if z.start_pfn <= p < z.start_pfn + z.spanned)
    assert all(node_of(m.alloc(0, node=1)) == 1 for _ in range(100))
    assert all(node_of(m.alloc(0, node=0)) == 0 for _ in range(100))
    # explicit distances order the remote fallback
    m3 = kmm.Machine(layout="x86_64", mem="12GiB", nodes=3, distance=[[10, 40, 20], [40, 10, 20], [20, 20, 10]])
    m3.check()


def test_watermark_refusal_and_gfp_high():
    m = kmm.Machine(layout="x86_32", mem="64MiB", pcp=False, reclaim=False)
    held = []
    while (p := m.alloc(0, kmm.GFP_KERNEL)) is not None:
        held.append(p)
    zs = {z.zone: z for z in m.zone_stats()}
    normal = zs["Normal"]
    # GFP_KERNEL stops at the min watermark, leaving free pages behind
    assert normal.free >= normal.min - 1
    # atomic (harder) and __GFP_HIGH allocations may dig deeper
    extra = m.alloc(0, "GFP_ATOMIC")
    assert extra is not None
    assert m.counters()["alloc_fail"] >= 1
    m.check()


# ---- free / double free / bad input ----------------------------------------------


def test_alloc_free_roundtrip_restores_free_area():
    m = small()
    before = m.free_area().copy()
    pfns = [m.alloc(o, kmm.GFP_KERNEL) for o in range(11)]
    assert all(p is not None and p % (1 << o) == 0 for o, p in enumerate(pfns))
    for p in pfns:
        m.free(p)
    m.drain_pcp()
    assert (m.free_area() == before).all()
    m.check()


def state(m):
    return (m.page_map().tobytes(), m.free_area().tobytes(), tuple(sorted(m.counters().items())))


@pytest.mark.parametrize(
    "call,exc",
    [
        (lambda m: m.alloc(-1), kmm.OrderError),
        (lambda m: m.alloc(11), kmm.OrderError),
        (lambda m: m.alloc(0, 0x8), kmm.GfpError),
        (lambda m: m.alloc(0, 1 << 30), kmm.GfpError),
        (lambda m: m.alloc(0, "GFP_BOGUS"), kmm.GfpError),
        (lambda m: m.alloc(0, "__GFP_DMA|__GFP_HIGHMEM"), kmm.GfpError),
        (lambda m: m.alloc(0, "GFP_KERNEL|__GFP_KERNRCLM|__GFP_USERRCLM"), kmm.GfpError),
        (lambda m: m.alloc(0, node=5), kmm.ConfigError),
        (lambda m: m.free(10**9), kmm.PfnError),
        (lambda m: m.free(-3), kmm.PfnError),
        (lambda m: m.free(0), kmm.PfnError),  # reserved
        (lambda m: m.free("12"), kmm.PfnError),
    ],
)
def test_bad_input_raises_and_leaves_machine_unchanged(call, exc):
    m = small()
    m.alloc(0)
    before = state(m)
    with pytest.raises(exc) as ei:
        call(m)
    assert isinstance(ei.value, kmm.KmmError)
    assert state(m) == before
    m.check()


def test_free_of_a_tail_page_or_a_free_page():
    m = small()
    head = m.alloc(3)
    before = state(m)
    with pytest.raises(kmm.PfnError, match="not the head"):
        m.free(head + 1)
    assert state(m) == before
    free_pfn = int(np.nonzero(m.page_map() == kmm.PM_FREE)[0][-1])
    with pytest.raises(kmm.PfnError):
        m.free(free_pfn)
    assert state(m) == before


def test_double_free():
    m = small()
    p = m.alloc(2)
    m.free(p)
    before = state(m)
    with pytest.raises(kmm.DoubleFreeError):
        m.free(p)
    assert state(m) == before
    p0 = m.alloc(0)
    m.free(p0)  # to the pcp list
    with pytest.raises(kmm.DoubleFreeError):
        m.free(p0)
    assert issubclass(kmm.DoubleFreeError, ValueError)


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(mem="1000"), "multiple"),
        (dict(mem="16MiB"), "too small"),
        (dict(mem="1PiB"), "unit"),
        (dict(mem="128GiB", layout="x86_32"), "address"),
        (dict(layout="sparc"), "layout"),
        (dict(allocator="slub"), "allocator"),
        (dict(nodes=0), "nodes"),
        (dict(allocator="mobility", pageblock_order=11), "pageblock_order"),
        (dict(allocator="antifrag", fallback_reserve=1.5), "fallback_reserve"),
        (dict(mem="256MiB", nodes=2, node_sizes=["100MiB", "100MiB"]), "node sizes"),
        (dict(mem="256MiB", nodes=2, distance=[[10, 5], [5, 10]]), "distance"),
        (dict(max_objects=0), "max_objects"),
    ],
)
def test_bad_config(kw, msg):
    with pytest.raises(kmm.ConfigError, match=msg):
        kmm.Machine(**kw)


def test_mem_strings_and_gfp_strings():
    assert kmm.parse_mem("1536MiB") == 1536 * MIB
    assert kmm.parse_mem("1TiB") == 1 << 40
    assert kmm.parse_mem(4096) == 4096
    assert kmm.gfp.parse("GFP_KERNEL|__GFP_HIGH") == kmm.GFP_KERNEL | kmm.gfp.HIGH
    assert kmm.gfp.parse("GFP_HIGHUSER") == kmm.GFP_HIGHUSER
    assert kmm.GFP_USER & kmm.gfp.USERRCLM and kmm.GFP_HIGHUSER & kmm.gfp.USERRCLM
    assert kmm.gfp.MOVABLE == kmm.gfp.USERRCLM and kmm.gfp.RECLAIMABLE == kmm.gfp.KERNRCLM
    assert getattr(kmm, "__GFP_HIGH") == 0x20
    assert kmm.gfp.names(kmm.GFP_HIGHUSER) == "GFP_HIGHUSER"


# ---- replay ---------------------------------------------------------------------------


def make_trace(ops):
    t = kmm.empty_trace(len(ops))
    for i, (op, obj, order, gfp) in enumerate(ops):
        t[i] = (op, order, 0, obj, gfp, 0, 0, 0)
    return t


def test_replay_outcomes_and_counters():
    m = small()
    A, F, T = kmm.OP_ALLOC, kmm.OP_FREE, kmm.OP_TOUCH
    t = make_trace([(A, 1, 0, kmm.GFP_KERNEL), (A, 2, 3, kmm.GFP_USER), (T, 2, 0, 0), (F, 1, 0, 0), (F, 2, 0, 0)])
    out, c = m.replay(t)
    assert out.dtype == np.int64 and len(out) == 5
    assert out[0] >= 0 and out[1] >= 0 and out[1] % 8 == 0
    assert out[2] == out[1] and out[3] == out[0] and out[4] == out[1]
    assert c["alloc"] == 2 and c["free"] == 2 and c["touch"] == 1 and c["ops"] == 5
    m.check()


@pytest.mark.parametrize(
    "ops,msg",
    [
        ([(kmm.OP_FREE, 1, 0, 0)], "not allocated"),
        ([(kmm.OP_ALLOC, 1, 0, kmm.GFP_KERNEL), (kmm.OP_ALLOC, 1, 0, kmm.GFP_KERNEL)], "still allocated"),
        ([(kmm.OP_ALLOC, 1, 12, kmm.GFP_KERNEL)], "order"),
        ([(kmm.OP_ALLOC, 1, 0, 0x8)], "GFP"),
        ([(9, 1, 0, 0)], "unknown op"),
        ([(0, 0, 0, 0)], "unknown op"),
        ([(kmm.OP_ALLOC, 1 << 27, 0, kmm.GFP_KERNEL)], "range"),
        ([(kmm.OP_TICK, 4_000_000_000, 0, 0)], "absurd"),
        ([(kmm.OP_TOUCH, 7, 0, 0)], "not allocated"),
    ],
)
def test_bad_traces_change_nothing(ops, msg):
    m = small()
    m.replay(make_trace([(kmm.OP_ALLOC, 100, 0, kmm.GFP_KERNEL)]))
    before = state(m)
    # a good prefix must be rolled back too
    t = make_trace([(kmm.OP_ALLOC, 200, 0, kmm.GFP_KERNEL), (kmm.OP_FREE, 100, 0, 0)] + ops)
    with pytest.raises(kmm.TraceError, match=msg):
        m.replay(t)
    assert state(m) == before
    # and the machine still accepts a good trace that relies on the old state
    m.replay(make_trace([(kmm.OP_FREE, 100, 0, 0)]))
    m.check()


def test_replay_rejects_wrong_dtype_and_shape():
    m = small()
    with pytest.raises(kmm.TraceError):
        m.replay(np.zeros(4, dtype=np.uint32))
    with pytest.raises(kmm.TraceError):
        m.replay(kmm.empty_trace(4).reshape(2, 2))
    with pytest.raises(kmm.TraceError):
        m.replay([1, 2, 3])


def test_failed_alloc_then_free_is_counted_noop():
    m = kmm.Machine(mem="64MiB", reclaim=False, pcp=False)
    n = 40
    ops = [(kmm.OP_ALLOC, i, 10, kmm.GFP_KERNEL) for i in range(n)] + [(kmm.OP_FREE, i, 0, 0) for i in range(n)]
    out, c = m.replay(make_trace(ops))
    failed = int((out[:n] < 0).sum())
    assert failed > 0 and c["alloc_fail"] == failed and c["free_noop"] == failed
    m.check()


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 6), st.sampled_from(["GFP_KERNEL", "GFP_HIGHUSER", "GFP_DMA", "GFP_USER"])),
        min_size=1,
        max_size=120,
    ),
    st.sampled_from(["vanilla", "antifrag", "mobility"]),
)
def test_random_alloc_free_keeps_invariants(steps, allocator):
    m = kmm.Machine(mem="64MiB", allocator=allocator)
    live = []
    for do_alloc, order, gfp in steps:
        if do_alloc or not live:
            p = m.alloc(order, gfp)
            if p is not None:
                assert p % (1 << order) == 0
                live.append(p)
        else:
            m.free(live.pop(len(live) // 2))
    m.check()
    for p in live:
        m.free(p)
    m.drain_pcp()
    m.check()
    # everything coalesces back: the free-area histogram equals the booted one
    assert (m.free_area() == kmm.Machine(mem="64MiB", allocator=allocator).free_area()).all()


def test_page_map_and_allocated_blocks_agree():
    m = small(allocator="antifrag")
    pk = m.alloc(2, "GFP_KERNEL")
    pu = m.alloc(0, "GFP_HIGHUSER")
    pr = m.alloc(1, "GFP_KERNEL|__GFP_KERNRCLM")
    pm = m.page_map()
    assert (pm[pk : pk + 4] == kmm.PM_KERNNORCLM).all()
    assert pm[pu] == kmm.PM_USERRCLM
    assert (pm[pr : pr + 2] == kmm.PM_KERNRCLM).all()
    pfns, orders, types = m.allocated_blocks()
    d = dict(zip(pfns.tolist(), zip(orders.tolist(), types.tolist())))
    assert d[pk] == (2, 0) and d[pu] == (0, 2) and d[pr] == (1, 1)


# ---- pagetypeinfo and the command line ------------------------------------------------


@pytest.mark.parametrize(
    "allocator,types,block_order",
    [
        ("vanilla", ["Any"], 10),
        ("antifrag", ["KernNoRclm", "KernRclm", "UserRclm", "Global"], 10),
        ("mobility", ["Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"], 10),
    ],
)
def test_pagetypeinfo_exact_format(allocator, types, block_order):
    m = kmm.Machine(layout="x86_32", mem="1536MiB", allocator=allocator)
    m.alloc(0, "GFP_KERNEL")
    m.alloc(3, "GFP_KERNEL|__GFP_KERNRCLM")
    text = m.pagetypeinfo()
    lines = text.split("\n")
    assert lines[0] == f"Page block order: {block_order}"
    assert lines[1] == f"Pages per block:  {1 << block_order}"
    assert lines[2] == ""
    assert lines[3] == f"{'Free pages count per migrate type at order':<43} " + "".join(f"{o:6d} " for o in range(11))
    fat = m.free_area(by_type=True)
    row = 4
    shown = m.type_names
    for zt, zone in enumerate(m.zone_names):
        for name in types:
            counts = fat[0, zt, shown.index(name)] if name in shown else np.zeros(11, dtype=np.uint64)
            expect = f"Node {0:4d}, zone {zone:>8}, type {name:>12} " + "".join(f"{int(c):6d} " for c in counts)
            assert lines[row] == expect
            row += 1
    assert lines[row] == ""
    assert lines[row + 1] == f"{'Number of blocks type ':<23}" + "".join(f"{n:>12} " for n in types)
    spans = [z.spanned for z in m.zone_stats()]
    for i, zone in enumerate(m.zone_names):
        cells = lines[row + 2 + i]
        assert cells.startswith(f"Node 0, zone {zone:>8} ")
        nums = [int(x) for x in cells[len(f"Node 0, zone {zone:>8} "):].split()]
        assert len(nums) == len(types)
        assert sum(nums) == -(-spans[i] // (1 << block_order))  # every block has a type
        assert cells.endswith(" ")
    assert text.endswith("\n")


def test_pagetypeinfo_mobility_x86_64_pageblock_order_9():
    m = kmm.Machine(layout="x86_64", mem="4GiB", allocator="mobility")
    assert m.pageblock_order == 9
    assert m.pagetypeinfo().startswith("Page block order: 9\nPages per block:  512\n\n")
    m2 = kmm.Machine(layout="x86_64", mem="4GiB", allocator="mobility", pageblock_order=7)
    assert m2.pagetypeinfo().startswith("Page block order: 7\nPages per block:  128\n")


def test_cli_buddyinfo(capsys):
    from kmm.cli import main

    assert main(["buddyinfo", "--mem", "1536MiB"]) == 0
    out = capsys.readouterr().out
    assert out == kmm.Machine(mem="1536MiB").buddyinfo()
    assert main(["buddyinfo", "--json", "--allocator", "antifrag", "--layout", "x86_64", "--mem", "8GiB"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [z["zone"] for z in data["zones"]] == ["DMA", "DMA32", "Normal"]
    assert data["allocator"] == "antifrag"
    assert main(["buddyinfo", "--mem", "7MiB"]) == 2
    assert "ConfigError" in capsys.readouterr().err


def test_drain_pcp_counts_pages_back():
    m = small()
    pfns = [m.alloc(0) for _ in range(10)]
    for p in pfns:
        m.free(p)
    pcp = sum(z.pcp for z in m.zone_stats())
    assert pcp > 0
    free_before = m.free_area().copy()
    assert m.drain_pcp() == pcp
    assert sum(z.pcp for z in m.zone_stats()) == 0
    # the drained pages now show in the buddy lists
    weights = 1 << np.arange(11)
    assert int((m.free_area() * weights).sum() - (free_before * weights).sum()) == pcp
    m.check()


def test_stack_handles_need_page_owner_but_traces_stay_portable():
    m = small()
    before = state(m)
    with pytest.raises(kmm.PageOwnerError, match="without page_owner"):
        m.alloc(0, stack=5)
    assert state(m) == before
    p = m.alloc(0)
    before = state(m)
    with pytest.raises(kmm.PageOwnerError):
        m.free(p, stack=7)
    assert state(m) == before
    m2 = small()
    t = make_trace([(kmm.OP_ALLOC, 1, 0, kmm.GFP_KERNEL)])
    t["stack"] = 1234  # a handle from another machine's depot: ignored here
    out, _ = m2.replay(t)
    assert out[0] >= 0
