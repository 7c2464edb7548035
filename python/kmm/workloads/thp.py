"""Today's huge-page workloads (mmtests' ``thpchallenge``): workers faulting
anonymous memory as transparent huge pages, and the fio fragmenter.

A THP region is 512 object ids from a multiple of 512: the head is faulted
with order 9 and the THP mask, its 511 pages with order 0 (the engine's
``mm/huge_memory.rs``: a huge page covers them, or the fault falls back to
base pages and each is a page of its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._args import float_arg, int_arg
from ..errors import ConfigError
from ..trace import OP_ALLOC, OP_FREE
from .context import Ctx, NewObjects
from .events import EV, WIN_US, events
from .kinds import K
from .load import Load
from .source import Source, check_horizon, stream_of

HPAGE_NR = 512  # pages of a 2 MiB huge page (x86_64)
PAGE = 4096


class ThpWorkerSource(Source):
    """Worker threads that, every round, fault ``regions`` 2 MiB regions at an
    even pace over the first 80% of the round and unmap them all at its end."""

    def __init__(self, *, seed: int, regions: int, workers: int, start_us: int, round_us: int,
                 rounds: int, kind: int) -> None:
        self.seed = seed
        self.stream = stream_of("thp", str(workers))
        self.regions = regions
        self.workers = workers
        self.start_us = start_us
        self.round_us = round_us
        self.rounds = rounds
        self.kind = kind

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "thp_workers",
            "workers": self.workers,
            "regions_per_round": self.regions,
            "rounds": self.rounds,
            "start_s": self.start_us / 1e6,
            "round_s": self.round_us / 1e6,
        }

    def bind(self, ctx: Ctx) -> None:
        self.pids = ctx.pids(self.workers)

    def generate(self, ctx: Ctx, w: int) -> list[np.ndarray]:
        lo, hi = w * WIN_US, (w + 1) * WIN_US
        out: list[np.ndarray] = []
        for r in range(self.rounds):
            s = self.start_us + r * self.round_us
            if not lo <= s < hi:
                continue
            end = s + self.round_us - 1
            n = self.regions
            base = ctx.ids.block(n * HPAGE_NR + HPAGE_NR - 1, end + 1)
            base = -(-base // HPAGE_NR) * HPAGE_NR
            heads = base + HPAGE_NR * np.arange(n, dtype=np.int64)
            t = s + (np.arange(n, dtype=np.int64) * (self.round_us * 8 // 10)) // max(n, 1)
            pid = self.pids[np.arange(n) % self.workers]
            # the head's THP fault, then its 511 pages as the worker touches them
            tails = (heads[:, None] + np.arange(1, HPAGE_NR)).ravel()
            rep = np.repeat(np.arange(n), HPAGE_NR - 1)
            out.append(events(t, OP_ALLOC, heads, pid, self.kind, order=9))
            out.append(events(t[rep], OP_ALLOC, tails, pid[rep], self.kind))
            out.append(events(np.full(tails.shape[0], end), OP_FREE, tails, pid[rep], self.kind))
            out.append(events(np.full(n, end), OP_FREE, heads, pid, self.kind, order=9))
        return out


def thp_workers(
    mem: int,
    *,
    share: float = 0.75,
    workers: int = 4,
    start: float = 0.0,
    round_s: float = 10.0,
    rounds: int = 1,
    seed: int = 0,
    stacks: Mapping[str, int] | None = None,
) -> Load:
    """Workers faulting ``share`` of ``mem`` bytes as THP every round (mmtests'
    thpchallenge: 75% of memory), with today's default ``defrag=madvise`` mask
    for a region not madvised: GFP_TRANSHUGE_LIGHT (no reclaim, no compaction,
    no kswapd)."""
    mem = int_arg("mem", mem, HPAGE_NR * PAGE, None)
    share = float_arg("share", share, 0.0, 1.0)
    workers = int_arg("workers", workers, 1, 1024)
    rounds = int_arg("rounds", rounds, 1, 10_000)
    start_us = round(float_arg("start", start, 0.0, 1e6) * 1e6)
    round_us = round(float_arg("round_s", round_s, 0.01, 3600.0) * 1e6)
    check_horizon("the THP workers", start_us + rounds * round_us)
    regions = int(mem * share) // (HPAGE_NR * PAGE)
    if regions == 0:
        raise ConfigError(f"{share:.0%} of {mem} bytes is not one 2 MiB region")
    src = ThpWorkerSource(
        seed=int_arg("seed", seed, 0, None), regions=regions, workers=workers, start_us=start_us,
        round_us=round_us, rounds=rounds, kind=K["thp_fault"],
    )
    return Load([src], stacks)


class FioSource(Source):
    """fio threads writing new files of ``file_pages`` pages at ``rate`` bytes/s
    in all: each file an inode, a dentry pinning it and its page-cache pages."""

    def __init__(self, *, seed: int, threads: int, file_pages: int, files: int, start_us: int,
                 duration_us: int) -> None:
        self.seed = seed
        self.stream = stream_of("fio", str(threads))
        self.threads = threads
        self.file_pages = file_pages
        self.files = files
        self.start_us = start_us
        self.duration_us = duration_us

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "fio",
            "threads": self.threads,
            "files": self.files,
            "file_kib": self.file_pages * PAGE // 1024,
            "start_s": self.start_us / 1e6,
            "duration_s": self.duration_us / 1e6,
        }

    def bind(self, ctx: Ctx) -> None:
        self.pids = ctx.pids(self.threads)
        self.inodes = NewObjects(K["inode"])
        self.dentries = NewObjects(K["dentry"])

    def generate(self, ctx: Ctx, w: int) -> list[np.ndarray]:
        lo, hi = w * WIN_US, (w + 1) * WIN_US
        f = np.arange(self.files, dtype=np.int64)
        t_file = self.start_us + (f * self.duration_us) // self.files
        sel = np.nonzero((t_file >= lo) & (t_file < hi))[0]
        if sel.shape[0] == 0:
            return []
        t = t_file[sel]
        pid = self.pids[sel % self.threads]
        ino = self.inodes.add(ctx, t, pid)
        out = [ino, self.dentries.add(ctx, t, pid, pin=ino["obj"])]
        n = sel.shape[0] * self.file_pages
        base = ctx.ids.permanent(n)
        rep = np.repeat(np.arange(sel.shape[0]), self.file_pages)
        # the pages of a 64 KiB file written within its thread's next millisecond
        tw = t[rep] + (np.arange(n) % self.file_pages) * (900 // self.file_pages)
        out.append(events(tw, OP_ALLOC, base + np.arange(n), pid[rep], K["pagecache_write"], proc=0,
                          pin=ino["obj"][rep]))
        return [e for e in out if e.shape[0]] or [np.empty(0, EV)]


def fio_writers(
    mem: int,
    *,
    share: float = 1.5,
    threads: int = 4,
    file_kib: int = 64,
    start: float = 0.0,
    duration: float = 30.0,
    seed: int = 0,
    stacks: Mapping[str, int] | None = None,
) -> Load:
    """mmtests' thpchallenge fragmenter: ``threads`` fio threads writing
    ``file_kib`` KiB files worth ``share`` of ``mem`` bytes over ``duration`` s."""
    mem = int_arg("mem", mem, 1, None)
    share = float_arg("share", share, 0.0, 100.0)
    threads = int_arg("threads", threads, 1, 1024)
    file_kib = int_arg("file_kib", file_kib, 4, 1 << 20)
    if file_kib % 4:
        raise ConfigError(f"file_kib must be a multiple of 4 (pages), got {file_kib}")
    start_us = round(float_arg("start", start, 0.0, 1e6) * 1e6)
    duration_us = round(float_arg("duration", duration, 0.01, 3600.0) * 1e6)
    check_horizon("fio", start_us + duration_us)
    file_pages = file_kib // 4
    files = int(mem * share) // (file_pages * PAGE)
    if files == 0:
        raise ConfigError("fio would write no file")
    src = FioSource(seed=int_arg("seed", seed, 0, None), threads=threads, file_pages=file_pages,
                    files=files, start_us=start_us, duration_us=duration_us)
    return Load([src], stacks)
