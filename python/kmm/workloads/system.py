"""The system the benchmark runs on: long-lived processes and the test's own
kernel module state, present for the whole run (they outlive the load:
:meth:`Load.stop` does not free them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._args import float_arg, int_arg
from .context import Ctx, NewObjects
from .events import WIN_US
from .kinds import K
from .load import Load
from .params import MODULE_KMALLOC_4096, SYSTEM_LATE, SYSTEM_PROCESSES
from .process import processes
from .source import Source, stream_of


class SystemSource(Source):
    """init, daemons, a login shell and an X server at boot; the benchmark's
    shell and its monitor started later; the test module's buffers."""

    def __init__(self, *, seed: int, start_us: int, life_us: int, stream: int) -> None:
        self.seed = seed
        self.stream = stream
        self.start_us = start_us
        self.life_us = life_us
        self.boot = [(p, n, a, self.start_us) for p, n, a in SYSTEM_PROCESSES]
        self.late = [(p, n, a, self.start_us + round(t * 1e6)) for p, n, a, t in SYSTEM_LATE]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "system",
            "seed": self.seed,
            "start_s": self.start_us / 1e6,
            "processes": sum(n for _, n, _, _ in self.boot + self.late),
            "module_kmalloc_4096": MODULE_KMALLOC_4096,
        }

    def bind(self, ctx: Ctx) -> None:
        self.module = NewObjects(K["kmalloc_4096"])

    def generate(self, ctx: Ctx, w: int) -> list[np.ndarray]:
        lo, hi = w * WIN_US, (w + 1) * WIN_US
        out: list[np.ndarray] = []
        rng = None  # the window's stream, made when something starts in it
        for prog, n, anon, t in self.boot + self.late:
            if lo <= t < hi:
                if rng is None:
                    rng = self._rng(w)
                start = np.full(n, t, dtype=np.int64)
                out += processes(
                    ctx,
                    rng,
                    [prog] * n,
                    start,
                    start + self.life_us,
                    np.full(n, anon),
                    ctx.pids(n),
                    touch_interval_us=60e6,  # a daemon wakes about once a minute
                    short_frac=0.0,
                    exits=False,
                )
        if lo <= self.start_us < hi:
            t = np.full(MODULE_KMALLOC_4096, self.start_us, dtype=np.int64)
            out.append(self.module.add(ctx, t, np.zeros(MODULE_KMALLOC_4096, np.uint32)))
            # the module's buffers are held by the module, not by a cache: never freed
            out[-1]["proc"] = 2
        return out


def system(
    *,
    seed: int = 0,
    stacks: Mapping[str, int] | None = None,
    start: float = 0.0,
    life: float = 1000.0,
) -> Load:
    """The long-lived part of the 2005 test machine (``docs/workloads.md``):
    ``params.SYSTEM_PROCESSES`` at ``start``, ``params.SYSTEM_LATE`` later,
    and the test module's buffers; none exits. ``life`` bounds their touches."""
    src = SystemSource(
        seed=int_arg("seed", seed, 0, None),
        start_us=round(float_arg("start", start, 0.0, 1e6) * 1e6),
        life_us=round(float_arg("life", life, 1.0, 10_000.0) * 1e6),
        stream=stream_of("system", ""),
    )
    return Load([src], stacks)
