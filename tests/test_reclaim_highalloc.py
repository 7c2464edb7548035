"""Reclaim, active freeing, the ceiling, and `kmm highalloc` end to end."""

from __future__ import annotations

import json

import kmm
import numpy as np
import pytest
from kmm.cli import main
from kmm.highalloc import HighallocConfig, run

A, F, T, TICK = kmm.OP_ALLOC, kmm.OP_FREE, kmm.OP_TOUCH, kmm.OP_TICK


def trace(ops):
    t = kmm.empty_trace(len(ops))
    for i, (op, obj, order, gfp) in enumerate(ops):
        t[i] = (op, order, 0, obj, gfp, 0, 0, 0)
    return t


def fill_user(m, n, gfp=kmm.GFP_HIGHUSER, base=0):
    """Allocate n reclaimable order-0 objects; returns their outcomes."""
    out, c = m.replay(trace([(A, base + i, 0, gfp) for i in range(n)]))
    return out, c


def test_reclaim_frees_oldest_first_and_refaults():
    m = kmm.Machine(layout="x86_32", mem="64MiB", pcp=False)
    total = sum(z.managed for z in m.zone_stats())
    n = total + 2000  # more than memory: reclaim must make room
    out, c = fill_user(m, n, gfp=kmm.GFP_USER)
    assert (out >= 0).all(), "reclaim makes room for every user page"
    assert c["pgsteal"] >= 2000 and c["pgscan"] == c["pgsteal"]
    # per zone LRU: within each zone, every reclaimed object is older than every survivor
    held = np.array([m.object_block(i) is not None for i in range(n)])
    zones = m.zone_stats()
    zone_of = np.searchsorted([z.start_pfn for z in zones], out, side="right") - 1
    for zi in np.unique(zone_of):
        ids = np.nonzero(zone_of == zi)[0]
        gone, kept = ids[~held[ids]], ids[held[ids]]
        if len(gone) and len(kept):
            assert gone.max() < kept.min(), zones[zi].zone
    assert (~held).sum() >= 2000
    # touching a reclaimed object faults it back in
    _, c2 = m.replay(trace([(T, 0, 0, 0)]))
    assert c2["refaults"] == 1 and m.object_block(0) is not None
    # freeing a reclaimed object is a counted no-op
    _, c3 = m.replay(trace([(F, 1, 0, 0)]))
    assert c3["free_reclaimed"] == 1 and c3["free"] == 0
    m.check()


def test_touch_protects_from_reclaim():
    m = kmm.Machine(layout="x86_32", mem="64MiB", pcp=False)
    total = sum(z.managed for z in m.zone_stats())
    fill_user(m, 1000, gfp=kmm.GFP_USER)
    m.replay(trace([(T, 0, 0, 0)]))  # object 0 becomes younger than 1..999
    base = 1000
    # allocate until reclaim has taken object 500 (the middle of 1..999)
    while m.object_block(500) is not None:
        fill_user(m, 50, gfp=kmm.GFP_USER, base=base)
        base += 50
        assert base < 3 * total, "reclaim never reached the old objects"
    assert m.object_block(1) is None
    assert m.object_block(0) is not None
    assert m.object_block(999) is not None
    m.check()


def test_unreclaimable_pages_are_never_reclaimed():
    m = kmm.Machine(layout="x86_32", mem="64MiB", pcp=False)
    out, _ = m.replay(trace([(A, i, 0, kmm.GFP_KERNEL) for i in range(3000)]))
    kernel_pfns = set(out[out >= 0].tolist())
    total = sum(z.managed for z in m.zone_stats())
    fill_user(m, total, gfp=kmm.GFP_USER, base=10_000)
    # every kernel object still holds its page
    assert all(m.object_block(i) is not None for i in range(3000))
    pfns, orders, types = m.allocated_blocks()
    assert kernel_pfns <= set(pfns.tolist())
    m.check()


def test_anonymous_pages_stay_without_swap_and_go_with_it():
    """2.6.11's refill_inactive_zone: an anonymous page (an object its task
    owns, TF_TASK) is never deactivated without swap; with swap and
    vm_swappiness 100 (reclaim_mapped always) reclaim takes it like page cache."""
    for swap, kept in ((False, True), (True, False)):
        m = kmm.Machine(layout="x86_32", mem="64MiB", pcp=False, swap=swap, swappiness=100)
        total = sum(z.managed for z in m.zone_stats())
        t = kmm.empty_trace(1000)
        for i in range(1000):
            t[i] = (A, 0, kmm.TF_TASK, i, kmm.GFP_USER, 0, 7, 7)
        m.replay(t)
        assert sum(z.nr_mapped for z in m.zone_stats()) == 1000
        fill_user(m, 3 * total, gfp=kmm.GFP_USER, base=10_000)
        held = sum(m.object_block(i) is not None for i in range(1000))
        assert (held == 1000) == kept, (swap, held)
        m.check()
    with pytest.raises(kmm.ConfigError, match="swappiness"):
        kmm.Machine(layout="x86_32", mem="64MiB", swappiness=101)


def test_kswapd_stops_at_high_watermark():
    m = kmm.Machine(layout="x86_32", mem="256MiB", pcp=False)
    total = sum(z.managed for z in m.zone_stats())
    # fill without direct reclaim pressure beyond the low mark
    fill_user(m, total, gfp=kmm.GFP_USER)
    before = {z.zone: z for z in m.zone_stats()}
    woken = [n for n, z in before.items() if z.free < z.low and z.lru_pages]
    assert woken, "the fill should leave some zone below its low mark"
    m.advance(1.0)  # kswapd runs for a simulated second
    for z in m.zone_stats():
        if z.zone in woken:
            assert z.free >= z.high, z
            # and it stopped there: within one reclaim batch (32 pages) of the high mark
            assert z.free < z.high + 32, z
        else:
            assert z.free == before[z.zone].free
    m.check()


def test_active_freeing_never_touches_pinned_pages_and_pays_what_it_reports():
    for allocator in ("vanilla", "antifrag", "mobility"):
        m = kmm.Machine(layout="x86_32", mem="64MiB", allocator=allocator, active_freeing=True, pcp=False)
        total = sum(z.managed for z in m.zone_stats())
        rng = np.random.default_rng(1)
        gfps = np.where(rng.random(total) < 0.0005, kmm.GFP_KERNEL, kmm.GFP_USER)
        out, _ = m.replay(trace([(A, i, 0, int(g)) for i, g in enumerate(gfps)]))
        pinned = {int(p) for p, g in zip(out, gfps) if p >= 0 and g == kmm.GFP_KERNEL}
        held_before = {i for i in range(total) if m.object_block(i) is not None}
        before = m.counters()
        ceiling = m.highorder_ceiling(9, kmm.GFP_USER)
        got = []
        while (p := m.alloc(9, kmm.GFP_USER)) is not None:
            got.append(p)
            assert not any(p <= q < p + 512 for q in pinned), "a pinned page inside an actively freed block"
            assert len(got) <= ceiling
        after = m.counters()
        assert after["active_free_success"] - before["active_free_success"] >= 1, allocator
        # every page it reports reclaiming is a page some object lost
        lost = len(held_before - {i for i in range(total) if m.object_block(i) is not None})
        steal = after["pgsteal"] - before["pgsteal"]
        assert lost == steal
        assert 0 < after["active_free_pages"] - before["active_free_pages"] <= steal
        # kernel objects were never touched
        assert all(m.object_block(i) is not None for i, g in enumerate(gfps) if g == kmm.GFP_KERNEL and out[i] >= 0)
        m.check()


def test_no_policy_beats_the_ceiling():
    for allocator in ("vanilla", "antifrag", "mobility"):
        m = kmm.Machine(layout="x86_32", mem="128MiB", allocator=allocator, active_freeing=True)
        rng = np.random.default_rng(2)
        n = 40_000
        gfps = rng.choice([kmm.GFP_KERNEL, kmm.GFP_USER, kmm.GFP_KERNEL | kmm.gfp.KERNRCLM], n, p=[0.02, 0.9, 0.08])
        m.replay(trace([(A, i, 0, int(g)) for i, g in enumerate(gfps)]))
        ceiling = m.highorder_ceiling(10, kmm.GFP_USER)
        assert ceiling <= m.highorder_limit(10, kmm.GFP_USER)
        held = []
        while (p := m.alloc(10, kmm.GFP_USER)) is not None:
            held.append(p)
        assert len(held) <= ceiling
        m.check()


def test_highalloc_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["highalloc", "--quick", "--no-progress", "--attempts", "20", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    for label in ("Order", "Attempted allocations", "Success allocs", "Failed allocs", "% Success"):
        assert label in text
    res = json.loads(out.read_text())
    assert set(res["variants"]) == {"vanilla", "antifrag", "mobility", "antifrag+active"}
    for name, v in res["variants"].items():
        for pas in ("under_load", "at_rest"):
            p = v[pas]
            assert p["attempted"] == 20
            assert 0 <= p["success"] <= min(p["ceiling"], 20) or p["success"] <= 20
            assert p["ceiling"] <= p["limit"]
    assert res["seed"] == 0


def test_highalloc_deterministic_for_a_seed():
    cfg = dict(mem="512MiB", layout="x86_64", builds=1, warmup_s=8.0, attempts=10, variants=["vanilla", "antifrag"])
    a = run(HighallocConfig(**cfg), processes=1)
    b = run(HighallocConfig(**cfg), processes=2)
    strip = lambda r: {n: (v["under_load"]["success"], v["at_rest"]["success"], v["counters"]) for n, v in r["variants"].items()}
    assert strip(a) == strip(b)


@pytest.mark.parametrize(
    "argv",
    [
        ["--attempts", "0"],
        ["--order", "11"],
        ["--warmup", "-1"],
        ["--variants", "vanilla,slab"],
        ["--mem", "12XB"],
        ["--jobs", "0"],
    ],
)
def test_highalloc_bad_options(argv, capsys):
    assert main(["highalloc", "--quick", "--no-progress", *argv]) == 2
    assert "BenchmarkError" in capsys.readouterr().err
