"""Workload generators: the load of Mel Gorman's 2005 ``bench-stresshighalloc``.

A :class:`Load` turns a model of what processes and caches do into a trace in
the ``kmm.TRACE_DTYPE`` format that :meth:`kmm.Machine.replay` runs. The models
(see ``docs/workloads.md`` for every number and where it comes from):

* :func:`kernel_build` -- ``make -jN bzImage`` of a 2.6.11 tree: per compiled
  file a ``sh``/``gcc``/``cc1``/``as``/``fixdep`` process group with its kernel
  stack, page tables, slab and anonymous memory; page cache for sources,
  headers and objects; dentries, inodes and buffer heads; optionally the
  ``cp -a`` of the tree that precedes the build in Mel's script.
* :func:`updatedb` -- a walk of the whole filesystem that fills the dentry and
  inode caches (and the block-device page cache with inode tables and
  directory blocks).
* :func:`system` -- the machine's long-lived processes (init, daemons, a
  shell, an X server, the benchmark's shell and monitor) and the test module's
  buffers, none of which exits.
* :func:`resident` -- the long-lived processes' working memory on a machine
  without swap: movable pages reclaim cannot take, faulted again page by page
  through the run (``TF_UNEVICTABLE``).
* :func:`combine` -- several loads at once; :func:`stress_highalloc_load` is
  the benchmark's load (``updatedb`` plus 7 concurrent ``make -j4``).
* :func:`inject_leak` -- adds a page-level leak to any trace (:mod:`kmm.trace`).

Traces are deterministic for a seed and identical whether produced at once or
in chunks whose boundaries fall on the 1 ms tick grid (:meth:`Load.chunks`).
Simulated time advances with ``OP_TICK`` records of at most 1 ms; the
operations of each millisecond come before its tick.

One module per part of the model: :mod:`~kmm.workloads.kinds` (allocation
kinds and their GFP masks), :mod:`~kmm.workloads.params` (the model's
numbers), :mod:`~kmm.workloads.tree` (the source tree), :mod:`~kmm.workloads.events`
(events and windows), :mod:`~kmm.workloads.context` (object ids and caches
shared by a load), :mod:`~kmm.workloads.process` (a process's memory),
:mod:`~kmm.workloads.source` (the source interface), :mod:`~kmm.workloads.build`
and :mod:`~kmm.workloads.walk` (the two sources), :mod:`~kmm.workloads.load`
(merging and emission) and :mod:`~kmm.workloads.stress` (the benchmark's load).
"""

from __future__ import annotations

from ..trace import inject_leak
from .build import kernel_build
from .events import MS  # noqa: F401 (public before the split, not in __all__)
from .kinds import KIND_GFP, KINDS
from .load import Load, combine
from .params import PAGE, PROGRAMS  # noqa: F401 (public before the split, not in __all__)
from .resident import resident
from .stress import copies_done_s, load_for_memory, stress_highalloc_load
from .system import system
from .thp import fio_writers, thp_workers
from .tree import TreeLayout, kernel_tree
from .walk import updatedb

__all__ = [
    "fio_writers",
    "thp_workers",
    "KINDS",
    "KIND_GFP",
    "Load",
    "TreeLayout",
    "combine",
    "copies_done_s",
    "inject_leak",
    "kernel_build",
    "kernel_tree",
    "load_for_memory",
    "resident",
    "stress_highalloc_load",
    "system",
    "updatedb",
]
