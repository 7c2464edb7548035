"""kmm.procfs: /proc/buddyinfo and /proc/pagetypeinfo parsing, fragmentation indices, kmm fraginfo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import kmm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kmm import procfs
from kmm.cli import main as kmm_main

DATA = Path(__file__).parent / "data"


def sample(name: str) -> str:
    return (DATA / name).read_text()


def churn(m: kmm.Machine, n: int = 4000, seed: int = 1) -> None:
    """Allocate and free a random mix of orders and GFP types through m.replay."""
    rng = np.random.default_rng(seed)
    gfps = [
        kmm.gfp.parse(g)
        for g in ("GFP_KERNEL", "GFP_USER", "GFP_HIGHUSER", "GFP_KERNEL|__GFP_KERNRCLM")
    ]
    t = kmm.empty_trace(n)
    live: list[int] = []
    for i in range(n):
        if live and rng.random() < 0.4:
            t[i] = (kmm.OP_FREE, 0, 0, live.pop(rng.integers(len(live))), 0, 0, 0, 0)
        else:
            t[i] = (
                kmm.OP_ALLOC,
                int(min(rng.geometric(0.5) - 1, 10)),
                0,
                i,
                gfps[rng.integers(4)],
                0,
                0,
                0,
            )
            live.append(i)
    m.replay(t, outcomes=False)
    m.check()


# ---------------------------------------------------------------------------
# /proc/buddyinfo


def test_real_x86_64_buddyinfo():
    text = sample("buddyinfo_x86_64_real.txt")
    bi = procfs.parse_buddyinfo(text)
    assert bi.layout == "x86_64"
    assert bi.zone_names == ("DMA", "DMA32", "Normal")
    assert bi.nr_free.shape == (1, 3, 11) and bi.nr_free.dtype == np.int64
    assert bi.present.all()
    # every number of every line lands where the line says
    for line in text.splitlines():
        fields = line.split()
        zt = bi.zone_names.index(fields[3])
        assert bi.nr_free[0, zt].tolist() == [int(x) for x in fields[4:]]
    assert bi.text() == text
    assert [(r.node, r.zone, r.line) for r in bi.rows] == [
        (0, "DMA", 1),
        (0, "DMA32", 2),
        (0, "Normal", 3),
    ]


def test_x86_32_2005_sample_matches_machine_shape():
    bi = procfs.parse_buddyinfo(sample("buddyinfo_x86_32_2005.txt"))
    m = kmm.Machine(layout="x86_32", mem="1536MiB")
    assert bi.layout == "x86_32" and bi.zone_names == tuple(m.zone_names)
    assert bi.nr_free.shape == m.free_area().shape
    # the example line of the buddyinfo format is the Normal zone
    assert bi.nr_free[0, 1].tolist() == [970, 1301, 979, 737, 450, 277, 176, 75, 33, 28, 99]
    # free pages = sum nr_free[o] * 2**o, written out for DMA: 4 + 3*2 + 2*4 + 3*8 + 2*16 + 32 + 64 + 256 + 512
    assert bi.free_pages()[0, 0] == 4 + 6 + 8 + 24 + 32 + 32 + 64 + 0 + 256 + 512 + 0


def test_numa_and_movable():
    bi = procfs.parse_buddyinfo(sample("buddyinfo_numa_movable.txt"))
    assert bi.layout == "x86_64"
    assert bi.zone_names == ("DMA", "DMA32", "Normal", "Movable")
    assert bi.nr_free.shape == (2, 4, 11)
    assert bi.present.tolist() == [[True, True, True, False], [False, False, True, True]]
    assert bi.nr_free[1, 0].sum() == 0 and bi.nr_free[1, 3, 10] == 4001
    assert bi.text() == sample("buddyinfo_numa_movable.txt")


def test_other_order_counts_are_reported():
    text = sample("buddyinfo_13_orders.txt")
    bi = procfs.parse_buddyinfo(text)
    assert bi.nr_orders == 13 and bi.nr_free.shape == (1, 3, 13)
    assert bi.layout == "x86_32"  # DMA and Normal only: the 2005 32-bit reading
    assert bi.nr_free[0, 1, 12] == 143
    with pytest.raises(kmm.ParseError, match=r"line 1: 13 orders, expected MAX_ORDER = 11"):
        procfs.parse_buddyinfo(text, max_order=11)
    assert procfs.parse_buddyinfo(text, max_order=13).nr_orders == 13


def test_layout_inference_and_override():
    line = "Node 0, zone {:>8}      1      0      0      0      0      0      0      0      0      0      2 \n"
    only_normal = line.format("Normal")
    assert procfs.parse_buddyinfo(only_normal).zone_names == ("DMA", "Normal", "HighMem")
    forced = procfs.parse_buddyinfo(only_normal, layout="x86_64")
    assert forced.layout == "x86_64" and forced.present.tolist() == [[False, False, True]]
    assert forced.nr_free[0, 2, 10] == 2
    with pytest.raises(kmm.ParseError, match="DMA32 do not exist in layout x86_32"):
        procfs.parse_buddyinfo(line.format("DMA32"), layout="x86_32")
    with pytest.raises(kmm.ParseError, match="unknown layout"):
        procfs.parse_buddyinfo(only_normal, layout="sparc")
    # zone lists that fit neither x86 family: kernel enum order, unknown names last
    gen = procfs.parse_buddyinfo(line.format("Device") + line.format("Normal") + line.format("DMA"))
    assert gen.layout == "generic" and gen.zone_names == ("DMA", "Normal", "Device")
    both = procfs.parse_buddyinfo(line.format("HighMem") + line.format("DMA32"))
    assert both.layout == "generic" and both.zone_names == ("DMA32", "HighMem")
    odd = procfs.parse_buddyinfo(line.format("Foo") + line.format("Normal"))
    assert odd.zone_names == ("Normal", "Foo")


def test_sparse_nodes_blank_lines_and_crlf():
    text = (
        "\r\nNode 2, zone   Normal      3      0      0      0      0      0      0      0      0      0      1\r\n\n"
        "Node 0, zone      DMA      0      0      0      0      0      0      0      0      0      0      1\r\n"
    )
    bi = procfs.parse_buddyinfo(text)
    assert bi.nr_free.shape == (3, 3, 11)
    assert bi.present.sum() == 2 and not bi.present[1].any()
    assert bi.nr_free[2, 1, 0] == 3
    assert [r.line for r in bi.rows] == [2, 4]


def test_bytes_input():
    bi = procfs.parse_buddyinfo(sample("buddyinfo_x86_64_real.txt").encode())
    assert bi.nr_free.shape == (1, 3, 11)


GOOD = "Node 0, zone      DMA      1      1      1      1      1      1      1      1      1      1      1 "


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"no zone lines"),
        ("\n\n  \n", r"no zone lines"),
        ("hello world", r"line 1: expected 'Node <n>, zone <name>"),
        (
            GOOD + "\nNode 0, zone Normal 1 2 x 4 5 6 7 8 9 10 11",
            r"line 2: nr_free of order 2 is not a non-negative integer: 'x'",
        ),
        (
            GOOD + "\nNode 0, zone Normal 1 2 -3 4 5 6 7 8 9 10 11",
            r"line 2: nr_free of order 2 .*'-3'",
        ),
        (GOOD + "\nNode 0, zone Normal 1 2 3", r"line 2: 3 orders, but the first zone line has 11"),
        (GOOD + "\n" + GOOD, r"line 2: node 0 zone DMA appears twice \(first on line 1\)"),
        ("Node 0, zone Normal", r"line 1: no free-block counts after 'zone Normal'"),
        ("Node 5000, zone Normal 1", r"line 1: node 5000 is out of range"),
        ("Node 0, zone Nor-mal 1", r"line 1: bad zone name"),
        (
            "Node 0, zone Normal " + " ".join(["1"] * 70),
            r"line 1: 70 orders is more than any kernel prints",
        ),
        ("Node 0, zone Normal 99999999999999999999", r"line 1: nr_free of order 0 is too large"),
        ("Page block order: 9\n", r"line 1: this is /proc/pagetypeinfo"),
        ("Node 0, zone Normal \u0661", r"not a non-negative integer"),
        (b"\xff\xfe", r"not text"),
        ("Node 0\x00", r"NUL"),
    ],
)
def test_buddyinfo_errors(text, message):
    with pytest.raises(kmm.ParseError, match=message):
        procfs.parse_buddyinfo(text)


def test_buddyinfo_errors_are_value_errors_not_index_errors():
    with pytest.raises(ValueError):
        procfs.parse_buddyinfo("Node , zone")
    with pytest.raises(kmm.ParseError):
        procfs.parse_buddyinfo(12)  # type: ignore[arg-type]
    with pytest.raises(kmm.ParseError, match="max_order"):
        procfs.parse_buddyinfo(GOOD, max_order=0)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="Node zoneDMA,0123456789 \n>-:", max_size=200))
def test_buddyinfo_fuzz_only_parse_errors(text):
    try:
        bi = procfs.parse_buddyinfo(text)
    except kmm.ParseError:
        return
    assert bi.nr_free.ndim == 3 and bi.present.any()


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.integers(0, 3), st.sampled_from(["DMA", "DMA32", "Normal", "Movable"])),
        st.lists(st.integers(0, 10**9), min_size=11, max_size=11),
        min_size=1,
        max_size=8,
    )
)
def test_buddyinfo_roundtrip_property(zones):
    text = "".join(
        f"Node {n}, zone {z:>8} " + "".join(f"{c:6d} " for c in counts) + "\n"
        for (n, z), counts in zones.items()
    )
    bi = procfs.parse_buddyinfo(text)
    assert bi.text() == text
    for (n, z), counts in zones.items():
        assert bi.nr_free[n, bi.zone_names.index(z)].tolist() == counts
    assert bi.present.sum() == len(zones)


# ---------------------------------------------------------------------------
# simulated machines, all three allocators


@pytest.mark.parametrize("allocator", ["vanilla", "antifrag", "mobility"])
def test_machine_roundtrip(allocator):
    m = kmm.Machine(layout="x86_32", mem="256MiB", allocator=allocator)
    churn(m)
    bi = procfs.parse_buddyinfo(m.buddyinfo())
    assert bi.layout == "x86_32"
    np.testing.assert_array_equal(bi.nr_free, m.free_area())
    assert bi.text() == m.buddyinfo()
    pti = procfs.parse_pagetypeinfo(m.pagetypeinfo())
    assert pti.text() == m.pagetypeinfo()
    assert (
        pti.pageblock_order == m.pageblock_order and pti.pages_per_block == 1 << m.pageblock_order
    )
    by_type = m.free_area(by_type=True)
    for t, name in enumerate(m.type_names):
        np.testing.assert_array_equal(
            pti.nr_free[:, :, pti.type_names.index(name)], by_type[:, :, t]
        )
    # types the text has but the engine's array does not (mobility's HighAtomic, Isolate) are empty
    extra = [i for i, name in enumerate(pti.type_names) if name not in m.type_names]
    assert pti.nr_free[:, :, extra].sum() == 0
    np.testing.assert_array_equal(pti.buddyinfo().nr_free, m.free_area())
    assert not pti.any_capped and pti.mixed_blocks is None
    # blocks per zone add up to the zone's pageblocks
    for stz in m.zone_stats():
        zt = pti.zone_names.index(stz.zone)
        blocks = pti.nr_blocks[stz.node, zt].sum()
        assert (
            blocks == -(-stz.spanned // pti.pages_per_block)
            or blocks == stz.spanned // pti.pages_per_block
        )


def test_machine_type_names():
    names = {
        a: procfs.parse(kmm.Machine(mem="64MiB", allocator=a).pagetypeinfo()).type_names
        for a in ("vanilla", "antifrag", "mobility")
    }
    assert names["vanilla"] == ("Any",)
    assert names["antifrag"] == ("KernNoRclm", "KernRclm", "UserRclm", "Global")
    assert names["mobility"][:3] == ("Unmovable", "Movable", "Reclaimable")


def test_multinode_machine():
    m = kmm.Machine(layout="x86_64", mem="8GiB", nodes=2, allocator="mobility")
    churn(m, 2000)
    bi = procfs.parse(m.buddyinfo())
    assert isinstance(bi, procfs.BuddyInfo) and bi.layout == "x86_64"
    np.testing.assert_array_equal(bi.nr_free, m.free_area())
    pti = procfs.parse(m.pagetypeinfo())
    assert isinstance(pti, procfs.PageTypeInfo)
    np.testing.assert_array_equal(pti.buddyinfo().nr_free, m.free_area())
    # text() prints the kernel's per-node form; it parses back to the same arrays
    again = procfs.parse_pagetypeinfo(pti.text())
    assert again.text().count("Page block order") == 2
    np.testing.assert_array_equal(again.nr_free, pti.nr_free)
    np.testing.assert_array_equal(again.nr_blocks, pti.nr_blocks)


# ---------------------------------------------------------------------------
# /proc/pagetypeinfo


def test_real_x86_64_pagetypeinfo():
    text = sample("pagetypeinfo_x86_64_real.txt")
    pti = procfs.parse_pagetypeinfo(text)
    assert pti.pageblock_order == 9 and pti.pages_per_block == 512
    assert pti.type_names[:3] == ("Unmovable", "Movable", "Reclaimable")
    assert pti.nr_free.shape == (1, 3, len(pti.type_names), 11)
    for line in text.splitlines():
        if ", type " in line:
            f = line.replace(",", " ").split()
            zt, t = pti.zone_names.index(f[3]), pti.type_names.index(f[5])
            assert pti.nr_free[0, zt, t].tolist() == [int(x) for x in f[6:]]
        elif line.startswith("Node") and "type" not in line:
            f = line.replace(",", " ").split()
            assert pti.nr_blocks[0, pti.zone_names.index(f[3])].tolist() == [int(x) for x in f[4:]]
    assert pti.text() == text


def test_numa_cma_capped_mixed_sample():
    text = sample("pagetypeinfo_numa_cma_mixed.txt")
    pti = procfs.parse_pagetypeinfo(text)
    assert pti.type_names == ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate")
    assert pti.nr_free.shape == (2, 3, 6, 11) and pti.layout == "x86_64"
    assert pti.present.tolist() == [[True, True, True], [False, False, True]]
    mov = pti.type_names.index("Movable")
    assert pti.capped[0, 2, mov, 0] and pti.nr_free[0, 2, mov, 0] == 100000
    assert pti.capped[1, 2, mov, :2].all() and not pti.capped[1, 2, mov, 2:].any()
    assert pti.capped.sum() == 3 and pti.any_capped
    assert pti.nr_free[0, 1, pti.type_names.index("CMA"), 10] == 16
    assert pti.mixed_blocks is not None and pti.mixed_blocks[1, 2, mov] == 9
    assert pti.nr_blocks[0, 1].tolist() == [4, 1508, 2, 0, 16, 0]
    assert pti.text() == text
    # the buddyinfo view sums the types: Normal order 0 on node 0 = 326 + 100000 + 262
    assert pti.buddyinfo().nr_free[0, 2, 0] == 326 + 100000 + 262


def test_2_6_24_reserve_sample():
    text = sample("pagetypeinfo_2.6.24_i386.txt")
    pti = procfs.parse(text)
    assert isinstance(pti, procfs.PageTypeInfo)
    assert pti.layout == "x86_32" and pti.pageblock_order == 10
    assert pti.type_names == ("Unmovable", "Reclaimable", "Movable", "Reserve", "Isolate")
    assert pti.nr_blocks[0, 2].tolist() == [0, 0, 159, 1, 0]
    assert pti.text() == text


PTI_HEAD = "Page block order: 9\nPages per block:  512\n\n"
PTI_FREE_HDR = "Free pages count per migrate type at order       0      1      2 \n"
PTI_ROW = "Node    0, zone   Normal, type    Unmovable      1      2      3 \n"
PTI_BLOCKS = "\nNumber of blocks type     Unmovable \nNode 0, zone   Normal            4 \n"


def test_small_pagetypeinfo_ok():
    pti = procfs.parse_pagetypeinfo(PTI_HEAD + PTI_FREE_HDR + PTI_ROW + PTI_BLOCKS)
    assert pti.nr_orders == 3 and pti.nr_free[0, 1, 0].tolist() == [1, 2, 3]
    assert pti.nr_blocks[0, 1, 0] == 4


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"no 'Page block order' header"),
        ("Pages per block: 512\n", r"line 1: expected 'Page block order: <n>'"),
        ("Page block order: x\n", r"line 1: bad pageblock order 'x'"),
        (
            "Page block order: 9\nPages per block:  500\n",
            r"line 2: 500 pages per block does not match pageblock order 9",
        ),
        ("Page block order: 9\nfoo\n", r"line 2: expected 'Pages per block"),
        (
            PTI_HEAD + "Node 0, zone Normal 1 2\n",
            r"line 4: expected 'Free pages count per migrate type at order'",
        ),
        (
            PTI_HEAD + "Free pages count per migrate type at order 0 2 1\n",
            r"line 4: expected the orders 0, 1, 2",
        ),
        (PTI_HEAD + PTI_FREE_HDR, r"no free-pages rows"),
        (PTI_HEAD + PTI_FREE_HDR + PTI_ROW, r"no 'Number of blocks type' section"),
        (
            PTI_HEAD + PTI_FREE_HDR + "Node 0, zone Normal, type Movable 1 2\n",
            r"line 5: 2 counts, expected one per order \(3\)",
        ),
        (
            PTI_HEAD + PTI_FREE_HDR + "Node 0, zone Normal, type Movable 1 >x 2\n",
            r"line 5: free count of order 1 is not a non-negative integer: '>x'",
        ),
        (
            PTI_HEAD + PTI_FREE_HDR + PTI_ROW + PTI_ROW,
            r"line 6: node 0 zone Normal type Unmovable appears twice \(first on line 5\)",
        ),
        (
            PTI_HEAD + PTI_FREE_HDR + "Node 0, zone Normal 1 2 3\n",
            r"line 5: expected 'Node <n>, zone <name>, type",
        ),
        (PTI_HEAD + PTI_FREE_HDR + PTI_ROW + "\nNumber of blocks type\n", r"line 7: no type names"),
        (
            PTI_HEAD + PTI_FREE_HDR + PTI_ROW + "\nNumber of blocks type  A  A\n",
            r"line 7: a migrate type is named twice",
        ),
        (
            PTI_HEAD + PTI_FREE_HDR + PTI_ROW + PTI_BLOCKS + "Node 0, zone Normal 1 2\n",
            r"line 9: 2 block counts, expected one per type \(1\)",
        ),
        (
            PTI_HEAD + PTI_FREE_HDR + PTI_ROW + PTI_BLOCKS + "Node 0, zone   Normal  5\n",
            r"line 9: node 0 zone Normal appears twice",
        ),
        (
            PTI_HEAD + PTI_FREE_HDR + PTI_ROW + "\nNumber of mixed blocks  A\n",
            r"line 7: 'Number of mixed blocks' section before the blocks section",
        ),
        (
            PTI_HEAD
            + PTI_FREE_HDR
            + PTI_ROW
            + PTI_BLOCKS
            + PTI_HEAD.replace("9", "10").replace("512", "1024"),
            r"line 9: pageblock order 10 differs",
        ),
        (
            PTI_HEAD
            + PTI_FREE_HDR
            + PTI_ROW
            + PTI_BLOCKS
            + PTI_HEAD
            + "Free pages count per migrate type at order 0 1\n",
            r"line 12: 2 orders, but the first header has 3",
        ),
        (
            PTI_HEAD + PTI_FREE_HDR + "Page block order: 9\n",
            r"line 5: 'Page block order' header in the middle",
        ),
    ],
)
def test_pagetypeinfo_errors(text, message):
    with pytest.raises(kmm.ParseError, match=message):
        procfs.parse_pagetypeinfo(text)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 400), st.integers(1, 3), st.sampled_from(["X", "", "\n", ">", "9", "Node"]))
def test_pagetypeinfo_mutations_raise_parse_error_only(pos, width, junk):
    text = sample("pagetypeinfo_x86_64_real.txt")
    pos = pos * len(text) // 400
    mutated = text[:pos] + junk + text[pos + width :]
    try:
        procfs.parse_pagetypeinfo(mutated)
    except kmm.ParseError as e:
        assert str(e)


def test_parse_autodetects():
    assert isinstance(procfs.parse(sample("buddyinfo_x86_32_2005.txt")), procfs.BuddyInfo)
    assert isinstance(procfs.parse(sample("pagetypeinfo_x86_64_real.txt")), procfs.PageTypeInfo)
    assert procfs.is_pagetypeinfo("\n\n" + sample("pagetypeinfo_2.6.24_i386.txt"))
    assert not procfs.is_pagetypeinfo(sample("buddyinfo_13_orders.txt"))


# ---------------------------------------------------------------------------
# fragmentation indices (mm/vmstat.c arithmetic, thousandths)


def test_contig_page_info_hand_computed():
    # nr_free [4, 0, 1]: P = 4*1 + 0*2 + 1*4 = 8 pages, T = 5 blocks
    # order 1: S = 0*1 + 1*2 = 2 blocks of 2 pages
    assert procfs.contig_page_info([4, 0, 1], 1) == (8, 5, 2)
    assert procfs.contig_page_info([4, 0, 1], 2) == (8, 5, 1)


def test_unusable_index_hand_computed():
    # [4, 0, 1], order 1: (P - S*2) * 1000 / P = (8 - 4) * 1000 / 8 = 500
    assert procfs.unusable_index([4, 0, 1], 1) == 500
    # order 0: every free page is usable: (8 - 8) * 1000 / 8 = 0
    assert procfs.unusable_index([4, 0, 1], 0) == 0
    # [1, 1], order 1: P = 3, S = 1: (3 - 2) * 1000 / 3 = 333.33 -> 333 (truncated)
    assert procfs.unusable_index([1, 1], 1) == 333
    # [10, 3, 0, 0], order 1: P = 16, S = 3: (16 - 6) * 1000 / 16 = 625
    assert procfs.unusable_index([10, 3, 0, 0], 1) == 625
    # nothing free: 1000 (everything "unusable")
    assert procfs.unusable_index([0, 0, 0], 2) == 1000


def test_fragmentation_index_hand_computed():
    # [10, 3, 0, 0]: P = 16, T = 13
    # order 1: S = 3 > 0 -> the allocation would succeed -> -1000
    assert procfs.fragmentation_index([10, 3, 0, 0], 1) == -1000
    # order 2: S = 0 -> 1000 - (1000 + 16000/4) / 13 = 1000 - 5000/13 = 1000 - 384 = 616
    assert procfs.fragmentation_index([10, 3, 0, 0], 2) == 616
    # order 3: 1000 - (1000 + 16000/8) / 13 = 1000 - 3000/13 = 1000 - 230 = 770
    assert procfs.fragmentation_index([10, 3, 0, 0], 3) == 770
    # [7, 0, 0, 0], order 3: 1000 - (1000 + 7000/8) / 7 = 1000 - (1000 + 875) / 7 = 1000 - 267 = 733
    # (real arithmetic gives 0.732: the kernel's truncations matter)
    assert procfs.fragmentation_index([7, 0, 0, 0], 3) == 733
    # no free blocks at all: 0
    assert procfs.fragmentation_index([0, 0, 0, 0], 3) == 0
    # one free page, order 1: 1000 - (1000 + 1000/2) / 1 = -500 (negative though the request fails)
    assert procfs.fragmentation_index([1, 0], 1) == -500


def test_index_formats():
    assert procfs.format_unusable(0) == "0.000"
    assert procfs.format_unusable(625) == "0.625"
    assert procfs.format_unusable(1000) == "1.000"
    assert procfs.format_fragmentation(-1000) == "-1.000"
    assert procfs.format_fragmentation(616) == " 0.616"
    assert procfs.format_fragmentation(0) == " 0.000"
    # C: -500 / 1000 = 0 and -500 % 1000 = -500, so "%2d.%03d" prints " 0.-500"
    assert procfs.format_fragmentation(-500) == " 0.-500"
    assert procfs.format_fragmentation(-7) == " 0.-07"


def test_extfrag_texts_exact():
    text = (
        "Node 0, zone      DMA      0      0      0      0      0      0      0      0      0      0      0 \n"
        "Node 0, zone   Normal     10      3      0      0      0      0      0      0      0      0      0 \n"
        "Node 0, zone  HighMem      1      0      0      0      0      0      0      0      0      0      0 \n"
    )
    bi = procfs.parse_buddyinfo(text)
    # Normal: P = 16, T = 13; order j >= 2: 1000 - (1000 + (16000 >> j)) // 13
    #   j=2: 5000//13=384 -> 616   j=3: 3000//13=230 -> 770   j=4: 2000//13=153 -> 847
    #   j=5: 1500//13=115 -> 885   j=6: 1250//13=96 -> 904    j=7: 1125//13=86 -> 914
    #   j=8: 1062//13=81 -> 919    j=9: 1031//13=79 -> 921    j=10: 1015//13=78 -> 922
    # HighMem (one page): j >= 1: 1000 - (1000 + (1000 >> j)) = -(1000 >> j): -500, -250, -125,
    #   -62, -31, -15, -7, -3, -1, 0
    assert procfs.extfrag_text(bi) == (
        "Node 0, zone      DMA " + " 0.000 " * 11 + "\n"
        "Node 0, zone   Normal -1.000 -1.000  0.616  0.770  0.847  0.885  0.904  0.914  0.919  0.921  0.922 \n"
        "Node 0, zone  HighMem -1.000  0.-500  0.-250  0.-125  0.-62  0.-31  0.-15  0.-07  0.-03  0.-01  0.000 \n"
    )
    # unusable: Normal j=1: (16 - 6) * 1000 / 16 = 625; j >= 2: nothing suitable -> 1000
    assert procfs.unusable_text(bi) == (
        "Node 0, zone      DMA " + "1.000 " * 11 + "\n"
        "Node 0, zone   Normal 0.000 0.625 " + "1.000 " * 9 + "\n"
        "Node 0, zone  HighMem 0.000 " + "1.000 " * 10 + "\n"
    )


nr_free_arrays = st.lists(st.integers(0, 5000), min_size=1, max_size=14).flatmap(
    lambda first: st.lists(
        st.lists(st.integers(0, 5000), min_size=len(first), max_size=len(first)), max_size=5
    ).map(lambda rest: [first] + rest)
)


@settings(max_examples=150, deadline=None)
@given(nr_free_arrays)
def test_vectorised_indices_match_scalar(rows):
    arr = np.array(rows, dtype=np.int64)
    un = procfs.unusable_indices(arr)
    fr = procfs.fragmentation_indices(arr)
    assert un.shape == arr.shape and fr.shape == arr.shape
    for z, row in enumerate(rows):
        for j in range(len(row)):
            assert un[z, j] == procfs.unusable_index(row, j)
            assert fr[z, j] == procfs.fragmentation_index(row, j)
        # unusable never decreases with the order; a request that succeeds gives -1000
        assert all(un[z, j] <= un[z, j + 1] for j in range(len(row) - 1))
        for j in range(len(row)):
            succeeds = any(row[o] for o in range(j, len(row)))
            assert (fr[z, j] == -1000) == succeeds
            assert 0 <= un[z, j] <= 1000 and fr[z, j] < 1000


def test_indices_on_machine_free_area():
    m = kmm.Machine(layout="x86_32", mem="256MiB", allocator="antifrag")
    churn(m, 3000, seed=7)
    fa = m.free_area()
    un = procfs.unusable_indices(fa)
    assert un.shape == fa.shape
    text = procfs.unusable_text(m)
    assert text == procfs.unusable_text(
        fa, zone_names=m.zone_names, present=procfs.free_area_of(m)[2]
    )
    assert text == procfs.unusable_text(procfs.parse(m.buddyinfo()))
    assert procfs.extfrag_text(m) == procfs.extfrag_text(procfs.parse(m.pagetypeinfo()))
    assert procfs.extfrag_text(
        m.free_area(by_type=True), zone_names=m.zone_names
    ) == procfs.extfrag_text(fa, zone_names=m.zone_names)
    assert len(text.splitlines()) == len(m.zone_stats())


@pytest.mark.parametrize(
    "bad, exc",
    [
        ([-1, 2], kmm.ParseError),
        ([1.5, 2], kmm.ParseError),
        ([True, False], kmm.ParseError),
        ([], kmm.ParseError),
        ("1 2 3", kmm.ParseError),
        ([[1, 2], [3]], kmm.ParseError),
        ([2**62, 1], kmm.ParseError),
    ],
)
def test_index_bad_input(bad, exc):
    with pytest.raises(exc):
        procfs.unusable_index(bad, 0)
    with pytest.raises(exc):
        procfs.fragmentation_indices(bad)


def test_index_bad_order():
    for order in (-1, 3, 1.0, True, None):
        with pytest.raises(kmm.OrderError):
            procfs.fragmentation_index([1, 2, 3], order)  # type: ignore[arg-type]
    with pytest.raises(kmm.ParseError, match="zone_names"):
        procfs.extfrag_text(np.zeros((1, 3, 11), dtype=np.int64))
    with pytest.raises(kmm.ParseError, match="2 zone names for 3 zones"):
        procfs.extfrag_text(np.zeros((1, 3, 11), dtype=np.int64), zone_names=["DMA", "Normal"])
    with pytest.raises(kmm.ParseError, match="present must have shape"):
        procfs.extfrag_text(np.zeros((1, 3, 11), dtype=np.int64), zone_names="ABC", present=[True])
    with pytest.raises(kmm.ParseError, match="one-dimensional"):
        procfs.unusable_index([[1, 2]], 0)


# ---------------------------------------------------------------------------
# kmm fraginfo


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    rc = kmm_main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_fraginfo_file(capsys):
    path = str(DATA / "buddyinfo_x86_32_2005.txt")
    rc, out, err = run_cli(["fraginfo", path], capsys)
    bi = procfs.parse(sample("buddyinfo_x86_32_2005.txt"))
    assert rc == 0 and err == ""
    assert out == (
        "extfrag/unusable_index\n"
        + procfs.unusable_text(bi)
        + "\nextfrag/extfrag_index\n"
        + procfs.extfrag_text(bi)
    )
    assert run_cli(["fraginfo", "--only", "extfrag", path], capsys)[1] == procfs.extfrag_text(bi)
    assert run_cli(["fraginfo", "--only", "unusable", path], capsys)[1] == procfs.unusable_text(bi)


def test_fraginfo_pagetypeinfo_and_json(capsys):
    path = str(DATA / "pagetypeinfo_numa_cma_mixed.txt")
    rc, out, _ = run_cli(["fraginfo", path], capsys)
    assert rc == 0 and out.startswith(f"# {path}: pagetypeinfo") and "capped" in out.splitlines()[0]
    rc, out, _ = run_cli(["fraginfo", "--json", path], capsys)
    doc = json.loads(out)
    pti = procfs.parse(sample("pagetypeinfo_numa_cma_mixed.txt"))
    assert doc["format"] == "pagetypeinfo" and doc["capped"] is True and doc["pageblock_order"] == 9
    assert [(z["node"], z["zone"]) for z in doc["zones"]] == [
        (0, "DMA"),
        (0, "DMA32"),
        (0, "Normal"),
        (1, "Normal"),
    ]
    normal1 = doc["zones"][3]
    assert normal1["nr_free"] == pti.buddyinfo().nr_free[1, 2].tolist()
    assert normal1["extfrag_index"] == [
        v / 1000 for v in procfs.fragmentation_indices(pti.buddyinfo().nr_free)[1, 2]
    ]
    assert normal1["free_pages"] == sum(c << o for o, c in enumerate(normal1["nr_free"]))


def test_fraginfo_missing_file_and_bad_text(capsys, tmp_path):
    rc, out, err = run_cli(["fraginfo", str(tmp_path / "nope")], capsys)
    assert (
        rc == 1
        and out == ""
        and "cannot read" in err
        and "No such file" in err
        and "Traceback" not in err
    )
    rc, _, err = run_cli(["fraginfo", str(tmp_path)], capsys)
    assert rc == 1 and "cannot read" in err
    bad = tmp_path / "bad"
    bad.write_text(GOOD + "\nNode 0, zone Normal 1 2 3\n")
    rc, out, err = run_cli(["fraginfo", str(bad)], capsys)
    assert rc == 2 and "ParseError: line 2" in err


def test_fraginfo_stdin_pipe():
    text = sample("buddyinfo_numa_movable.txt")
    r = subprocess.run(
        [sys.executable, "-m", "kmm", "fraginfo", "--only", "unusable", "-"],
        input=text.encode(),
        check=False,
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == procfs.unusable_text(procfs.parse(text))


def test_fraginfo_reads_a_fifo(tmp_path, capsys):
    """A FIFO has no size: the command must read to EOF (as from /proc)."""
    fifo = tmp_path / "buddyinfo.fifo"
    os.mkfifo(fifo)
    text = sample("buddyinfo_x86_64_real.txt")

    def writer() -> None:
        with open(fifo, "w") as f:
            f.write(text)

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    rc, out, _ = run_cli(["fraginfo", "--only", "extfrag", str(fifo)], capsys)
    th.join(5)
    assert rc == 0 and out == procfs.extfrag_text(procfs.parse(text))


@pytest.mark.skipif(not os.access("/proc/buddyinfo", os.R_OK), reason="no /proc/buddyinfo here")
def test_fraginfo_default_proc(capsys):
    rc, out, _ = run_cli(["fraginfo", "--json"], capsys)
    doc = json.loads(out)
    assert rc == 0 and doc["source"] == "/proc/buddyinfo" and doc["nr_orders"] >= 1 and doc["zones"]
