"""Slab objects through the binding: the trace ops, slabinfo, bad input, and a
property test against a model that knows only "a slab page goes with its last
object"."""

from __future__ import annotations

import kmm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

DENTRY = kmm.SLAB_CACHES["dentry_cache"]
INODE = kmm.SLAB_CACHES["ext3_inode_cache"]
TASK = kmm.SLAB_CACHES["task_struct"]


def ops(*rows: tuple[int, int, int, int]) -> np.ndarray:
    """(op, order, obj, gfp) rows as a trace."""
    t = np.zeros(len(rows), kmm.TRACE_DTYPE)
    for i, (op, order, obj, gfp) in enumerate(rows):
        t[i] = (op, order, 0, obj, gfp, 0, 0, 0)
    return t


def salloc(obj: int, cache: int) -> tuple[int, int, int, int]:
    return (kmm.OP_SLAB_ALLOC, cache, obj, kmm.GFP_KERNEL)


def info(m: kmm.Machine, cache: int) -> dict:
    return m.slabinfo()[cache]


def test_caches_and_their_geometry_are_exported() -> None:
    assert list(kmm.SLAB_CACHES)[:3] == ["dentry_cache", "ext3_inode_cache", "buffer_head"]
    m = kmm.Machine(mem="64MiB")
    rows = {r["name"]: r for r in m.slabinfo()}
    assert (rows["dentry_cache"]["objperslab"], rows["ext3_inode_cache"]["objperslab"]) == (29, 8)
    assert all(r["active_objs"] == 0 and r["num_slabs"] == 0 for r in rows.values())


def test_objects_fill_a_slab_page_before_the_next() -> None:
    m = kmm.Machine(mem="64MiB", allocator="antifrag")
    pfns, _ = m.replay(ops(*(salloc(i, INODE) for i in range(9))), outcomes=True)
    assert len(set(pfns[:8].tolist())) == 1 and pfns[8] != pfns[0]
    assert m.page_map()[pfns[0]] == kmm.PM_KERNRCLM
    assert (info(m, INODE)["active_objs"], info(m, INODE)["num_slabs"]) == (9, 2)
    m.replay(ops(*((kmm.OP_SLAB_FREE, 0, i, 0) for i in range(8))), outcomes=False)
    assert info(m, INODE)["num_slabs"] == 1
    m.check()


@pytest.mark.parametrize(
    "bad, words",
    [
        (ops((kmm.OP_FREE, 0, 0, 0)), "a slab object"),
        (ops((kmm.OP_SLAB_ALLOC, 200, 5, kmm.GFP_KERNEL)), "does not exist"),
        (ops((kmm.OP_SLAB_ALLOC, DENTRY, 5, kmm.GFP_HIGHUSER)), "zone modifier"),
        (ops((kmm.OP_SLAB_PIN, 0, 0, 0)), "pins at most one"),
        (ops((kmm.OP_SLAB_FREE, 0, 1, 0)), "still pin"),
    ],
)
def test_bad_slab_ops_raise_and_change_nothing(bad: np.ndarray, words: str) -> None:
    m = kmm.Machine(mem="64MiB")
    # object 1 (an inode) is pinned by object 0 (a dentry)
    m.replay(ops(salloc(1, INODE), salloc(0, DENTRY), (kmm.OP_SLAB_PIN, 0, 0, 1)), outcomes=False)
    before = (m.counters(), m.slabinfo(), m.page_map().tobytes())
    with pytest.raises(kmm.TraceError, match=words):
        m.replay(bad, outcomes=False)
    assert (m.counters(), m.slabinfo(), m.page_map().tobytes()) == before
    m.check()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 120), st.sampled_from([DENTRY, TASK])), max_size=300))
def test_a_page_goes_exactly_with_its_last_object(steps: list[tuple[int, int]]) -> None:
    m = kmm.Machine(mem="64MiB")
    live: dict[int, int] = {}
    count: dict[int, int] = {}
    for obj, cache in steps:
        before = m.counters()["slab_pages_free"]
        if obj in live:
            m.replay(ops((kmm.OP_SLAB_FREE, 0, obj, 0)), outcomes=False)
            pfn = live.pop(obj)
            count[pfn] -= 1
            last = count[pfn] == 0
            if last:
                del count[pfn]
            assert m.counters()["slab_pages_free"] - before == int(last)
        else:
            pfns, _ = m.replay(ops(salloc(obj, cache)), outcomes=True)
            live[obj] = int(pfns[0])
            count[live[obj]] = count.get(live[obj], 0) + 1
    assert sum(r["num_slabs"] for r in m.slabinfo()) == len(count)
    m.check()
