"""``updatedb``: a walk of the whole filesystem that fills the dentry and inode
caches and the block-device page cache, then writes the locate database."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._args import float_arg, int_arg
from ..trace import OP_ALLOC
from .context import Ctx, NewObjects, SlabFill
from .events import WIN_US, events
from .kinds import K_BDEV, K
from .load import Load
from .params import DISK_INODES_PER_PAGE, PAGE, PROGRAMS
from .process import processes
from .source import Source, check_horizon, stream_of


class UpdatedbSource(Source):
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
        check_horizon("updatedb", self.end_us - start_us)
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

    def bind(self, ctx: Ctx) -> None:
        self.dentries = NewObjects(K["dentry"])
        self.inodes = NewObjects(K["inode"])
        self.itable = SlabFill(K_BDEV, DISK_INODES_PER_PAGE)  # inode-table blocks
        self.dirblk = SlabFill(K_BDEV, round(self.files_per_dir))  # one dir block a directory
        self.bhs = NewObjects(K["buffer_head"])
        self.pid = 0

    def generate(self, ctx: Ctx, w: int) -> list[np.ndarray]:
        lo, hi = w * WIN_US, (w + 1) * WIN_US
        out: list[np.ndarray] = []
        # the window's stream, made only for the windows that draw (the start, the end)
        rng = self._rng(w) if lo <= self.start_us < hi or lo <= self.walk_end < hi else None
        if lo <= self.start_us < hi:
            self.pid = int(ctx.pids(1)[0])
            out += processes(
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
                ino = self.inodes.add(ctx, t + 1, pid)
                out.append(ino)
                out.append(self.dentries.add(ctx, t + 1, pid, pin=ino["obj"]))
        if lo <= self.walk_end < hi:
            n = self.db_pages
            t = self.walk_end + np.sort(rng.integers(0, 400_000, n))
            base = ctx.ids.permanent(n)
            out.append(
                events(t, OP_ALLOC, base + np.arange(n), self.pid, K["pagecache_write"], proc=0)
            )
            out.append(self.bhs.add(ctx, t, np.full(n, self.pid, np.uint32)))
        return out


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

    Fills the dentry and inode slab caches (objects in KernRclm slab pages),
    the block-device page cache with inode-table and directory blocks
    (GFP_USER) and their buffer heads,
    then writes the locate database and exits.
    """
    src = UpdatedbSource(
        seed=int_arg("seed", seed, 0, None),
        files=int_arg("files", files, 1, 100_000_000),
        files_per_s=float_arg("files_per_s", files_per_s, 1.0, 1e8),
        files_per_dir=float_arg("files_per_dir", files_per_dir, 1.0, 1e5),
        start_us=round(float_arg("start", start, 0.0, 1e6) * 1e6),
        touch_interval_s=float_arg("touch_interval_s", touch_interval_s, 1e-3, 1e6),
        stream=stream_of("updatedb", ""),
    )
    return Load([src], stacks)
