"""The system the benchmark runs on: long-lived processes and the test's own
kernel module state, present for the whole run (they outlive the load:
:meth:`Load.stop` does not free them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._args import float_arg, int_arg
from ..errors import ConfigError
from ..trace import OP_ALLOC, OP_FREE
from .context import Ctx, NewObjects
from .events import WIN_US, events
from .kinds import K
from .load import Load
from .params import (
    MODULE_KMALLOC_4096,
    SYSTEM_FILES_IN_USE,
    SYSTEM_LATE,
    SYSTEM_PROCESSES,
    SYSTEM_TURNOVER_KINDS,
    SYSTEM_TURNOVER_S,
    TASK_SLAB,
)
from .process import Procs, processes
from .source import Source, stream_of


class SystemSource(Source):
    """init, daemons, a login shell and an X server at boot; the benchmark's
    shell and its monitor started later; the test module's buffers."""

    def __init__(
        self, *, seed: int, start_us: int, life_us: int, stream: int, turnover_us: int = 0,
        files_in_use: int = SYSTEM_FILES_IN_USE,
    ) -> None:
        self.seed = seed
        self.files_in_use = files_in_use
        self.stream = stream
        self.start_us = start_us
        self.life_us = life_us
        self.turnover_us = turnover_us
        self.boot = [(p, n, a, self.start_us) for p, n, a in SYSTEM_PROCESSES]
        self.late = [(p, n, a, self.start_us + round(t * 1e6)) for p, n, a, t in SYSTEM_LATE]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "system",
            "seed": self.seed,
            "start_s": self.start_us / 1e6,
            "processes": sum(n for _, n, _, _ in self.boot + self.late),
            "module_kmalloc_4096": MODULE_KMALLOC_4096,
            "turnover_s": self.turnover_us / 1e6,
            "files_in_use": self.files_in_use,
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
                procs = processes(
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
                out += procs
                if self.files_in_use:
                    out += self._files(ctx, procs, t)
                if self.turnover_us:
                    out += self._turnover(ctx, w, procs, t)
        if lo <= self.start_us < hi:
            t = np.full(MODULE_KMALLOC_4096, self.start_us, dtype=np.int64)
            out.append(self.module.add(ctx, t, np.zeros(MODULE_KMALLOC_4096, np.uint32)))
            # the module's buffers are held by the module, not by a cache: never freed
            out[-1]["proc"] = 2
        return out

    def _files(self, ctx: Ctx, procs: list[Procs], t: int) -> list[np.ndarray]:
        """The files each process keeps in use from its start (``files_in_use``
        each): an inode, its dentry, and the two references that keep them in
        use, a ``struct file`` (size-256) on the dentry and a size-32 object on
        the inode (a kmm pinner holds one object, so the dentry's own hold on
        its inode is this second object). None is freed: the processes outlive
        the load, and the shrinkers skip held objects."""
        pid = np.concatenate([pr.pid for pr in procs]).astype(np.uint32)
        n = pid.shape[0] * self.files_in_use
        if n == 0:
            return []
        base = ctx.ids.permanent(4 * n)
        ino, den, fil, ref = (base + i * n + np.arange(n, dtype=np.int64) for i in range(4))
        pp = np.repeat(pid, self.files_in_use)
        tt = np.full(n, t, dtype=np.int64)
        return [
            events(tt, OP_ALLOC, ino, pp, K["inode"], proc=2),
            events(tt, OP_ALLOC, den, pp, K["dentry"], proc=2),
            events(tt, OP_ALLOC, fil, pp, K["kmalloc_256"], proc=2, pin=den),
            events(tt, OP_ALLOC, ref, pp, K["kmalloc_32"], proc=2, pin=ino),
        ]

    def _turnover(self, ctx: Ctx, w: int, procs: list[Procs], t: int) -> list[np.ndarray]:
        """The replacements of the processes' turnover objects (``_TURNOVER_SLOTS``
        of their ``TASK_SLAB`` objects): every exponential ``turnover_us`` (mean)
        until ``life_us`` after ``t``, one slot in turn loses its object and gets
        a new one of the same kind (a new id; the old one is freed 1 µs after the
        new one is allocated, so the new one goes where the cache allocates then,
        not into the slot just freed).
        Drawn from a stream of their own, so the rest of the trace is the same."""
        rng = np.random.default_rng([self.seed, self.stream, _TURNOVER_STREAM, w])
        out: list[np.ndarray] = []
        ns = _TURNOVER_SLOTS.shape[0]
        for pr in procs:
            for base, n_pte, pid in zip(pr.base.tolist(), pr.n_pte.tolist(), pr.pid.tolist()):
                # enough draws to pass the life on nearly every stream; the rest is cut
                n = int(self.life_us / self.turnover_us * 1.2) + 16
                tt = t + np.cumsum(rng.exponential(self.turnover_us, n)).astype(np.int64)
                tt = tt[tt < t + self.life_us]
                k = tt.shape[0]
                if k == 0:
                    continue
                slot = np.arange(k) % ns
                new = ctx.ids.permanent(k) + np.arange(k)
                first = base + 2 + n_pte + _TURNOVER_SLOTS  # the slots' objects at exec
                old = np.where(np.arange(k) < ns, first[slot], np.roll(new, ns))
                kind = _TURNOVER_KIND[slot]
                out.append(events(tt, OP_ALLOC, new, pid, kind, proc=2))
                out.append(events(tt + 1, OP_FREE, old, pid, kind))
        return out


# which of a task's TASK_SLAB objects turn over, by their index, and their kinds
_TASK_KINDS = [k for k, n in TASK_SLAB for _ in range(n)]
_TURNOVER_SLOTS = np.array([i for i, k in enumerate(_TASK_KINDS) if k in SYSTEM_TURNOVER_KINDS], dtype=np.int64)
_TURNOVER_KIND = np.array([K[_TASK_KINDS[i]] for i in _TURNOVER_SLOTS.tolist()], dtype=np.uint8)
_TURNOVER_STREAM = 7


def system(
    *,
    seed: int = 0,
    stacks: Mapping[str, int] | None = None,
    start: float = 0.0,
    life: float = 1000.0,
    turnover: float = SYSTEM_TURNOVER_S,
    files_in_use: int = SYSTEM_FILES_IN_USE,
) -> Load:
    """The long-lived part of the 2005 test machine (``docs/workloads.md``):
    ``params.SYSTEM_PROCESSES`` at ``start``, ``params.SYSTEM_LATE`` later,
    and the test module's buffers; none exits. ``life`` bounds their touches
    and their kernel-object turnover, one replacement every ``turnover``
    seconds (mean, per process; 0: none). Each process keeps ``files_in_use``
    files (a dentry and an inode each) in use for its whole life."""
    src = SystemSource(
        seed=int_arg("seed", seed, 0, None),
        start_us=round(float_arg("start", start, 0.0, 1e6) * 1e6),
        life_us=round(float_arg("life", life, 1.0, 10_000.0) * 1e6),
        stream=stream_of("system", ""),
        turnover_us=round(float_arg("turnover", turnover, 0.0, 1e4) * 1e6),
        files_in_use=int_arg("files_in_use", files_in_use, 0, 1000),
    )
    if 0 < src.turnover_us < 1000:
        raise ConfigError(f"turnover must be 0 or at least 0.001 s, got {turnover}")
    return Load([src], stacks)
