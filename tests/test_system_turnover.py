"""The long-lived processes' kernel-object turnover (``workloads.system``,
``params.SYSTEM_TURNOVER_S``; docs/workloads.md, "The system")."""

from __future__ import annotations

import kmm
import numpy as np
import pytest
from kmm import workloads as wl
from kmm.trace import OP_SLAB_ALLOC, OP_SLAB_FREE
from kmm.workloads.params import (
    MODULE_KMALLOC_4096,
    SYSTEM_FILES_IN_USE,
    SYSTEM_LATE,
    SYSTEM_PROCESSES,
    SYSTEM_TURNOVER_KINDS,
    TASK_SLAB,
)

N_PROCS = sum(n for _, n, _ in SYSTEM_PROCESSES) + sum(n for _, n, _, _ in SYSTEM_LATE)
SLOTS = sum(n for k, n in TASK_SLAB if k in SYSTEM_TURNOVER_KINDS)


def _slab(m: kmm.Machine) -> dict[str, tuple[int, int]]:
    return {r["name"]: (int(r["active_objs"]), int(r["num_slabs"])) for r in m.slabinfo()}


def test_turnover_keeps_each_process_population() -> None:
    """Replacing objects never changes how many each process holds: the
    live vm_area_struct and size-32 objects are those without turnover."""
    on, off = kmm.Machine(), kmm.Machine()
    on.replay(wl.system(seed=1).run_until(200.0))
    off.replay(wl.system(seed=1, turnover=0).run_until(200.0))
    on.check()
    off.check()
    a, b = _slab(on), _slab(off)
    for name in ("vm_area_struct", "size-32", "task_struct", "mm_struct", "files_cache"):
        assert a[name][0] == b[name][0], name
    # and there were replacements: about one every 2.2 s per process
    c_on, c_off = on.counters(), off.counters()
    frees = c_on["slab_free"] - c_off["slab_free"]
    expect = N_PROCS * 200.0 / 2.2
    assert 0.85 * expect < frees < 1.15 * expect


def test_replacements_land_in_the_load_s_slab_pages() -> None:
    """With a build running beside them (its tasks' vm_area_structs in the same
    cache), the replaced objects end in more slab pages than the boot-time
    ones, and those pages outlive the build: the mechanism's point."""

    def at_rest(turnover: float) -> tuple[int, int]:
        load = wl.combine(
            wl.system(seed=3, turnover=turnover),
            wl.kernel_build(4, seed=3, layout=wl.kernel_tree(files=2_000, units=80, headers=200, seed=3)),
        )
        m = kmm.Machine(mem="256MiB")
        for c in load.chunks(60.0, 10.0):
            m.replay(c)
        m.replay(load.stop())
        m.replay(load.drop_caches())
        m.check()
        return _slab(m)["vm_area_struct"]

    objs_off, pages_off = at_rest(0.0)
    objs_on, pages_on = at_rest(2.2)
    assert objs_on == objs_off  # the same objects live at rest
    assert pages_on > pages_off  # spread over pages the build shared


@pytest.mark.parametrize("bad", [-1.0, 1e-5, 1e5, float("nan"), "2"])
def test_bad_turnover_is_refused(bad: object) -> None:
    with pytest.raises(kmm.KmmError):
        wl.system(turnover=bad)  # type: ignore[arg-type]


def test_turnover_events_pair_up() -> None:
    """Each replacement is an allocation and a free of the slot's previous
    object: the system frees nothing else, so the slab allocations are the
    boot-time objects plus one per free."""
    tr = wl.system(seed=0).run_until(100.0)
    alloc = int(np.count_nonzero(tr["op"] == OP_SLAB_ALLOC))
    free = int(np.count_nonzero(tr["op"] == OP_SLAB_FREE))
    assert free > 0
    per_task = sum(n for _, n in TASK_SLAB)
    # each file in use: an inode, a dentry, a struct file and a reference
    files = N_PROCS * SYSTEM_FILES_IN_USE * 4
    assert alloc - free == N_PROCS * per_task + MODULE_KMALLOC_4096 + files
    off = wl.system(seed=0, turnover=0).run_until(100.0)
    assert int(np.count_nonzero(off["op"] == OP_SLAB_FREE)) == 0
