"""The long-lived processes' working memory on a machine without swap
(``kmm.workloads.resident``): unevictable, movable, a steady size, left by
``stop()``, and migrated by compaction with every invariant kept."""

from __future__ import annotations

import kmm
import numpy as np
import pytest
from kmm import mmtests
from kmm import workloads as W
from kmm.errors import BenchmarkError, ConfigError
from kmm.workloads.params import SYSTEM_LATE, SYSTEM_PROCESSES

RES = kmm.TF_UNEVICTABLE | kmm.TF_TASK


def _boot_pages() -> int:
    return sum(n * a for _, n, a in SYSTEM_PROCESSES) + sum(n * a for _, n, a, _ in SYSTEM_LATE)


def test_working_sets_are_unevictable_a_steady_size_and_outlive_stop():
    ld = W.resident(seed=3, refault=5.0)
    tr = ld.run_until(40.0)
    unev = (tr["flags"] & kmm.TF_UNEVICTABLE) != 0
    allocs = tr["op"] == kmm.OP_ALLOC
    assert (tr["flags"][unev] == RES).all() and (allocs[unev]).all()
    assert (tr["gfp"][unev] == kmm.GFP_HIGHUSER).all()
    frees = tr["op"] == kmm.OP_FREE
    live = int(unev.sum() - frees.sum())
    # a freed page comes back within 5 s: about a third of the slots wait at any time
    assert 0.5 * _boot_pages() < live < _boot_pages()
    # each page is freed about every 5 s: after 40 s most were faulted again
    assert frees.sum() > 0.8 * _boot_pages()
    # a page is faulted again only after it was freed, never twice at once
    ld2 = W.resident(seed=3, refault=5.0)
    t = ld2.run_until(40.0)
    seen: set[int] = set()
    for op, obj in zip(t["op"].tolist(), t["obj"].tolist()):
        if op == kmm.OP_ALLOC:
            assert obj not in seen
            seen.add(obj)
        elif op == kmm.OP_FREE:
            assert obj in seen
    # a freed page is never freed again, nor allocated again
    assert np.unique(tr["obj"][frees]).shape[0] == frees.sum()
    assert np.unique(tr["obj"][allocs]).shape[0] == allocs.sum()
    assert ld.stop().shape[0] == 0


def test_resident_is_deterministic_and_checked():
    a = W.resident(seed=1).run_until(30.0)
    b = W.resident(seed=1).run_until(30.0)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != W.resident(seed=2).run_until(30.0).tobytes()
    for kw in ({"scale": -1.0}, {"refault": 0.0}, {"seed": -1}):
        with pytest.raises(ConfigError):
            W.resident(**kw)
    with pytest.raises(BenchmarkError):
        mmtests.MmtestsConfig(resident=True, refault_s=0.0).validate()


def test_reclaim_leaves_them_and_compaction_moves_them_intact():
    ld = W.combine(W.system(seed=0), W.resident(seed=0, refault=2.0), W.kernel_build(2, seed=0))
    m = kmm.Machine(layout="x86_64", mem="128MiB", allocator="mobility")
    ids = set()
    for chunk in ld.chunks(20.0, chunk_s=5.0):
        out, _ = m.replay(chunk)
        unev = (chunk["op"] == kmm.OP_ALLOC) & ((chunk["flags"] & kmm.TF_UNEVICTABLE) != 0)
        assert (out[unev] >= 0).all()
        ids.update(chunk["obj"][unev].tolist())
        ids.difference_update(chunk["obj"][chunk["op"] == kmm.OP_FREE].tolist())
    m.replay(ld.stop(), outcomes=False)
    # order-9 requests make direct reclaim take the page cache the build left
    held = [p for p in (m.alloc(9, "GFP_HIGHUSER") for _ in range(40)) if p is not None]
    m.check()
    assert m.counters()["pgsteal"] > 0
    for p in held:
        m.free(p)
    where = {o: m.object_block(o) for o in ids}
    assert all(p is not None for p in where.values()), "reclaim took an unevictable page"
    m.compact()
    m.check()
    after = {o: m.object_block(o) for o in ids}
    assert all(p is not None for p in after.values())
    assert any(after[o] != where[o] for o in ids), "compaction moved none of them"


def test_resident_is_for_mmtests_only_and_reaches_its_config(capsys):
    from kmm.cli import main
    from kmm.commands.highalloc import mmtests_config_from_args, register

    assert main(["highalloc", "--resident"]) != 0
    assert "--resident applies to --mmtests" in capsys.readouterr().err
    import argparse

    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    cfg = mmtests_config_from_args(p.parse_args(["highalloc", "--mmtests", "--quick", "--resident"]))
    assert cfg.resident and cfg.mem == "1GiB"
    assert not mmtests_config_from_args(p.parse_args(["highalloc", "--mmtests"])).resident
