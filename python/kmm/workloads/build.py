"""``make -jN bzImage`` of a 2.6.11 tree, optionally after ``cp -a`` of it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._args import float_arg, int_arg
from .._kmm import jobserver
from ..errors import ConfigError
from ..trace import OP_ALLOC
from .context import Ctx, NewObjects
from .events import OP_ACCESS, WIN_US, SortedWindows, events
from .kinds import K
from .load import Load
from .params import PAGE, PROGRAMS
from .process import lognormal, processes
from .source import HORIZON_US, Source, check_horizon, stream_of
from .tree import TreeLayout, kernel_tree


class BuildSource(Source):
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
        make_from_us: int = 0,
        queued: bool = False,
    ) -> None:
        self.jobs = jobs
        self.seed = seed
        self.layout = layout
        self.tree_name = tree
        self.copy_from = copy_from
        self.start_us = start_us
        self.cpu_share = cpu_share
        self._share_us = [t * 1e6 for t, _ in cpu_share]
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
            order, done = _walk_order(L)
            self.copy_files = order
            self.copy_t = t0 + ((done - L.pages[order] * PAGE) / (copy_mb_s * 1e6) * 1e6).astype(
                np.int64
            )
            t0 = start_us + math.ceil(done[-1] / (copy_mb_s * 1e6) * 1e6)
        self.copy_end = t0
        t0 = max(t0, make_from_us)  # a queued make waits for its build slot
        self.make_start = t0
        self.built = True
        # compile units: CPU time and cc1 heap correlated (big files cost both)
        n = L.units
        z = rng.standard_normal(n)
        z2 = 0.7 * z + math.sqrt(1 - 0.49) * rng.standard_normal(n)
        self.cpu_us = cpu_median_s * 1e6 * np.exp(cpu_sigma * z2)
        self.cc1_pages = np.maximum(64, cc1_median_pages * np.exp(cc1_sigma * z)).astype(np.int64)
        self.obj_pages = np.maximum(1, np.ceil(lognormal(rng, 12 * 1024, 0.9, n) / PAGE)).astype(
            np.int64
        )
        # headers each unit includes: p = min(1, core / rank) (~150 headers a unit)
        self.hdr_p = np.minimum(1.0, header_core / (np.arange(L.headers) + 1.0))
        # the jobserver: `jobs` slots take units in build order, each unit on
        # the slot that frees first (make reads the Makefiles first: 50 ms),
        # its CPU time stretched by min(1, CPUs / jobs), 2 ms of exec and
        # exit, the slot free 1 ms after (made in the engine: jobserver())
        self.u_start, self.u_end = jobserver(
            self.cpu_us, t0 + 50_000, jobs, self._share_us, [c for _, c in cpu_share]
        )
        start, end = self.u_start, self.u_end
        # directory sub-makes cover consecutive units
        d_first = np.concatenate([[0], np.cumsum(L.dir_units)[:-1]])
        d_last = d_first + L.dir_units - 1
        self.d_first, self.d_last = d_first, d_last
        self.d_start = start[d_first] - 20_000
        # then `ld -r` links the directory's objects into built-in.o
        self.ld_start = np.maximum.reduceat(end, d_first) + 5_000
        ld_cpu = 0.03e6 + 0.005e6 * L.dir_units
        # (the CPUs the build has at each link's start: the last cpu_share step at or before it)
        step = np.searchsorted(np.array(self._share_us), self.ld_start, side="right")
        cpus = np.array([c for _, c in cpu_share])[np.maximum(step - 1, 0)]
        self.ld_end = self.ld_start + (ld_cpu / np.minimum(1.0, cpus / jobs)).astype(np.int64)
        self.d_end = self.ld_end + 20_000
        self.u_out_base = np.zeros(n, np.int64)  # page-cache ids of each unit's .o and .cmd
        self.make_end = int(self.d_end.max()) + 100_000
        if queued and self.make_end - start_us > HORIZON_US:
            # its slot frees too late for the make to run within the
            # generator's horizon: the tree is copied, not built
            self._copy_only()
        check_horizon("the build", self.make_end - start_us)
        for times in (self.copy_t, self.d_start, self.u_start):  # generate() bisects them
            assert times.shape[0] < 2 or bool(np.all(times[1:] >= times[:-1]))

    def _copy_only(self) -> None:
        self.built = False
        none = np.empty(0, np.int64)
        self.u_start = self.u_end = self.d_start = self.d_end = none
        self.ld_start = self.ld_end = self.d_first = self.d_last = none
        self.make_start = self.make_end = self.copy_end

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "kernel_build",
            "tree": self.tree_name,
            "jobs": self.jobs,
            "seed": self.seed,
            "copy_from": self.copy_from,
            "copy_start_s": self.start_us / 1e6 if self.copy_from else None,
            "make_start_s": self.make_start / 1e6 if self.built else None,
            "make_end_s": self.make_end / 1e6 if self.built else None,
            "units": int(self.u_start.shape[0]),
            "directories": int(self.d_start.shape[0]),
        }

    def bind(self, ctx: Ctx) -> None:
        self.tree = ctx.tree(self.tree_name, self.layout)
        self.src = ctx.tree(self.copy_from, self.layout) if self.copy_from else None
        self.dentries = NewObjects(K["dentry"])
        self.inodes = NewObjects(K["inode"])
        self.bhs = NewObjects(K["buffer_head"])
        self.make_pid = 0
        self.cp_pid = 0
        self._windows: list[SortedWindows] | None = None

    def generate(self, ctx: Ctx, w: int) -> list[np.ndarray]:
        lo, hi = w * WIN_US, (w + 1) * WIN_US
        # what starts in this window (the times are sorted: copy order, the
        # jobserver's start order); a window with nothing to do draws nothing
        if self._windows is None:  # the bisections of every window, once
            self._windows = [SortedWindows(t) for t in (self.copy_t, self.d_start, self.u_start)]
        copy_w, d_w, u_w = self._windows
        copy_sel = copy_w(w) if self.src is not None else self.copy_t[:0]
        d_sel = d_w(w)
        u_sel = u_w(w)
        cp_now = self.src is not None and lo <= self.start_us < hi
        make_now = self.built and lo <= self.make_start < hi
        if not (cp_now or make_now or copy_sel.shape[0] or d_sel.shape[0] or u_sel.shape[0]):
            return []
        rng = self._rng(w)
        out: list[np.ndarray] = []
        kw = {"touch_interval_us": self.touch_us, "short_frac": self.short_frac}
        # cp -a of the tree
        if cp_now:
            self.cp_pid = int(ctx.pids(1)[0])
            out += processes(
                ctx,
                rng,
                ["cp"],
                np.array([self.start_us]),
                np.array([self.copy_end]),
                np.array([PROGRAMS["cp"][1]]),
                np.array([self.cp_pid]),
                **kw,
            )
        if copy_sel.shape[0]:
            out += self._copy(ctx, self.copy_files[copy_sel], self.copy_t[copy_sel])
        # the top-level make lives for the whole build
        if make_now:
            self.make_pid = int(ctx.pids(1)[0])
            anon = int(PROGRAMS["make"][1] * 3)  # parses the top Makefile, .config, kbuild
            out += processes(
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
        for d in d_sel:
            out += self._directory(ctx, rng, int(d))
        # compile units starting in this window
        if u_sel.shape[0]:
            out += self._units(ctx, rng, u_sel)
        return out

    def _copy(self, ctx: Ctx, files: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
        """cp -a: read the source file (page cache), create and write the copy."""
        assert self.src is not None
        pid = self.cp_pid
        out = []
        # each file's inode first, then its dentry and its pages, which pin it
        si = self.src.inode_obj(files)
        out.append(events(t, OP_ACCESS, si, pid, K["inode"], proc=0))
        out.append(
            events(t, OP_ACCESS, self.src.dentry_obj(files), pid, K["dentry"], proc=0, pin=si)
        )
        sp, which = self.src.file_pages(files)
        out.append(events(t[which], OP_ACCESS, sp, pid, K["pagecache_read"], proc=0, pin=si[which]))
        di = self.tree.inode_obj(files)
        out.append(events(t, OP_ACCESS, di, pid, K["inode"], proc=0))
        out.append(
            events(t, OP_ACCESS, self.tree.dentry_obj(files), pid, K["dentry"], proc=0, pin=di)
        )
        dp, which = self.tree.file_pages(files)
        tw = t[which] + 100
        out.append(events(tw, OP_ACCESS, dp, pid, K["pagecache_write"], proc=0, pin=di[which]))
        out.append(self.bhs.add(ctx, tw, np.full(tw.shape[0], pid, np.uint32)))
        return out

    def _directory(self, ctx: Ctx, rng: np.random.Generator, d: int) -> list[np.ndarray]:
        """A kbuild sub-make for one directory, and the ``ld -r`` that links it."""
        pid = ctx.pids(1)
        s, e = int(self.d_start[d]), int(self.d_end[d])
        anon = np.maximum(16, lognormal(rng, PROGRAMS["make"][1], 0.3, 1)).astype(np.int64)
        out = processes(
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
        out += processes(
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
        out.append(events(tr, OP_ACCESS, objs, ld_pid[0], K["pagecache_read"], proc=0))
        bi = ctx.ids.permanent(in_pages)
        tw = np.sort(read_end + (rng.random(in_pages) * (le - 1_000 - read_end)).astype(np.int64))
        pids = np.full(in_pages, ld_pid[0], np.uint32)
        out.append(
            events(tw, OP_ALLOC, bi + np.arange(in_pages), ld_pid[0], K["pagecache_write"], proc=0)
        )
        out.append(self.bhs.add(ctx, tw, pids))
        ino = self.inodes.add(ctx, tw[-1:], pids[-1:])
        out.append(ino)
        out.append(self.dentries.add(ctx, tw[-1:], pids[-1:], pin=ino["obj"]))
        return out

    def _units(self, ctx: Ctx, rng: np.random.Generator, units: np.ndarray) -> list[np.ndarray]:
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
            anon[:, i] = np.maximum(8, lognormal(rng, PROGRAMS[p][1], 0.3, U))
        anon[:, 2] = self.cc1_pages[units]
        out = processes(
            ctx,
            rng,
            progs * U,
            st,
            en,
            anon.ravel(),
            pid,
            touch_interval_us=self.touch_us,
            short_frac=self.short_frac,
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
        ti = self.tree.inode_obj(files)
        out.append(events(tf, OP_ACCESS, ti, cc1_pid[fu], K["inode"], proc=0))
        out.append(
            events(
                tf, OP_ACCESS, self.tree.dentry_obj(files), cc1_pid[fu], K["dentry"], proc=0, pin=ti
            )
        )
        pages, which = self.tree.file_pages(files)
        out.append(
            events(
                tf[which] + 1,
                OP_ACCESS,
                pages,
                cc1_pid[fu][which],
                K["pagecache_read"],
                proc=0,
                pin=ti[which],
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
        out.append(events(tw, OP_ALLOC, ids, p_w[rw], K["pagecache_write"], proc=0))
        out.append(self.bhs.add(ctx, tw, p_w[rw]))
        # new files: .o, .cmd, and the .d that fixdep reads and deletes
        tn = np.concatenate([t_w, en[fx_i] - 400])
        pn = np.concatenate([p_w, pid[fx_i]])
        ino = self.inodes.add(ctx, tn, pn)
        out.append(ino)
        out.append(self.dentries.add(ctx, tn, pn, pin=ino["obj"]))
        return out


_WALK_ORDER: dict[int, tuple[TreeLayout, np.ndarray, np.ndarray]] = {}


def _walk_order(layout: TreeLayout) -> tuple[np.ndarray, np.ndarray]:
    """The files of a layout in walk order and the bytes copied after each
    (one computation per layout: a load's copies of one tree share it)."""
    hit = _WALK_ORDER.get(id(layout))
    if hit is None or hit[0] is not layout:
        order = np.argsort(layout.walk_rank)
        done = np.cumsum(layout.pages[order]) * PAGE
        for a in (order, done):
            a.flags.writeable = False
        if len(_WALK_ORDER) >= 8:
            _WALK_ORDER.clear()
        hit = _WALK_ORDER[id(layout)] = (layout, order, done)
    return hit[1], hit[2]


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
    make_from: float | None = None,
) -> Load:
    """``make -j{jobs} bzImage`` of a 2.6.11 tree (optionally ``cp -a`` of it first).

    ``start``: when the build (or its copy) begins, seconds. ``copy_tree``: the
    build first copies ``source_tree`` into ``tree`` (as Mel's script does)
    at ``copy_mb_s``. ``cpus``: CPUs this build has to itself (or
    ``cpu_share``, a list of (from_second, cpus) steps); a compile's wall time is
    its CPU time divided by min(1, cpus / jobs). ``make_from``: the build
    waits for a build slot that frees at this second (``make`` starts then, or
    when the copy is done if later); a waiting build whose ``make`` would not
    end within the generator's horizon is not generated: the tree is copied
    only. The other parameters are the model's numbers, explained in
    ``docs/workloads.md``.
    """
    jobs = int_arg("jobs", jobs, 1, 1024)
    seed = int_arg("seed", seed, 0, None)
    start = float_arg("start", start, 0.0, 1e6)
    cpus = float_arg("cpus", cpus, 0.01, 4096)
    if cpu_share is None:
        cpu_share = [(0.0, cpus)]
    else:
        try:
            cpu_share = [
                (
                    float_arg("cpu_share time", a, 0.0, 1e7),
                    float_arg("cpu_share cpus", b, 0.01, 4096),
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
    src = BuildSource(
        jobs=jobs,
        seed=seed,
        layout=layout,
        tree=tree,
        copy_from=source_tree if copy_tree else None,
        start_us=round(start * 1e6),
        cpu_share=cpu_share,
        cpu_median_s=float_arg("cpu_median_s", cpu_median_s, 1e-4, 1e4),
        cpu_sigma=float_arg("cpu_sigma", cpu_sigma, 0.0, 3.0),
        cc1_median_pages=float_arg("cc1_median_mib", cc1_median_mib, 0.01, 4096) * 256,
        cc1_sigma=float_arg("cc1_sigma", cc1_sigma, 0.0, 3.0),
        copy_mb_s=float_arg("copy_mb_s", copy_mb_s, 0.01, 1e6),
        touch_interval_s=float_arg("touch_interval_s", touch_interval_s, 1e-3, 1e6),
        short_frac=float_arg("short_frac", short_frac, 0.0, 1.0),
        header_core=float_arg("header_core", header_core, 0.0, 1e6),
        stream=stream_of("build", tree),
        make_from_us=0 if make_from is None else round(float_arg("make_from", make_from, 0.0, 1e7) * 1e6),
        queued=make_from is not None,
    )
    return Load([src], stacks)
