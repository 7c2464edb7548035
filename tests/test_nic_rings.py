"""NIC rx rings in the allocator (kmm.workloads.nic, kmm highalloc --nic-rings)."""

from __future__ import annotations

import json

import kmm
import numpy as np
import pytest
from kmm import trace as T
from kmm._variants import LocalChunks
from kmm.cli import main
from kmm.highalloc import HighallocConfig, format_report, generate_load, run
from kmm.workloads import combine, nic, system

SMALL = dict(mem="512MiB", layout="x86_64", builds=1, warmup_s=4.0, attempts=6, variants=["vanilla", "mobility"])


def _pinned(m: kmm.Machine) -> int:
    """Pages the page map shows as allocated Unmovable."""
    return int(np.count_nonzero(m.page_map() == 3 + m.type_names.index("Unmovable")))


def _unmovable_blocks(m: kmm.Machine) -> int:
    lines = m.pagetypeinfo().splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("Number of blocks type"))
    col = lines[head].split().index("Unmovable") - 4  # "Number of blocks type" is 4 words
    return sum(int(ln.split()[4 + col]) for ln in lines[head + 1 :] if ln.startswith("Node"))


def test_rings_are_pinned_in_page_map_and_pagetypeinfo() -> None:
    rings = 2
    tr = nic.rx_rings(rings, rx_pps=2000).run_until(2.0)
    allocs = int(np.count_nonzero(tr["op"] == T.OP_ALLOC))
    frees = int(np.count_nonzero(tr["op"] == T.OP_FREE))
    pages = rings * nic.PAGES_PER_RING
    assert pages == 1024
    # every refill is a fresh page, then the free of the old one
    assert allocs - frees == pages
    assert frees == pytest.approx(2.0 * rings * 2000 / nic.BUFFERS_PER_PAGE, abs=rings)
    assert set(np.unique(tr["gfp"][tr["op"] == T.OP_ALLOC])) == {kmm.gfp.GFP_ATOMIC}
    empty = kmm.Machine(allocator="mobility", mem="256MiB")
    m = kmm.Machine(allocator="mobility", mem="256MiB")
    m.replay(tr, outcomes=False)
    m.check()
    assert _pinned(empty) == 0
    assert _pinned(m) == pages
    # 1,024 unmovable pages need at least one unmovable pageblock of 512 more
    # than an idle machine has
    assert _unmovable_blocks(m) >= _unmovable_blocks(empty) + pages // 512


def test_refills_walk_each_ring_in_order_and_alternate_ids() -> None:
    tr = nic.rx_rings(1, rx_pps=1000).run_until(1.5)
    ops = tr[(tr["op"] == T.OP_ALLOC) | (tr["op"] == T.OP_FREE)]
    first = ops[: nic.PAGES_PER_RING]
    assert np.all(first["op"] == T.OP_ALLOC)
    refill = ops[nic.PAGES_PER_RING :]
    assert np.all(refill["op"][0::2] == T.OP_ALLOC) and np.all(refill["op"][1::2] == T.OP_FREE)
    # refill k frees the page of slot k % 512 of the lap before
    k = np.arange(refill.shape[0] // 2)
    slot_of_first = (first["obj"] - first["obj"][0]) // 2
    assert np.array_equal(slot_of_first, np.arange(nic.PAGES_PER_RING))
    freed_slot = (refill["obj"][1::2] - first["obj"][0]) // 2
    assert np.array_equal(freed_slot, k % nic.PAGES_PER_RING)


def test_stop_leaves_the_rings_allocated() -> None:
    ld = combine(system(seed=1), nic.rx_rings(1))
    tr = ld.run_until(1.0)
    stop = ld.stop()
    m = kmm.Machine(allocator="mobility", mem="256MiB")
    m.replay(tr, outcomes=False)
    before = _pinned(m)
    m.replay(stop, outcomes=False)
    m.check()
    assert before >= nic.PAGES_PER_RING
    assert _pinned(m) >= nic.PAGES_PER_RING  # the device is still up
    nic_ids = set(tr["obj"][tr["gfp"] == kmm.gfp.GFP_ATOMIC].tolist())
    assert not nic_ids & set(stop["obj"].tolist())


def test_zero_rings_changes_nothing() -> None:
    a = HighallocConfig(**SMALL)
    b = HighallocConfig(**SMALL, nic_rings=0)
    la, lb = LocalChunks(), LocalChunks()
    generate_load(a, la)
    generate_load(b, lb)
    assert [n for n, _ in la._entries] == [n for n, _ in lb._entries]
    for (name, x), (_, y) in zip(la._entries, lb._entries):
        assert x.tobytes() == y.tobytes(), name
    ra, rb = run(a, processes=1), run(b, processes=1)

    def strip(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if "wall time" not in ln]

    assert strip(format_report(ra)) == strip(format_report(rb))


def test_rings_change_the_load_and_are_reported(tmp_path) -> None:
    cfg = HighallocConfig(**SMALL, nic_rings=2)
    res = run(cfg, processes=1)
    text = format_report(res)
    assert "2 NIC rx rings (1024 pages pinned, 1000 packets/s each)" in text.splitlines()[0]
    base = run(HighallocConfig(**SMALL), processes=1)
    for name in SMALL["variants"]:
        for pas in ("under_load", "at_rest"):
            r = res["variants"][name][pas]
            assert r["success"] <= r["ceiling"] <= r["limit"]
        # 1,024 more unmovable pages: the perfect-packing limit can only fall
        assert res["variants"][name]["at_rest"]["limit"] <= base["variants"][name]["at_rest"]["limit"]


def test_cli_nic_rings(capsys, tmp_path) -> None:
    out = tmp_path / "r.json"
    argv = ["highalloc", "--mem", "512MiB", "--layout", "x86_64", "--builds", "1", "--warmup", "3",
            "--attempts", "3", "--variants", "mobility", "--no-progress", "--no-buddyinfo"]
    assert main([*argv, "--nic-rings", "1", "--nic-rx-pps", "500", "--json", str(out)]) == 0
    assert "1 NIC rx ring (512 pages pinned, 500 packets/s each)" in capsys.readouterr().out
    cfg = json.loads(out.read_text())["config"]
    assert (cfg["nic_rings"], cfg["nic_rx_pps"]) == (1, 500.0)
    assert main([*argv, "--nic-rings", "65"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kmm highalloc: ") and "nic_rings" in err[0]


@pytest.mark.parametrize("kw", [dict(rings=0), dict(rings=65), dict(rings=1, rx_pps=0.0), dict(rings=1, rx_pps=float("nan"))])
def test_bad_ring_arguments(kw) -> None:
    rings = kw.pop("rings")
    with pytest.raises(kmm.ConfigError):
        nic.rx_rings(rings, **kw)
