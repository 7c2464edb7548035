"""The files the long-lived processes keep in use (``workloads.system``,
``params.SYSTEM_FILES_IN_USE``; docs/workloads.md, "The system"): a dentry and
an inode each, which neither the shrinkers nor drop_caches free."""

from __future__ import annotations

import kmm
import pytest
from kmm import workloads as wl
from kmm.workloads.params import SYSTEM_FILES_IN_USE, SYSTEM_LATE, SYSTEM_PROCESSES

N_PROCS = sum(n for _, n, _ in SYSTEM_PROCESSES) + sum(n for _, n, _, _ in SYSTEM_LATE)


def _objs(m: kmm.Machine) -> dict[str, int]:
    return {r["name"]: int(r["active_objs"]) for r in m.slabinfo()}


def _at_rest(files: int, mem: str) -> kmm.Machine:
    """The system beside a build on a machine the build fills (the shrinkers
    run), then the load's stop and the cache drop."""
    load = wl.combine(
        wl.system(seed=4, files_in_use=files),
        wl.kernel_build(4, seed=4, layout=wl.kernel_tree(files=2_000, units=80, headers=200, seed=4)),
    )
    m = kmm.Machine(mem=mem)
    for c in load.chunks(60.0, 10.0):
        m.replay(c)
    m.replay(load.stop())
    m.replay(load.drop_caches())
    m.check()
    return m


@pytest.mark.parametrize("files", [0, 1, SYSTEM_FILES_IN_USE])
def test_files_in_use_survive_reclaim_and_drop_caches(files: int) -> None:
    """On a small machine the build's page cache and slab are reclaimed and
    then dropped; exactly the system's files in use stay, a dentry and an inode
    each, whatever reclaim did meanwhile."""
    m = _at_rest(files, "40MiB")
    assert m.counters()["slab_reclaimed"] > 0  # the shrinkers freed objects
    o = _objs(m)
    assert o["dentry_cache"] == N_PROCS * files
    assert o["ext3_inode_cache"] == N_PROCS * files


def test_files_in_use_are_in_the_system_s_description() -> None:
    src = wl.system(seed=0).describe()
    assert src[0]["files_in_use"] == SYSTEM_FILES_IN_USE


@pytest.mark.parametrize("bad", [-1, 1001, 2.5, "6"])
def test_bad_files_in_use_is_refused(bad: object) -> None:
    with pytest.raises(kmm.KmmError):
        wl.system(files_in_use=bad)  # type: ignore[arg-type]
