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
* :func:`combine` -- several loads at once; :func:`stress_highalloc_load` is
  the benchmark's load (``updatedb`` plus 7 concurrent ``make -j4``).
* :func:`inject_leak` -- adds a page-level leak to any trace.

Traces are deterministic for a seed and identical whether produced at once or
in chunks whose boundaries fall on the 1 ms tick grid (:meth:`Load.chunks`).
Simulated time advances with ``OP_TICK`` records of at most 1 ms; the
operations of each millisecond come before its tick.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import gfp as _gfp
from .errors import ConfigError, TraceError
from .machine import MAX_ORDER, OP_ALLOC, OP_FREE, OP_TICK, OP_TOUCH, TRACE_DTYPE

__all__ = [
    "KINDS",
    "KIND_GFP",
    "Load",
    "TreeLayout",
    "combine",
    "inject_leak",
    "kernel_build",
    "kernel_tree",
    "stress_highalloc_load",
    "updatedb",
]

# ---------------------------------------------------------------------------
# allocation kinds: what each allocation is, and the GFP mask the 2005 kernel
# (with Mel Gorman's v7 flags) used for it

#: Every kind of allocation a load emits; ``stacks`` maps these names to
#: page_owner stack handles.
KINDS: tuple[str, ...] = (
    "anon_fault",
    "pagecache_read",
    "pagecache_write",
    "dentry",
    "inode",
    "buffer_head",
    "page_table",
    "task_struct",
    "slab_other",
    "leak",
)
_K = {name: i for i, name in enumerate(KINDS)}
# block-device page cache (inode tables, directory blocks) is GFP_USER: bdget()
# sets the mapping's mask to GFP_USER, regular files use GFP_HIGHUSER on i386
_K_BDEV = len(KINDS)  # internal kind: a pagecache_read of a block-device page

_KERNRCLM = _gfp.GFP_KERNEL | _gfp.GFP_FLAGS["__GFP_KERNRCLM"]
#: The GFP mask of each kind (2.6.11 i386 with Mel Gorman's v7 flags).
KIND_GFP: dict[str, int] = {
    "anon_fault": _gfp.GFP_HIGHUSER,  # do_anonymous_page: alloc_page(GFP_HIGHUSER)
    "pagecache_read": _gfp.GFP_HIGHUSER,  # regular-file mapping mask on i386
    "pagecache_write": _gfp.GFP_HIGHUSER,
    "dentry": _KERNRCLM,  # dentry_cache is KernRclm in the v7 patch
    "inode": _KERNRCLM,  # ext3_inode_cache
    "buffer_head": _KERNRCLM,  # buffer_head cache
    "page_table": _gfp.GFP_KERNEL,  # pte_alloc_one without CONFIG_HIGHPTE, pgd
    "task_struct": _gfp.GFP_KERNEL,  # 8 KiB kernel stack + thread_info, order 1
    "slab_other": _gfp.GFP_KERNEL,  # task_struct, mm, vmas, files, signal slabs
    "leak": _gfp.GFP_KERNEL,
}
_KIND_GFP_ARR = np.array([KIND_GFP[k] for k in KINDS] + [_gfp.GFP_USER], dtype=np.uint32)

# internal op: a cache access, resolved at emission into OP_ALLOC (first access
# of that page) or OP_TOUCH (it is in the page cache / slab already)
_OP_ACCESS = 5

PAGE = 4096
MS = 1000  # microseconds
_WIN_US = 1_000_000  # generation window: 1 s of simulated time
_MAX_SPAN_S = 10_000.0  # longest run_until() in one call

# events before they become trace records
_EV = np.dtype(
    [
        ("t", "<i8"),
        ("op", "u1"),
        ("order", "u1"),
        ("kind", "u1"),
        ("proc", "u1"),  # 1 = owned by a process (freed when it exits / at stop())
        ("obj", "<u4"),
        ("pid", "<u4"),
    ]
)


def _events(
    t: Any, op: int, obj: Any, pid: Any, kind: Any, order: int = 0, proc: int = 1
) -> np.ndarray:
    t = np.asarray(t, dtype=np.int64)
    e = np.empty(t.shape[0], dtype=_EV)
    e["t"] = t
    e["op"] = op
    e["order"] = order
    e["kind"] = kind
    e["proc"] = proc
    e["obj"] = obj
    e["pid"] = pid
    return e


# ---------------------------------------------------------------------------
# the model's numbers (each explained in docs/workloads.md)

#: Programs: (text pages faulted in per exec, median anonymous pages).
PROGRAMS: dict[str, tuple[int, int]] = {
    "make": (40, 256),  # GNU make 3.80: ~160 KiB text; a kbuild sub-make ~1 MiB heap
    "sh": (100, 64),  # bash 2.05/3.0: ~600 KiB text, ~100 KiB used; 256 KiB dirty
    "gcc": (40, 80),  # the gcc driver: small, spawns cc1 and as
    "cc1": (700, 3072),  # gcc 3.3 cc1: 3.6 MB text; 12 MiB median heap at -O2
    "as": (200, 384),  # GNU as + libbfd; keeps the object's frags: ~1.5 MiB
    "fixdep": (5, 25),  # scripts/basic/fixdep: tiny
    "ld": (150, 256),  # binutils ld + libbfd; plus about its input size
    "cp": (20, 128),  # coreutils cp -a
    "updatedb": (20, 512),  # slocate / find + frcode
}
_LIBC_PAGES = 80  # of glibc's ~1.2 MiB text, the part a short-lived process faults in

_SLAB_PAGES_PER_TASK = 2  # task_struct, mm, ~25 vmas, files, signal, sighand: ~6.4 KiB
_PTES_PER_PGD_ENTRY = 1024  # i386 non-PAE: one PTE page maps 4 MiB
_DENTRIES_PER_PAGE = 29  # dentry 136 bytes (i386 2.6.11)
_INODES_PER_PAGE = 8  # ext3_inode_info ~ 500 bytes
_BH_PER_PAGE = 78  # buffer_head 52 bytes; one per 4 KiB block
_DISK_INODES_PER_PAGE = 32  # ext3 on-disk inode 128 bytes: an inode-table block


@dataclass(frozen=True)
class TreeLayout:
    """The files of a 2.6.11 source tree, as the model sees them.

    ``pages[f]``: page-cache pages of file ``f``; files ``0..units-1`` are the
    ``.c`` files a bzImage build compiles (in build order), the next
    ``headers`` files the headers they include (most popular first), the rest
    everything else (other architectures, unconfigured drivers, docs).
    ``walk_rank[f]``: position of ``f`` in a directory walk (``cp -a``, lookups).
    """

    pages: np.ndarray
    walk_rank: np.ndarray
    units: int
    headers: int
    dir_units: np.ndarray  # compiled files per directory, in build order

    @property
    def files(self) -> int:
        return int(self.pages.shape[0])

    @property
    def nr_pages(self) -> int:
        return int(self.pages.sum())

    @property
    def bytes(self) -> int:
        return self.nr_pages * PAGE


def kernel_tree(
    *,
    seed: int = 0,
    files: int = 17_000,
    median_file_kib: float = 7.0,
    file_sigma: float = 1.1,
    units: int = 1_300,
    headers: int = 1_800,
    files_per_dir: float = 12.0,
) -> TreeLayout:
    """The layout of a 2.6.11 tree: ~17,000 files, ~240 MiB of page cache.

    File sizes are log-normal (median ``median_file_kib``, sigma ``file_sigma``);
    ``units`` ``.c`` files are compiled by a bzImage build, in directories of
    about ``files_per_dir`` files.
    """
    files = _int_arg("files", files, 1, 10_000_000)
    units = _int_arg("units", units, 1, files)
    headers = _int_arg("headers", headers, 0, files - units)
    median_file_kib = _float_arg("median_file_kib", median_file_kib, 0.01, 1e6)
    file_sigma = _float_arg("file_sigma", file_sigma, 0.0, 5.0)
    files_per_dir = _float_arg("files_per_dir", files_per_dir, 1.0, 1e6)
    rng = np.random.default_rng([_seed_arg(seed), 0x7EE])
    size = median_file_kib * 1024 * np.exp(file_sigma * rng.standard_normal(files))
    pages = np.maximum(1, np.ceil(size / PAGE)).astype(np.int64)
    walk_rank = np.argsort(rng.permutation(files)).astype(np.int64)
    dirs = []
    left = units
    while left > 0:
        n = int(min(left, rng.geometric(1.0 / files_per_dir)))
        dirs.append(n)
        left -= n
    return TreeLayout(pages, walk_rank, units, headers, np.array(dirs, dtype=np.int64))


# ---------------------------------------------------------------------------
# shared state of a load: object ids, pids, files in the page cache


class _Ids:
    """Object ids: permanent ranges for caches, recycled blocks for processes."""

    def __init__(self) -> None:
        self.top = 0  # ids below are in use or on a free list
        self.free: dict[int, list[int]] = {}  # size class (log2) -> heap of bases
        self.pending: list[tuple[int, int, int, int]] = []  # (end_us, seq, base, cls)
        self.seq = 0

    def permanent(self, n: int) -> int:
        base = self.top
        self.top += int(n)
        return base

    def block(self, n: int, end_us: int) -> int:
        """A block of ``n`` ids, returned to the pool once time passes ``end_us``."""
        cls = max(0, int(n - 1).bit_length())
        heap = self.free.get(cls)
        if heap:
            base = heapq.heappop(heap)
        else:
            base = self.top
            self.top += 1 << cls
        heapq.heappush(self.pending, (int(end_us), self.seq, base, cls))
        self.seq += 1
        return base

    def release_before(self, t_us: int) -> None:
        while self.pending and self.pending[0][0] < t_us:
            _, _, base, cls = heapq.heappop(self.pending)
            heapq.heappush(self.free.setdefault(cls, []), base)


class _Ctx:
    """Everything the sources of one load share."""

    def __init__(self, stack_table: np.ndarray) -> None:
        self.ids = _Ids()
        self.next_pid = 1000
        self.stack_table = stack_table
        self.text: dict[str, np.ndarray] = {}  # program -> ids of its text pages
        self.trees: dict[str, _TreeCache] = {}

    def pids(self, n: int) -> np.ndarray:
        p = np.arange(self.next_pid, self.next_pid + n, dtype=np.uint32)
        self.next_pid += n
        return p

    def text_pages(self, prog: str) -> np.ndarray:
        """Page-cache ids of a program's text plus the part of libc it uses."""
        if "libc" not in self.text:
            self.text["libc"] = self.ids.permanent(_LIBC_PAGES) + np.arange(_LIBC_PAGES)
        if prog not in self.text:
            n = PROGRAMS[prog][0]
            own = self.ids.permanent(n) + np.arange(n)
            self.text[prog] = np.concatenate([own, self.text["libc"]]).astype(np.uint32)
        return self.text[prog]

    def tree(self, name: str, layout: TreeLayout) -> _TreeCache:
        t = self.trees.get(name)
        if t is None:
            t = self.trees[name] = _TreeCache(self.ids, layout)
        elif t.layout is not layout:
            raise ConfigError(f"two loads use the tree {name!r} with different layouts")
        return t


class _TreeCache:
    """Page-cache, dentry and inode ids of one tree instance on disk."""

    def __init__(self, ids: _Ids, layout: TreeLayout) -> None:
        self.layout = layout
        n = layout.nr_pages
        self.page_base = ids.permanent(n)
        self.file_off = np.concatenate([[0], np.cumsum(layout.pages)[:-1]]) + self.page_base
        nd = -(-layout.files // _DENTRIES_PER_PAGE)
        ni = -(-layout.files // _INODES_PER_PAGE)
        self.dentry_base = ids.permanent(nd)
        self.inode_base = ids.permanent(ni)

    def file_pages(self, files: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(page ids, index into ``files`` of each page) of the given files."""
        npg = self.layout.pages[files]
        which = np.repeat(np.arange(files.shape[0]), npg)
        first = np.cumsum(npg) - npg
        pages = self.file_off[files][which] + (np.arange(which.shape[0]) - first[which])
        return pages.astype(np.uint32), which

    def dentry_page(self, files: np.ndarray) -> np.ndarray:
        return (self.dentry_base + self.layout.walk_rank[files] // _DENTRIES_PER_PAGE).astype(
            np.uint32
        )

    def inode_page(self, files: np.ndarray) -> np.ndarray:
        return (self.inode_base + self.layout.walk_rank[files] // _INODES_PER_PAGE).astype(
            np.uint32
        )


class _SlabFill:
    """Objects created into fresh slab pages: a new page every ``per_page`` objects."""

    def __init__(self, kind: int, per_page: int) -> None:
        self.kind = kind
        self.per_page = per_page
        self.count = 0

    def add(self, ctx: _Ctx, t: np.ndarray, pid: np.ndarray) -> np.ndarray:
        """Objects created at times ``t`` (sorted or not) by ``pid``: the slab-page events."""
        n = t.shape[0]
        if n == 0:
            return np.empty(0, _EV)
        idx = self.count + np.arange(n)
        new = np.nonzero(idx % self.per_page == 0)[0]
        self.count += n
        if new.shape[0] == 0:
            return np.empty(0, _EV)
        base = ctx.ids.permanent(new.shape[0])
        return _events(
            t[new], OP_ALLOC, base + np.arange(new.shape[0]), pid[new], self.kind, proc=0
        )


# ---------------------------------------------------------------------------
# processes


def _processes(
    ctx: _Ctx,
    rng: np.random.Generator,
    prog: Sequence[str],
    start: np.ndarray,
    end: np.ndarray,
    anon: np.ndarray,
    pid: np.ndarray,
    *,
    touch_interval_us: float,
    short_frac: float,
    own_slab: bool = True,
) -> list[np.ndarray]:
    """Events of ``P`` processes: exec, grow, touch, exit.

    Each process has an order-1 kernel stack, a pgd and PTE pages, (with
    ``own_slab``) its slab pages, ``anon[p]`` anonymous pages faulted in over
    the first 90 % of its life (a ``short_frac`` of them freed early, the rest
    at exit), touches of those pages about every ``touch_interval_us``, and
    accesses to its program's text in the page cache at exec.
    """
    P = start.shape[0]
    if P == 0:
        return []
    start = start.astype(np.int64)
    end = np.maximum(end.astype(np.int64), start + 10)
    life = end - start
    grow_end = start + (life * 9) // 10
    anon = anon.astype(np.int64)
    n_pte = 2 + -(-anon // _PTES_PER_PGD_ENTRY)
    n_slab = np.full(P, _SLAB_PAGES_PER_TASK if own_slab else 0, dtype=np.int64)
    size = 2 + n_pte + n_slab + anon
    base = np.array([ctx.ids.block(int(size[p]), int(end[p])) for p in range(P)], dtype=np.int64)
    k_task, k_pt, k_slab, k_anon = (
        _K["task_struct"],
        _K["page_table"],
        _K["slab_other"],
        _K["anon_fault"],
    )
    out = []
    # task: kernel stack (order 1) and pgd
    out.append(_events(start, OP_ALLOC, base, pid, k_task, order=1))
    out.append(_events(start, OP_ALLOC, base + 1, pid, k_pt))
    # PTE pages: two at exec (text/libs, stack), the rest as the heap grows
    r = np.repeat(np.arange(P), n_pte)
    j = np.arange(r.shape[0]) - np.repeat(np.cumsum(n_pte) - n_pte, n_pte)
    t_pte = np.where(
        j < 2,
        start[r],
        start[r] + (rng.random(r.shape[0]) * (grow_end - start)[r]).astype(np.int64),
    )
    pte_ids = base[r] + 2 + j
    out.append(_events(t_pte, OP_ALLOC, pte_ids, pid[r], k_pt))
    if own_slab:
        rs = np.repeat(np.arange(P), n_slab)
        js = np.arange(rs.shape[0]) - np.repeat(np.cumsum(n_slab) - n_slab, n_slab)
        slab_ids = base[rs] + 2 + n_pte[rs] + js
        out.append(_events(start[rs], OP_ALLOC, slab_ids, pid[rs], k_slab))
    # text pages in the page cache
    for name in sorted(set(prog)):
        sel = np.nonzero(np.array([p == name for p in prog]))[0]
        pages = ctx.text_pages(name)
        rr = np.repeat(sel, pages.shape[0])
        tt = start[rr] + (rng.random(rr.shape[0]) * (life[rr] // 5)).astype(np.int64)
        out.append(
            _events(
                tt, _OP_ACCESS, np.tile(pages, sel.shape[0]), pid[rr], _K["pagecache_read"], proc=0
            )
        )
    # anonymous memory
    ra = np.repeat(np.arange(P), anon)
    ja = np.arange(ra.shape[0]) - np.repeat(np.cumsum(anon) - anon, anon)
    anon_ids = base[ra] + 2 + n_pte[ra] + n_slab[ra] + ja
    t_alloc = start[ra] + (rng.random(ra.shape[0]) * (grow_end - start)[ra]).astype(np.int64)
    t_free = end[ra].copy()
    short = rng.random(ra.shape[0]) < short_frac
    if short.any():
        early = t_alloc[short] + rng.exponential(1.0, short.sum()) * (life[ra][short] / 10)
        t_free[short] = np.minimum(early.astype(np.int64), t_free[short])
    out.append(_events(t_alloc, OP_ALLOC, anon_ids, pid[ra], k_anon))
    n_touch = rng.poisson((t_free - t_alloc) / touch_interval_us)
    rt = np.repeat(np.arange(ra.shape[0]), n_touch)
    tt = t_alloc[rt] + (rng.random(rt.shape[0]) * (t_free - t_alloc)[rt]).astype(np.int64)
    out.append(_events(tt, OP_TOUCH, anon_ids[rt], pid[ra][rt], k_anon))
    # exit: anon, page tables, slab, then the task
    out.append(_events(t_free, OP_FREE, anon_ids, pid[ra], k_anon))
    out.append(_events(end[r], OP_FREE, pte_ids, pid[r], k_pt))
    out.append(_events(end, OP_FREE, base + 1, pid, k_pt))
    if own_slab:
        out.append(_events(end[rs], OP_FREE, slab_ids, pid[rs], k_slab))
    out.append(_events(end, OP_FREE, base, pid, k_task, order=1))
    return out


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


# ---------------------------------------------------------------------------
# sources: each produces the events of one window of simulated time


class _Source:
    """A generator of events, one window of simulated time at a time."""

    seed: int
    stream: int

    def bind(self, ctx: _Ctx) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def generate(self, ctx: _Ctx, w: int) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _rng(self, w: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.stream, w])


_HORIZON_US = 60_000 * 1_000_000  # a process's events are generated when it starts


def _check_horizon(what: str, span_us: int) -> None:
    if span_us > _HORIZON_US:
        raise ConfigError(
            f"{what} would run for {span_us / 1e6:.0f} s of simulated time; "
            f"the generator handles at most {_HORIZON_US // 1_000_000} s (give it more CPUs "
            "or a faster rate)"
        )


def _window(t_us: np.ndarray, w: int) -> np.ndarray:
    return np.nonzero((t_us >= w * _WIN_US) & (t_us < (w + 1) * _WIN_US))[0]


class _BuildSource(_Source):
    """``make -jN bzImage`` in a tree, optionally after ``cp -a`` of it."""

    def __init__(
        self,
        *,
        jobs: int,
        seed: int,
        layout: TreeLayout,
        tree: str,
        copy_from: str | None,
        start_us: int,
        cpu_share: Sequence[tuple[float, float]],
        cpu_median_s: float,
        cpu_sigma: float,
        cc1_median_pages: float,
        cc1_sigma: float,
        copy_mb_s: float,
        touch_interval_s: float,
        short_frac: float,
        header_core: float,
        stream: int,
    ) -> None:
        self.jobs = jobs
        self.seed = seed
        self.layout = layout
        self.tree_name = tree
        self.copy_from = copy_from
        self.start_us = start_us
        self.cpu_share = cpu_share
        self.touch_us = touch_interval_s * 1e6
        self.short_frac = short_frac
        self.stream = stream
        self.copy_mb_s = copy_mb_s
        rng = np.random.default_rng([seed, stream, 0x5C4ED])
        L = layout
        # cp -a: files in walk order at the disk's streaming rate
        self.copy_t = np.empty(0, np.int64)
        self.copy_files = np.empty(0, np.int64)
        t0 = start_us
        if copy_from is not None:
            order = np.argsort(L.walk_rank)
            done = np.cumsum(L.pages[order]) * PAGE
            self.copy_files = order
            self.copy_t = t0 + ((done - L.pages[order] * PAGE) / (copy_mb_s * 1e6) * 1e6).astype(
                np.int64
            )
            t0 = start_us + math.ceil(done[-1] / (copy_mb_s * 1e6) * 1e6)
        self.copy_end = t0
        self.make_start = t0
        # compile units: CPU time and cc1 heap correlated (big files cost both)
        n = L.units
        z = rng.standard_normal(n)
        z2 = 0.7 * z + math.sqrt(1 - 0.49) * rng.standard_normal(n)
        self.cpu_us = cpu_median_s * 1e6 * np.exp(cpu_sigma * z2)
        self.cc1_pages = np.maximum(64, cc1_median_pages * np.exp(cc1_sigma * z)).astype(np.int64)
        self.obj_pages = np.maximum(1, np.ceil(_lognormal(rng, 12 * 1024, 0.9, n) / PAGE)).astype(
            np.int64
        )
        # headers each unit includes: p = min(1, core / rank) (~150 headers a unit)
        self.hdr_p = np.minimum(1.0, header_core / (np.arange(L.headers) + 1.0))
        # the jobserver: `jobs` slots take units in build order
        start = np.empty(n, np.int64)
        end = np.empty(n, np.int64)
        slots = [(t0 + 50_000, s) for s in range(jobs)]  # make reads Makefiles first
        heapq.heapify(slots)
        for u in range(n):
            t, s = heapq.heappop(slots)
            share = self._share(t)
            dur = int(self.cpu_us[u] / min(1.0, share / jobs)) + 2_000
            start[u], end[u] = t, t + dur
            heapq.heappush(slots, (t + dur + 1_000, s))
        self.u_start, self.u_end = start, end
        # directory sub-makes cover consecutive units
        d_first = np.concatenate([[0], np.cumsum(L.dir_units)[:-1]])
        d_last = d_first + L.dir_units - 1
        self.d_first, self.d_last = d_first, d_last
        self.d_start = start[d_first] - 20_000
        # then `ld -r` links the directory's objects into built-in.o
        self.ld_start = np.maximum.reduceat(end, d_first) + 5_000
        ld_cpu = 0.03e6 + 0.005e6 * L.dir_units
        self.ld_end = self.ld_start + np.array(
            [int(c / min(1.0, self._share(int(t)) / jobs)) for c, t in zip(ld_cpu, self.ld_start)],
            dtype=np.int64,
        )
        self.d_end = self.ld_end + 20_000
        self.u_out_base = np.zeros(n, np.int64)  # page-cache ids of each unit's .o and .cmd
        self.make_end = int(self.d_end.max()) + 100_000
        _check_horizon("the build", self.make_end - start_us)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "kernel_build",
            "tree": self.tree_name,
            "jobs": self.jobs,
            "seed": self.seed,
            "copy_from": self.copy_from,
            "copy_start_s": self.start_us / 1e6 if self.copy_from else None,
            "make_start_s": self.make_start / 1e6,
            "make_end_s": self.make_end / 1e6,
            "units": int(self.u_start.shape[0]),
            "directories": int(self.d_start.shape[0]),
        }

    def _share(self, t_us: int) -> float:
        share = self.cpu_share[0][1]
        for t, s in self.cpu_share:
            if t * 1e6 <= t_us:
                share = s
        return share

    def bind(self, ctx: _Ctx) -> None:
        self.tree = ctx.tree(self.tree_name, self.layout)
        self.src = ctx.tree(self.copy_from, self.layout) if self.copy_from else None
        self.dentries = _SlabFill(_K["dentry"], _DENTRIES_PER_PAGE)
        self.inodes = _SlabFill(_K["inode"], _INODES_PER_PAGE)
        self.bhs = _SlabFill(_K["buffer_head"], _BH_PER_PAGE)
        self.make_pid = 0
        self.cp_pid = 0

    def generate(self, ctx: _Ctx, w: int) -> list[np.ndarray]:
        rng = self._rng(w)
        out: list[np.ndarray] = []
        lo, hi = w * _WIN_US, (w + 1) * _WIN_US
        kw = {"touch_interval_us": self.touch_us, "short_frac": self.short_frac}
        # cp -a of the tree
        if self.src is not None and lo <= self.start_us < hi:
            self.cp_pid = int(ctx.pids(1)[0])
            out += _processes(
                ctx,
                rng,
                ["cp"],
                np.array([self.start_us]),
                np.array([self.copy_end]),
                np.array([PROGRAMS["cp"][1]]),
                np.array([self.cp_pid]),
                **kw,
            )
        if self.src is not None:
            sel = _window(self.copy_t, w)
            if sel.shape[0]:
                out += self._copy(ctx, self.copy_files[sel], self.copy_t[sel])
        # the top-level make lives for the whole build
        if lo <= self.make_start < hi:
            self.make_pid = int(ctx.pids(1)[0])
            anon = int(PROGRAMS["make"][1] * 3)  # parses the top Makefile, .config, kbuild
            out += _processes(
                ctx,
                rng,
                ["make"],
                np.array([self.make_start]),
                np.array([self.make_end]),
                np.array([anon]),
                np.array([self.make_pid]),
                **kw,
            )
        # directory sub-makes (they hold their children's slab pages)
        sel = _window(self.d_start, w)
        for d in sel:
            out += self._directory(ctx, rng, int(d))
        # compile units starting in this window
        sel = _window(self.u_start, w)
        if sel.shape[0]:
            out += self._units(ctx, rng, sel)
        return out

    def _copy(self, ctx: _Ctx, files: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
        """cp -a: read the source file (page cache), create and write the copy."""
        assert self.src is not None
        pid = self.cp_pid
        out = []
        sp, which = self.src.file_pages(files)
        out.append(_events(t[which], _OP_ACCESS, sp, pid, _K["pagecache_read"], proc=0))
        out.append(_events(t, _OP_ACCESS, self.src.dentry_page(files), pid, _K["dentry"], proc=0))
        out.append(_events(t, _OP_ACCESS, self.src.inode_page(files), pid, _K["inode"], proc=0))
        out.append(_events(t, _OP_ACCESS, self.tree.dentry_page(files), pid, _K["dentry"], proc=0))
        out.append(_events(t, _OP_ACCESS, self.tree.inode_page(files), pid, _K["inode"], proc=0))
        dp, which = self.tree.file_pages(files)
        tw = t[which] + 100
        out.append(_events(tw, _OP_ACCESS, dp, pid, _K["pagecache_write"], proc=0))
        out.append(self.bhs.add(ctx, tw, np.full(tw.shape[0], pid, np.uint32)))
        return out

    def _directory(self, ctx: _Ctx, rng: np.random.Generator, d: int) -> list[np.ndarray]:
        """A kbuild sub-make for one directory; the slab pages of its children's
        tasks stay until it exits (a slab page lives until its objects are gone)."""
        pid = ctx.pids(1)
        s, e = int(self.d_start[d]), int(self.d_end[d])
        anon = np.maximum(16, _lognormal(rng, PROGRAMS["make"][1], 0.3, 1)).astype(np.int64)
        out = _processes(
            ctx,
            rng,
            ["make"],
            np.array([s]),
            np.array([e]),
            anon,
            pid,
            touch_interval_us=self.touch_us,
            short_frac=self.short_frac,
        )
        units = np.arange(self.d_first[d], self.d_last[d] + 1)
        # the page cache the units will write: each unit's .o, then its .cmd
        npg = self.obj_pages[units] + 2
        obase = ctx.ids.permanent(int(npg.sum()))
        self.u_out_base[units] = obase + np.cumsum(npg) - npg
        # ld -r: reads every .o, writes built-in.o (about their total size)
        ld_pid = ctx.pids(1)
        ls, le = int(self.ld_start[d]), int(self.ld_end[d])
        in_pages = int(self.obj_pages[units].sum())
        out += _processes(
            ctx,
            rng,
            ["ld"],
            np.array([ls]),
            np.array([le]),
            np.array([PROGRAMS["ld"][1] + in_pages]),
            ld_pid,
            touch_interval_us=self.touch_us,
            short_frac=self.short_frac,
        )
        objs = np.concatenate([self.u_out_base[u] + np.arange(self.obj_pages[u]) for u in units])
        read_end = ls + (le - ls) // 2
        tr = ls + (rng.random(objs.shape[0]) * (read_end - ls)).astype(np.int64)
        out.append(_events(tr, _OP_ACCESS, objs, ld_pid[0], _K["pagecache_read"], proc=0))
        bi = ctx.ids.permanent(in_pages)
        tw = np.sort(read_end + (rng.random(in_pages) * (le - 1_000 - read_end)).astype(np.int64))
        pids = np.full(in_pages, ld_pid[0], np.uint32)
        out.append(
            _events(
                tw, OP_ALLOC, bi + np.arange(in_pages), ld_pid[0], _K["pagecache_write"], proc=0
            )
        )
        out.append(self.bhs.add(ctx, tw, pids))
        out.append(self.dentries.add(ctx, tw[-1:], pids[-1:]))
        out.append(self.inodes.add(ctx, tw[-1:], pids[-1:]))
        n = units.shape[0] * 5 * _SLAB_PAGES_PER_TASK
        base = ctx.ids.block(n, e)
        t = np.repeat(self.u_start[units], 5 * _SLAB_PAGES_PER_TASK)
        ids = base + np.arange(n)
        out.append(_events(t, OP_ALLOC, ids, pid[0], _K["slab_other"]))
        out.append(_events(np.full(n, e), OP_FREE, ids, pid[0], _K["slab_other"]))
        return out

    def _units(self, ctx: _Ctx, rng: np.random.Generator, units: np.ndarray) -> list[np.ndarray]:
        """Compile units: sh -c 'gcc ... ; fixdep ...' with cc1 | as underneath."""
        U = units.shape[0]
        s = self.u_start[units]
        d = self.u_end[units] - s
        progs = ["sh", "gcc", "cc1", "as", "fixdep"]
        frac = np.array([[0.0, 1.0], [0.01, 0.97], [0.02, 0.85], [0.03, 0.92], [0.93, 0.99]])
        st = (s[:, None] + d[:, None] * frac[None, :, 0]).astype(np.int64).ravel()
        en = (s[:, None] + d[:, None] * frac[None, :, 1]).astype(np.int64).ravel()
        pid = ctx.pids(U * 5)
        anon = np.empty((U, 5), np.int64)
        for i, p in enumerate(progs):
            anon[:, i] = np.maximum(8, _lognormal(rng, PROGRAMS[p][1], 0.3, U))
        anon[:, 2] = self.cc1_pages[units]
        out = _processes(
            ctx,
            rng,
            progs * U,
            st,
            en,
            anon.ravel(),
            pid,
            touch_interval_us=self.touch_us,
            short_frac=self.short_frac,
            own_slab=False,
        )
        prog_of = np.tile(np.arange(5), U)
        cc1 = np.nonzero(prog_of == 2)[0]
        cc1_pid, cc1_s, cc1_e = pid[cc1], st[cc1], en[cc1]
        # cpp in cc1 reads the .c file and the headers it includes
        inc = rng.random((U, self.layout.headers)) < self.hdr_p[None, :]
        uu, hh = np.nonzero(inc)
        files = np.concatenate([units, self.layout.units + hh])
        fu = np.concatenate([np.arange(U), uu])
        pre = (cc1_e - cc1_s) * 3 // 10
        tf = cc1_s[fu] + (rng.random(fu.shape[0]) * pre[fu]).astype(np.int64)
        out.append(
            _events(tf, _OP_ACCESS, self.tree.dentry_page(files), cc1_pid[fu], _K["dentry"], proc=0)
        )
        out.append(
            _events(tf, _OP_ACCESS, self.tree.inode_page(files), cc1_pid[fu], _K["inode"], proc=0)
        )
        pages, which = self.tree.file_pages(files)
        out.append(
            _events(
                tf[which] + 1, _OP_ACCESS, pages, cc1_pid[fu][which], _K["pagecache_read"], proc=0
            )
        )
        # as writes the .o, fixdep writes the .cmd (2 pages of dependency list)
        as_i = np.nonzero(prog_of == 3)[0]
        fx_i = np.nonzero(prog_of == 4)[0]
        npg = np.stack([self.obj_pages[units], np.full(U, 2)], axis=1).ravel()
        t_w = np.stack([en[as_i] - 1_000, en[fx_i] - 500], axis=1).ravel()
        p_w = np.stack([pid[as_i], pid[fx_i]], axis=1).ravel()
        rw = np.repeat(np.arange(npg.shape[0]), npg)
        tw = t_w[rw]
        ids = self.u_out_base[units].repeat(npg.reshape(U, 2).sum(axis=1)) + (
            np.arange(rw.shape[0])
            - np.repeat(
                np.cumsum(npg.reshape(U, 2).sum(axis=1)) - npg.reshape(U, 2).sum(axis=1),
                npg.reshape(U, 2).sum(axis=1),
            )
        )
        out.append(_events(tw, OP_ALLOC, ids, p_w[rw], _K["pagecache_write"], proc=0))
        out.append(self.bhs.add(ctx, tw, p_w[rw]))
        # new files: .o, .cmd, and the .d that fixdep reads and deletes
        tn = np.concatenate([t_w, en[fx_i] - 400])
        pn = np.concatenate([p_w, pid[fx_i]])
        out.append(self.dentries.add(ctx, tn, pn))
        out.append(self.inodes.add(ctx, tn, pn))
        return out


class _UpdatedbSource(_Source):
    """updatedb: lstat() every file of the filesystem, then write the database."""

    def __init__(
        self,
        *,
        seed: int,
        files: int,
        files_per_s: float,
        files_per_dir: float,
        start_us: int,
        touch_interval_s: float,
        stream: int,
    ) -> None:
        self.seed = seed
        self.stream = stream
        self.files = files
        self.start_us = start_us
        self.files_per_dir = files_per_dir
        self.walk_end = start_us + int(files / files_per_s * 1e6)
        self.db_pages = max(1, -(-files * 16 // PAGE))  # ~16 bytes a path, front-coded
        self.end_us = self.walk_end + 500_000
        _check_horizon("updatedb", self.end_us - start_us)
        self.rate = files_per_s
        self.touch_us = touch_interval_s * 1e6

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "updatedb",
            "seed": self.seed,
            "files": self.files,
            "files_per_s": self.rate,
            "start_s": self.start_us / 1e6,
            "walk_end_s": self.walk_end / 1e6,
        }

    def bind(self, ctx: _Ctx) -> None:
        self.dentries = _SlabFill(_K["dentry"], _DENTRIES_PER_PAGE)
        self.inodes = _SlabFill(_K["inode"], _INODES_PER_PAGE)
        self.itable = _SlabFill(_K_BDEV, _DISK_INODES_PER_PAGE)  # inode-table blocks
        self.dirblk = _SlabFill(_K_BDEV, round(self.files_per_dir))  # one dir block a directory
        self.bhs = _SlabFill(_K["buffer_head"], _BH_PER_PAGE)
        self.pid = 0

    def generate(self, ctx: _Ctx, w: int) -> list[np.ndarray]:
        rng = self._rng(w)
        lo, hi = w * _WIN_US, (w + 1) * _WIN_US
        out: list[np.ndarray] = []
        if lo <= self.start_us < hi:
            self.pid = int(ctx.pids(1)[0])
            out += _processes(
                ctx,
                rng,
                ["updatedb"],
                np.array([self.start_us]),
                np.array([self.end_us]),
                np.array([PROGRAMS["updatedb"][1]]),
                np.array([self.pid]),
                touch_interval_us=self.touch_us,
                short_frac=0.0,
            )
        # files walked in this window
        a = max(lo, self.start_us)
        b = min(hi, self.walk_end)
        if a < b:
            f0 = math.ceil((a - self.start_us) * self.rate / 1e6)
            f1 = min(self.files, math.ceil((b - self.start_us) * self.rate / 1e6))
            if f1 > f0:
                f = np.arange(f0, f1)
                t = self.start_us + (f * 1e6 / self.rate).astype(np.int64)
                pid = np.full(f.shape[0], self.pid, np.uint32)
                for fill in (self.dirblk, self.itable):
                    ev = fill.add(ctx, t, pid)
                    out.append(ev)
                    out.append(self.bhs.add(ctx, ev["t"], ev["pid"]))
                out.append(self.dentries.add(ctx, t + 1, pid))
                out.append(self.inodes.add(ctx, t + 1, pid))
        if lo <= self.walk_end < hi:
            n = self.db_pages
            t = self.walk_end + np.sort(rng.integers(0, 400_000, n))
            base = ctx.ids.permanent(n)
            out.append(
                _events(t, OP_ALLOC, base + np.arange(n), self.pid, _K["pagecache_write"], proc=0)
            )
            out.append(self.bhs.add(ctx, t, np.full(n, self.pid, np.uint32)))
        return out


# ---------------------------------------------------------------------------
# the load


class Load:
    """A running workload that emits trace operations in simulated time.

    Produced by :func:`kernel_build`, :func:`updatedb`, :func:`combine` and
    :func:`stress_highalloc_load`. ``now`` is the simulated time (seconds)
    already emitted. Object ids are recycled (processes' ids return to a pool
    when they exit), so :attr:`peak_objects` stays far below ``max_objects``.
    """

    def __init__(self, sources: Sequence[_Source], stacks: Mapping[str, int] | None = None) -> None:
        self._sources = list(sources)
        self._stack_table = _stack_table(stacks)
        self._ctx: _Ctx | None = None
        self._now_us = 0
        self._gen_w = 0  # next window to generate
        self._buckets: dict[int, list[np.ndarray]] = {}
        self._ready_w = -1
        self._ready = np.empty(0, _EV)
        self._ready_slot = np.empty(0, np.int64)
        self._pos = 0  # first event of the ready window not yet emitted
        self._cache = np.zeros(1 << 16, dtype=bool)  # cache page allocated (first access done)
        self._live = np.zeros(1 << 16, dtype=bool)  # process object allocated now
        self._pid_of = np.zeros(1 << 16, dtype=np.uint32)
        self._stopped = False
        self._consumed = False
        self.ops = 0  #: trace records emitted so far

    # -- public API ------------------------------------------------------------

    @property
    def now(self) -> float:
        """Seconds of simulated time already emitted."""
        return self._now_us / 1e6

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def peak_objects(self) -> int:
        """One more than the highest object id this load has used so far."""
        return 0 if self._ctx is None else self._ctx.ids.top

    def live_process_objects(self) -> int:
        """Objects owned by processes that are allocated now (in trace terms)."""
        return int(self._live.sum())

    def describe(self) -> list[dict[str, Any]]:
        """What this load runs: one dict per build or updatedb (times in seconds)."""
        return [s.describe() for s in self._sources]

    def cache_objects(self) -> int:
        """Page-cache and slab-cache objects allocated so far (they stay: caches)."""
        return int(self._cache.sum())

    def run_until(self, t: float) -> np.ndarray:
        """The operations of simulated time (now, t]; their OP_TICKs add up to t - now.

        Ticks are at most 1 ms; the operations of each millisecond precede its
        tick. Raises :class:`kmm.TraceError` if ``t`` is before :attr:`now`.
        """
        self._check_usable()
        t_us = self._time_arg(t)
        parts = []
        while self._now_us < t_us:
            w = self._now_us // _WIN_US
            self._make_ready(w)
            seg_end = min(t_us, (w + 1) * _WIN_US)
            parts.append(self._emit(seg_end))
        out = _concat_trace(parts)
        self.ops += out.shape[0]
        return out

    def stop(self) -> np.ndarray:
        """Every build and process exits now: frees of everything processes own.

        Page cache and dentry/inode/buffer-head slab stay allocated (they are
        caches, left to reclaim). Later :meth:`run_until` calls emit only ticks.
        """
        self._check_usable()
        self._bind()
        self._stopped = True
        self._buckets.clear()
        self._ready = self._ready[:0]
        self._ready_slot = self._ready_slot[:0]
        self._pos = 0
        ids = np.nonzero(self._live)[0]
        out = np.zeros(ids.shape[0], TRACE_DTYPE)
        out["op"] = OP_FREE
        out["obj"] = ids
        out["pid"] = self._pid_of[ids]
        out["tgid"] = out["pid"]
        self._live[:] = False
        self.ops += out.shape[0]
        return out

    def chunks(self, until: float, chunk_s: float = 1.0) -> Iterator[np.ndarray]:
        """``run_until`` in steps of ``chunk_s`` seconds up to ``until``."""
        self._check_usable()
        chunk_s = _float_arg("chunk_s", chunk_s, 1e-3, _MAX_SPAN_S)
        until_us = self._time_arg(until)
        step = round(chunk_s * 1e6)
        while self._now_us < until_us:
            nxt = min(until_us, self._now_us + step)
            yield self.run_until(nxt / 1e6)

    def trace(self, until: float) -> np.ndarray:
        """Everything from :attr:`now` up to ``until`` in one array."""
        return self.run_until(until)

    def __repr__(self) -> str:
        return (
            f"<kmm.workloads.Load sources={len(self._sources)} now={self.now:.3f}s ops={self.ops}>"
        )

    # -- internals ---------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._consumed:
            raise ConfigError("this load was merged by combine(); use the combined load")

    def _time_arg(self, t: float) -> int:
        if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)):
            raise ConfigError(f"time must be a number of seconds, not {type(t).__name__}")
        if not math.isfinite(float(t)):
            raise ConfigError(f"time must be finite, got {t}")
        t_us = round(float(t) * 1e6)
        if t_us < self._now_us:
            raise TraceError(
                f"time cannot go backwards: asked for {t} s, the load is at {self.now} s"
            )
        if t_us - self._now_us > _MAX_SPAN_S * 1e6:
            raise ConfigError(
                f"cannot emit {t - self.now:.0f} s in one call "
                f"(at most {_MAX_SPAN_S:.0f} s; use chunks())"
            )
        return t_us

    def _bind(self) -> None:
        if self._ctx is None:
            self._ctx = _Ctx(self._stack_table)
            for s in self._sources:
                s.bind(self._ctx)

    def _make_ready(self, w: int) -> None:
        if self._ready_w == w:
            return
        self._bind()
        ctx = self._ctx
        assert ctx is not None
        while self._gen_w <= w:
            g = self._gen_w
            ctx.ids.release_before(g * _WIN_US)
            if not self._stopped:
                evs = [e for s in self._sources for e in s.generate(ctx, g) if e.shape[0]]
                if evs:
                    ev = np.concatenate(evs)
                    win = ev["t"] // _WIN_US - g
                    if win.min() < 0 or win.max() >= 1 << 16:
                        raise AssertionError("workload generated an event outside its horizon")
                    # stable radix sort on 16-bit keys: generation order kept per window
                    order = np.argsort(win.astype(np.uint16), kind="stable")
                    ev = np.take(ev, order)  # (np.take: 4x faster than ev[order] here)
                    counts = np.bincount(win, minlength=1)
                    ends = np.cumsum(counts)
                    for k in np.nonzero(counts)[0]:
                        part = ev[ends[k] - counts[k] : ends[k]]
                        self._buckets.setdefault(g + int(k), []).append(part)
            self._gen_w += 1
        parts = self._buckets.pop(w, [])
        ev = np.concatenate(parts) if parts else np.empty(0, _EV)
        # order by millisecond slot, keeping generation order inside a slot (an
        # object's alloc, touches and free are generated in that order)
        slot = (ev["t"] - w * _WIN_US) // MS
        order = np.argsort(slot.astype(np.uint16), kind="stable")
        self._ready = np.take(ev, order)
        self._ready_slot = slot[order] + w * (_WIN_US // MS)
        self._ready_w = w
        self._pos = 0
        self._grow(ctx.ids.top)

    def _grow(self, n: int) -> None:
        if n > self._cache.shape[0]:
            size = max(n, 2 * self._cache.shape[0])
            for name in ("_cache", "_live", "_pid_of"):
                a = getattr(self, name)
                b = np.zeros(size, a.dtype)
                b[: a.shape[0]] = a
                setattr(self, name, b)

    def _emit(self, seg_end: int) -> np.ndarray:
        """Emit from now to ``seg_end`` (within one window): ops, then 1 ms ticks."""
        now = self._now_us
        j0 = now // MS
        j_end = -(-seg_end // MS)  # slots j0..j_end-1 are reached
        stop_i = int(np.searchsorted(self._ready_slot, j_end, side="left"))
        ev = self._ready[self._pos : stop_i]
        slot = self._ready_slot[self._pos : stop_i]
        self._pos = stop_i
        ev = self._resolve(ev)
        nslots = j_end - j0
        counts = (
            np.bincount(slot - j0, minlength=nslots) if ev.shape[0] else np.zeros(nslots, np.int64)
        )
        tick_pos = np.cumsum(counts) + np.arange(nslots)
        n = ev.shape[0] + nslots
        out = np.zeros(n, TRACE_DTYPE)
        is_op = np.ones(n, dtype=bool)
        is_op[tick_pos] = False
        ticks = np.full(nslots, MS, dtype=np.int64)
        ticks[0] = min(seg_end, (j0 + 1) * MS) - now
        if nslots > 1:
            ticks[-1] = seg_end - (j_end - 1) * MS
        out["op"][tick_pos] = OP_TICK
        out["obj"][tick_pos] = ticks
        if ev.shape[0]:
            idx = np.nonzero(is_op)[0]
            kind = ev["kind"]
            out["op"][idx] = ev["op"]
            out["order"][idx] = ev["order"]
            out["obj"][idx] = ev["obj"]
            out["gfp"][idx] = _KIND_GFP_ARR[kind]
            out["stack"][idx] = self._stack_table[kind]
            out["pid"][idx] = ev["pid"]
            out["tgid"][idx] = ev["pid"]
        self._now_us = seg_end
        return out

    def _resolve(self, ev: np.ndarray) -> np.ndarray:
        """Cache accesses become OP_ALLOC (first) or OP_TOUCH; track process objects."""
        if ev.shape[0] == 0:
            return ev
        # direct cache allocations (new slab pages, written pages) come before
        # any access of the same page, by construction
        c = (ev["op"] == OP_ALLOC) & (ev["proc"] == 0)
        self._cache[ev["obj"][c]] = True
        acc = np.nonzero(ev["op"] == _OP_ACCESS)[0]
        if acc.shape[0]:
            objs = ev["obj"][acc]
            ev["op"][acc] = OP_TOUCH
            cand = np.nonzero(~self._cache[objs])[0]  # not in the cache yet
            if cand.shape[0]:
                _, first = np.unique(objs[cand], return_index=True)
                new = acc[cand[first]]  # the first access of each becomes the alloc
                ev["op"][new] = OP_ALLOC
                self._cache[ev["obj"][new]] = True
        a = (ev["op"] == OP_ALLOC) & (ev["proc"] == 1)
        self._live[ev["obj"][a]] = True
        self._pid_of[ev["obj"][a]] = ev["pid"][a]
        f = (ev["op"] == OP_FREE) & (ev["proc"] == 1)
        self._live[ev["obj"][f]] = False
        return ev


def _concat_trace(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate traces byte for byte (np.concatenate copies fields and leaves
    the two padding bytes of each record undefined)."""
    if not parts:
        return np.zeros(0, TRACE_DTYPE)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p.view(np.uint8) for p in parts]).view(TRACE_DTYPE)


# ---------------------------------------------------------------------------
# argument checking


def _int_arg(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise ConfigError(f"{name} must be an int in {lo}..{hi}, got {v!r}")
    return int(v)


def _float_arg(name: str, v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {v!r}")
    f = float(v)
    if not (math.isfinite(f) and lo <= f <= hi):
        raise ConfigError(f"{name} must be in {lo}..{hi}, got {v!r}")
    return f


def _seed_arg(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _stack_table(stacks: Mapping[str, int] | None) -> np.ndarray:
    """kind code -> page_owner stack handle (unknown keys are ignored, so one
    dict can serve several tools)."""
    table = np.zeros(len(KINDS) + 1, dtype=np.uint32)
    if stacks is None:
        return table
    if not isinstance(stacks, Mapping):
        raise ConfigError(
            f"stacks must be a mapping of kind name -> stack handle, not {type(stacks).__name__}"
        )
    for i, k in enumerate(KINDS):
        v = stacks.get(k, 0)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < 2**32:
            raise ConfigError(f"stack handle for {k!r} must be an int in 0..2**32-1, got {v!r}")
        table[i] = v
    table[_K_BDEV] = table[_K["pagecache_read"]]
    return table


# ---------------------------------------------------------------------------
# public constructors


def kernel_build(
    jobs: int = 4,
    *,
    seed: int = 0,
    stacks: Mapping[str, int] | None = None,
    start: float = 0.0,
    copy_tree: bool = False,
    tree: str = "linux-2.6.11",
    source_tree: str = "linux-2.6.11-orig",
    layout: TreeLayout | None = None,
    cpus: float = 2.0,
    cpu_share: Sequence[tuple[float, float]] | None = None,
    cpu_median_s: float = 0.35,
    cpu_sigma: float = 0.8,
    cc1_median_mib: float = 12.0,
    cc1_sigma: float = 0.5,
    copy_mb_s: float = 35.0,
    touch_interval_s: float = 2.0,
    short_frac: float = 0.25,
    header_core: float = 30.0,
) -> Load:
    """``make -j{jobs} bzImage`` of a 2.6.11 tree (optionally ``cp -a`` of it first).

    ``start``: when the build (or its copy) begins, seconds. ``copy_tree``: the
    build first copies ``source_tree`` into ``tree`` (as Mel's script does)
    at ``copy_mb_s``. ``cpus``: CPUs this build has to itself (or
    ``cpu_share``, a list of (from_second, cpus) steps); a compile's wall time is
    its CPU time divided by min(1, cpus / jobs). The other parameters are the
    model's numbers, explained in ``docs/workloads.md``.
    """
    jobs = _int_arg("jobs", jobs, 1, 1024)
    seed = _seed_arg(seed)
    start = _float_arg("start", start, 0.0, 1e6)
    cpus = _float_arg("cpus", cpus, 0.01, 4096)
    if cpu_share is None:
        cpu_share = [(0.0, cpus)]
    else:
        try:
            cpu_share = [
                (
                    _float_arg("cpu_share time", a, 0.0, 1e7),
                    _float_arg("cpu_share cpus", b, 0.01, 4096),
                )
                for a, b in cpu_share
            ]
        except (TypeError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"cpu_share must be a list of (seconds, cpus) pairs: {e}") from None
        if not cpu_share:
            raise ConfigError("cpu_share must not be empty")
        cpu_share = sorted(cpu_share)
    if not isinstance(tree, str) or not isinstance(source_tree, str) or tree == source_tree:
        raise ConfigError("tree and source_tree must be two different names")
    if layout is None:
        layout = kernel_tree(seed=seed)
    elif not isinstance(layout, TreeLayout):
        raise ConfigError("layout must be a TreeLayout (see kernel_tree())")
    src = _BuildSource(
        jobs=jobs,
        seed=seed,
        layout=layout,
        tree=tree,
        copy_from=source_tree if copy_tree else None,
        start_us=round(start * 1e6),
        cpu_share=cpu_share,
        cpu_median_s=_float_arg("cpu_median_s", cpu_median_s, 1e-4, 1e4),
        cpu_sigma=_float_arg("cpu_sigma", cpu_sigma, 0.0, 3.0),
        cc1_median_pages=_float_arg("cc1_median_mib", cc1_median_mib, 0.01, 4096) * 256,
        cc1_sigma=_float_arg("cc1_sigma", cc1_sigma, 0.0, 3.0),
        copy_mb_s=_float_arg("copy_mb_s", copy_mb_s, 0.01, 1e6),
        touch_interval_s=_float_arg("touch_interval_s", touch_interval_s, 1e-3, 1e6),
        short_frac=_float_arg("short_frac", short_frac, 0.0, 1.0),
        header_core=_float_arg("header_core", header_core, 0.0, 1e6),
        stream=_stream_of("build", tree),
    )
    return Load([src], stacks)


def _stream_of(kind: str, name: str) -> int:
    """A stable RNG stream number for a source (independent of combine order)."""
    h = 0
    for ch in f"{kind}:{name}":
        h = (h * 131 + ord(ch)) % (2**31 - 1)
    return h


def updatedb(
    *,
    seed: int = 0,
    stacks: Mapping[str, int] | None = None,
    start: float = 0.0,
    files: int = 250_000,
    files_per_s: float = 2_500.0,
    files_per_dir: float = 12.0,
    touch_interval_s: float = 2.0,
) -> Load:
    """``updatedb``: lstat() every one of ``files`` files at ``files_per_s``.

    Fills the dentry and inode slab caches (KernRclm), the block-device page
    cache with inode-table and directory blocks (GFP_USER) and buffer heads,
    then writes the locate database and exits.
    """
    src = _UpdatedbSource(
        seed=_seed_arg(seed),
        files=_int_arg("files", files, 1, 100_000_000),
        files_per_s=_float_arg("files_per_s", files_per_s, 1.0, 1e8),
        files_per_dir=_float_arg("files_per_dir", files_per_dir, 1.0, 1e5),
        start_us=round(_float_arg("start", start, 0.0, 1e6) * 1e6),
        touch_interval_s=_float_arg("touch_interval_s", touch_interval_s, 1e-3, 1e6),
        stream=_stream_of("updatedb", ""),
    )
    return Load([src], stacks)


def combine(*loads: Load, stacks: Mapping[str, int] | None = None) -> Load:
    """Run several fresh loads at once: merged by time, disjoint object ids and pids.

    The loads given are consumed (using them afterwards raises
    :class:`kmm.ConfigError`). ``stacks`` (default: the first load's) applies to all.
    """
    if not loads:
        raise ConfigError("combine() needs at least one load")
    for ld in loads:
        if not isinstance(ld, Load):
            raise ConfigError(f"combine() takes Load objects, not {type(ld).__name__}")
        if ld._consumed or ld._ctx is not None:
            raise ConfigError("combine() takes fresh loads (not started, not combined already)")
    if len({id(ld) for ld in loads}) != len(loads):
        raise ConfigError("combine() got the same load twice")
    sources = [s for ld in loads for s in ld._sources]
    out = Load(sources, None)
    out._stack_table = _stack_table(stacks) if stacks is not None else loads[0]._stack_table.copy()
    for ld in loads:
        ld._consumed = True
    return out


def stress_highalloc_load(
    builds: int = 7,
    jobs: int = 4,
    updatedb: bool = True,
    *,
    seed: int = 0,
    stacks: Mapping[str, int] | None = None,
    cpus: float = 2.0,
    copy_mb_s: float = 35.0,
) -> Load:
    """The load of VMRegress ``bench-stresshighalloc`` (FACTS section 4).

    ``updatedb &``; then ``builds - 1`` copies of the tree made one after the
    other, each starting ``make -j{jobs} bzImage`` as soon as it is copied, then
    the main tree builds too. The builds share ``cpus`` CPUs.
    """
    builds = _int_arg("builds", builds, 0, 256)
    jobs = _int_arg("jobs", jobs, 1, 1024)
    seed = _seed_arg(seed)
    cpus = _float_arg("cpus", cpus, 0.01, 4096)
    copy_mb_s = _float_arg("copy_mb_s", copy_mb_s, 0.01, 1e6)
    if not isinstance(updatedb, bool):
        raise ConfigError(f"updatedb must be a bool, got {updatedb!r}")
    if builds == 0 and not updatedb:
        raise ConfigError("an empty load: no builds and no updatedb")
    layout = kernel_tree(seed=seed)
    copy_s = layout.bytes / (copy_mb_s * 1e6)
    copy_s = math.ceil(copy_s * 1e6) / 1e6
    # build k (1..builds-1) copies during [(k-1) c, k c) and builds from k c;
    # the main tree builds from (builds-1) c
    make_start = [k * copy_s for k in range(1, builds)] + [(builds - 1) * copy_s]
    steps = sorted(set(make_start))
    share = [(0.0, cpus)] + [(t, cpus / sum(1 for m in make_start if m <= t)) for t in steps]
    loads: list[Load] = []
    if updatedb:
        loads.append(_updatedb_fn(seed=seed, stacks=stacks))
    for k in range(1, builds):
        loads.append(
            kernel_build(
                jobs,
                seed=seed + k,
                stacks=stacks,
                start=(k - 1) * copy_s,
                copy_tree=True,
                tree=f"linux-2.6.11-copy{k}",
                source_tree="linux-2.6.11",
                layout=layout,
                cpu_share=share,
                copy_mb_s=copy_mb_s,
            )
        )
    if builds:
        loads.append(
            kernel_build(
                jobs,
                seed=seed,
                stacks=stacks,
                start=(builds - 1) * copy_s,
                tree="linux-2.6.11",
                source_tree="linux-2.6.11-orig",
                layout=layout,
                cpu_share=share,
            )
        )
    return combine(*loads, stacks=stacks)


_updatedb_fn = updatedb


def inject_leak(
    trace: np.ndarray,
    *,
    every: int = 1000,
    order: int = 0,
    gfp: int | str = _gfp.GFP_KERNEL,
    stack: int = 0,
    pid: int | None = None,
    obj_base: int | None = None,
) -> np.ndarray:
    """A copy of ``trace`` with an allocation that is never freed after every ``every`` ops.

    The leaked objects get ids ``obj_base, obj_base + 1, ...`` (default: one
    past the trace's highest id), which must not collide with the trace's
    own; ``pid`` defaults to one past the trace's highest pid.
    """
    from .machine import as_trace

    t = as_trace(trace)
    every = _int_arg("every", every, 1, 2**62)
    if (
        isinstance(order, bool)
        or not isinstance(order, (int, np.integer))
        or not 0 <= order < MAX_ORDER
    ):
        raise ConfigError(f"order must be an int in 0..{MAX_ORDER - 1}, got {order!r}")
    gfp = _gfp.parse(gfp)
    stack = _int_arg("stack", stack, 0, 2**32 - 1)
    objs = t["obj"][t["op"] != OP_TICK]
    n = t.shape[0] // every
    if obj_base is None:
        obj_base = int(objs.max()) + 1 if objs.shape[0] else 0
    obj_base = _int_arg("obj_base", obj_base, 0, 2**32 - 1)
    if obj_base + n > 2**32:
        raise ConfigError(f"{n} leaked objects from id {obj_base} overflow 32-bit ids")
    if objs.shape[0] and n and np.any((objs >= obj_base) & (objs < obj_base + n)):
        raise ConfigError(
            f"leak ids {obj_base}..{obj_base + n - 1} collide with the trace's object ids"
        )
    if pid is None:
        pid = int(t["pid"].max()) + 1 if t.shape[0] else 1
    pid = _int_arg("pid", pid, 0, 2**32 - 1)
    out = np.zeros(t.shape[0] + n, TRACE_DTYPE)
    leak_pos = (np.arange(n) + 1) * every + np.arange(n)  # after each `every` ops
    mask = np.ones(out.shape[0], dtype=bool)
    mask[leak_pos] = False
    out.view(np.uint8).reshape(-1, TRACE_DTYPE.itemsize)[mask] = t.view(np.uint8).reshape(
        -1, TRACE_DTYPE.itemsize
    )
    out["op"][leak_pos] = OP_ALLOC
    out["order"][leak_pos] = order
    out["obj"][leak_pos] = obj_base + np.arange(n)
    out["gfp"][leak_pos] = gfp
    out["stack"][leak_pos] = stack
    out["pid"][leak_pos] = pid
    out["tgid"][leak_pos] = pid
    return out
