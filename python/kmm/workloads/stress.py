"""The load of VMRegress ``bench-stresshighalloc``: updatedb and concurrent kernel builds."""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping

from .._args import float_arg, int_arg
from ..errors import ConfigError
from . import system, walk
from .build import kernel_build
from .load import Load, combine
from .source import HORIZON_US
from .tree import kernel_tree


def stress_highalloc_load(
    builds: int = 7,
    jobs: int = 4,
    updatedb: bool = True,
    *,
    seed: int = 0,
    stacks: Mapping[str, int] | None = None,
    cpus: float = 2.0,
    copy_mb_s: float = 35.0,
    with_system: bool = True,
    updatedb_files: int | None = None,
) -> Load:
    """The load of VMRegress ``bench-stresshighalloc`` (Gorman, anti-fragmentation v7, linux-mm, 31 Jan 2005).

    ``updatedb &``; then ``builds - 1`` copies of the tree made one after the
    other, each starting ``make -j{jobs} bzImage`` as soon as it is copied, then
    the main tree builds too. The builds share ``cpus`` CPUs; at most
    ``BUILD_SLOTS`` run at once, a later tree's ``make`` waiting for a slot to
    free (see :func:`kmm.workloads.kernel_build`'s ``make_from``). ``with_system``
    adds the machine's long-lived processes (:func:`kmm.workloads.system.system`).
    ``updatedb_files`` sets the files updatedb walks (None: its default).
    """
    builds = int_arg("builds", builds, 0, MAX_TREES)
    jobs = int_arg("jobs", jobs, 1, 1024)
    seed = int_arg("seed", seed, 0, None)
    cpus = float_arg("cpus", cpus, 0.01, 4096)
    copy_mb_s = float_arg("copy_mb_s", copy_mb_s, 0.01, 1e6)
    if not isinstance(updatedb, bool):
        raise ConfigError(f"updatedb must be a bool, got {updatedb!r}")
    if not isinstance(with_system, bool):
        raise ConfigError(f"with_system must be a bool, got {with_system!r}")
    if builds == 0 and not updatedb:
        raise ConfigError("an empty load: no builds and no updatedb")
    layout = kernel_tree(seed=seed)
    copy_s = _copy_s(layout.bytes, copy_mb_s)
    # build k (1..builds-1) copies during [(k-1) c, k c) and builds from k c;
    # the main tree builds from (builds-1) c
    make_start = [k * copy_s for k in range(1, builds)] + [(builds - 1) * copy_s]
    # at most BUILD_SLOTS makes run at once; a later tree's make waits for the
    # first slot to free (its copy runs in turn all the same). Every slot stays
    # busy once filled, so the builds running at t are min(slots, ready by t).
    slots = min(builds, BUILD_SLOTS)
    steps = sorted(set(make_start[:slots]))
    share = [(0.0, cpus)] + [
        (t, cpus / min(slots, sum(1 for m in make_start if m <= t))) for t in steps
    ]
    free: list[float] = []  # when each busy slot's build ends (a heap)
    loads: list[Load] = []
    if with_system:
        loads.append(system.system(seed=seed, stacks=stacks))
    if updatedb:
        kw = {} if updatedb_files is None else {"files": updatedb_files}
        loads.append(walk.updatedb(seed=seed, stacks=stacks, **kw))

    def slot(kw: dict) -> Load:
        # the first `slots` builds start when their copy is done; the others
        # wait for the earliest slot to free
        if len(free) == slots:
            kw["make_from"] = heapq.heappop(free)
        ld = kernel_build(jobs, stacks=stacks, layout=layout, cpu_share=share, **kw)
        end = ld.describe()[0]["make_end_s"]
        # a tree copied but not built holds its slot past the horizon
        heapq.heappush(free, HORIZON_US / 1e6 if end is None else end)
        return ld

    for k in range(1, builds):
        loads.append(
            slot(
                dict(
                    seed=seed + k,
                    start=(k - 1) * copy_s,
                    copy_tree=True,
                    tree=f"linux-2.6.11-copy{k}",
                    source_tree="linux-2.6.11",
                    copy_mb_s=copy_mb_s,
                )
            )
        )
    if builds:
        loads.append(
            slot(
                dict(
                    seed=seed,
                    start=(builds - 1) * copy_s,
                    tree="linux-2.6.11",
                    source_tree="linux-2.6.11-orig",
                )
            )
        )
    return combine(*loads, stacks=stacks)


def _copy_s(tree_bytes: int, copy_mb_s: float) -> float:
    """Seconds one ``cp -r`` of a tree takes (rounded up to the microsecond)."""
    return math.ceil(tree_bytes / (copy_mb_s * 1e6) * 1e6) / 1e6


def copies_done_s(builds: int, *, seed: int = 0, copy_mb_s: float = 35.0) -> float:
    """When the script's copy loop ends in :func:`stress_highalloc_load`: the
    ``builds - 1`` copies made one after the other are done and the main tree's
    ``make`` starts (0 with one tree or none). Both scripts start their sleep,
    the warm-up, here (docs/workloads.md, "When the attempts start")."""
    builds = int_arg("builds", builds, 0, MAX_TREES)
    copy_mb_s = float_arg("copy_mb_s", copy_mb_s, 0.01, 1e6)
    if builds <= 1:
        return 0.0
    return (builds - 1) * _copy_s(kernel_tree(seed=int_arg("seed", seed, 0, None)).bytes, copy_mb_s)


#: concurrent ``make``s at most: on the model's 2 CPUs every build then ends
#: within the generator's horizon whatever the seed (178 do with seed 0); more
#: trees build one after another in these slots (docs/workloads.md)
BUILD_SLOTS = 160
#: most trees a load may have (page cache of 3.4 x 256 GiB)
MAX_TREES = 4096


#: kernel trees worth this many times RAM make a load that fills any machine
#: (mmtests sizes its kernel-build and updatedb loads from the machine's memory)
TREES_PER_RAM = 1.5


def load_for_memory(mem_bytes: int, *, seed: int = 0) -> tuple[int, int]:
    """The load that fits a machine of ``mem_bytes``: (kernel trees, files
    updatedb walks). Trees: as many 2.6.11 source trees (``kernel_tree().bytes``,
    each copied and built by one ``make``) as make ``TREES_PER_RAM`` times RAM, at least one;
    updatedb walks the files of that many trees."""
    tree = kernel_tree(seed=seed)
    trees = max(1, round(TREES_PER_RAM * int(mem_bytes) / tree.bytes))
    return trees, trees * tree.files
