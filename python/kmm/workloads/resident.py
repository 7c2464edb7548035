"""Long-lived memory reclaim cannot take: the working memory of the machine's
long-lived processes on a machine without swap (``docs/compaction.md``, "What
the machine holds at rest").

Each long-lived process (``params.SYSTEM_PROCESSES`` and ``SYSTEM_LATE``, the
processes of :func:`kmm.workloads.system.system`) keeps a working set of
anonymous pages beside its boot-time memory, which it frees and faults again
as it works: a page is freed on average once every ``refault_s`` seconds
(when the work of a wake-up is done) and faulted again at a later wake-up,
within ``refault_s`` of the free, so by the end of a long run its pages were
faulted at scattered times, among the load's own pages. With no swap an anonymous page
cannot be reclaimed (``get_scan_count`` does not scan anonymous lists without
swap space), but it is movable: the pages are allocated with ``TF_UNEVICTABLE``,
on the unevictable list, and compaction migrates them. :meth:`Load.stop` leaves
them (the processes outlive the load); after it they stay where they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._args import float_arg, int_arg
from ..trace import OP_ALLOC, OP_FREE
from .context import Ctx
from .events import WIN_US, events
from .kinds import K
from .load import Load
from .params import SYSTEM_LATE, SYSTEM_PROCESSES
from .source import Source, stream_of


def _working_sets() -> list[tuple[int, float]]:
    """(pages, start in seconds) of every long-lived process's working set."""
    out = [(a, 0.0) for _, n, a in SYSTEM_PROCESSES for _ in range(n)]
    out += [(a, t) for _, n, a, t in SYSTEM_LATE for _ in range(n)]
    return out


class ResidentSource(Source):
    """The working sets of the long-lived processes, freed and faulted again page by page."""

    def __init__(self, *, seed: int, scale: float, refault_us: int, stream: int) -> None:
        self.seed = seed
        self.stream = stream
        self.refault_us = refault_us
        self.sets = [(round(a * scale), round(t * 1e6)) for a, t in _working_sets()]
        self.sets = [(a, t) for a, t in self.sets if a > 0]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "resident",
            "seed": self.seed,
            "processes": len(self.sets),
            "pages": sum(a for a, _ in self.sets),
            "refault_s": self.refault_us / 1e6,
        }

    def bind(self, ctx: Ctx) -> None:
        n = sum(a for a, _ in self.sets)
        self.start = np.repeat(np.array([t for _, t in self.sets], np.int64), [a for a, _ in self.sets])
        self.pid = np.repeat(ctx.pids(len(self.sets)), [a for a, _ in self.sets])
        self.cur = (ctx.ids.permanent(n) + np.arange(n)).astype(np.uint32)  # each slot's page now
        self.live = np.zeros(n, dtype=bool)
        self.back = np.zeros(n, dtype=np.int64)  # when each slot's page is faulted (again)

    def generate(self, ctx: Ctx, w: int) -> list[np.ndarray]:
        rng = self._rng(w)
        lo, hi = w * WIN_US, (w + 1) * WIN_US
        k = K["anon_resident"]
        out: list[np.ndarray] = []
        new = np.nonzero(~self.live & (self.start < hi))[0]
        if new.shape[0]:
            t = np.maximum(self.start[new], lo)
            out.append(events(t, OP_ALLOC, self.cur[new], self.pid[new], k, proc=2))
            self.live[new] = True
        # pages faulted before this window are replaced with probability
        # 1 - exp(-1 s / refault_s) in it: freed, and a fresh page faulted at once
        old = np.nonzero(self.live & (self.start < lo) & (self.back < lo))[0]
        sel = old[rng.random(old.shape[0]) < -np.expm1(-WIN_US / self.refault_us)]
        if sel.shape[0]:
            t = lo + (rng.random(sel.shape[0]) * WIN_US).astype(np.int64)
            out.append(events(t, OP_FREE, self.cur[sel], self.pid[sel], k, proc=2))
            # faulted again at the process's next wake-up, within one wake interval
            back = t + 1 + (rng.random(sel.shape[0]) * self.refault_us).astype(np.int64)
            self.cur[sel] = (ctx.ids.permanent(sel.shape[0]) + np.arange(sel.shape[0])).astype(np.uint32)
            self.back[sel] = back
            out.append(events(back, OP_ALLOC, self.cur[sel], self.pid[sel], k, proc=2))
        return out


def resident(
    *,
    seed: int = 0,
    stacks: Mapping[str, int] | None = None,
    scale: float = 1.0,
    refault: float = 60.0,
) -> Load:
    """The long-lived processes' working memory on a machine without swap:
    per process ``scale`` times its anonymous pages of ``params.SYSTEM_PROCESSES``
    / ``SYSTEM_LATE``, each page replaced about every ``refault`` seconds, all
    of it unevictable (``TF_UNEVICTABLE``) and movable."""
    src = ResidentSource(
        seed=int_arg("seed", seed, 0, None),
        scale=float_arg("scale", scale, 0.0, 1000.0),
        refault_us=round(float_arg("refault", refault, 1.0, 1e6) * 1e6),
        stream=stream_of("resident", ""),
    )
    return Load([src], stacks)
