"""The load: sources merged in simulated time and emitted as trace records."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .._args import float_arg
from .._kmm import TraceEmitter
from ..errors import ConfigError, TraceError
from ..trace import TRACE_DTYPE
from .context import Ctx
from .events import WIN_US, Touches
from .kinds import KIND_CACHE_ARR, KIND_FLAGS_ARR, KIND_GFP_ARR, stack_table
from .process import Procs
from .source import Source

_MAX_SPAN_S = 10_000.0  # longest run_until() in one call


class Load:
    """A running workload that emits trace operations in simulated time.

    Produced by :func:`kernel_build`, :func:`updatedb`, :func:`combine` and
    :func:`stress_highalloc_load`. ``now`` is the simulated time (seconds)
    already emitted. Object ids are recycled (processes' ids return to a pool
    when they exit), so :attr:`peak_objects` stays far below ``max_objects``.
    """

    def __init__(self, sources: Sequence[Source], stacks: Mapping[str, int] | None = None) -> None:
        self._sources = list(sources)
        self._stack_table = stack_table(stacks)
        self._ctx: Ctx | None = None
        # the merge by time and the emission of records run in the engine
        # (kmm-core/src/workload.rs): per-window buckets, the millisecond order,
        # cache accesses resolved, pins, kinds mapped, ticks; and which objects
        # processes own (stop()) and which are caches (drop_caches())
        self._em: TraceEmitter | None = None
        self._now_us = 0
        self._gen_w = 0  # next window to generate
        self._ready_w = -1
        self._stopped = False
        self._consumed = False
        self._end_us: int | None = None  # end_at()
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
        return 0 if self._em is None else self._em.live_process_objects()

    def held(self) -> dict[str, int]:
        """What the generator holds now for the trace still to come: events
        generated for windows not yet emitted (``pending_events``: a
        process's whole life is generated when it starts), the windows with a
        bucket, and the bytes of the emitter's buffers."""
        if self._em is None:
            return {"pending_events": 0, "windows": 0, "bytes": 0}
        pending, windows, nbytes = self._em.held()
        return {"pending_events": pending, "windows": windows, "bytes": nbytes}

    def describe(self) -> list[dict[str, Any]]:
        """What this load runs: one dict per build or updatedb (times in seconds)."""
        return [s.describe() for s in self._sources]

    def cache_objects(self) -> int:
        """Page-cache and slab-cache objects allocated so far (they stay: caches)."""
        return 0 if self._em is None else self._em.cache_objects()

    def run_until(self, t: float) -> np.ndarray:
        """The operations of simulated time (now, t]; their OP_TICKs add up to t - now.

        Ticks are at most 1 ms; the operations of each millisecond precede its
        tick. Raises :class:`kmm.TraceError` if ``t`` is before :attr:`now`.
        """
        self._check_usable()
        t_us = self._time_arg(t)
        em = self._bind()
        if t_us > self._now_us:
            # every window of the span generated first (the buckets get the
            # same events in the same order), so the output is sized once
            self._generate((t_us - 1) // WIN_US)
            em.reserve_until(t_us)
        while self._now_us < t_us:
            w = self._now_us // WIN_US
            self._make_ready(w)
            seg_end = min(t_us, (w + 1) * WIN_US)
            em.emit(seg_end)
            self._now_us = seg_end
        out = em.take().view(TRACE_DTYPE)
        self.ops += out.shape[0]
        return out

    def stop(self) -> np.ndarray:
        """Every build and process exits now: frees of everything processes own.

        Page cache and dentry/inode/buffer-head slab objects stay allocated
        (they are caches, left to reclaim and the shrinkers). Later :meth:`run_until` calls emit only ticks.
        """
        self._check_usable()
        em = self._bind()
        self._stopped = True
        em.stop()
        out = em.take().view(TRACE_DTYPE)
        self.ops += out.shape[0]
        return out

    def drop_caches(self) -> np.ndarray:
        """After :meth:`stop`: the build trees deleted and ``echo 3 >
        /proc/sys/vm/drop_caches`` (as mmtests does before its at-rest pass):
        frees of every page-cache page and dentry, inode and buffer-head object,
        except the pages processes still running map (the system's program
        text). Objects pinning an inode are freed before the inodes."""
        self._check_usable()
        if not self._stopped:
            raise ConfigError("drop_caches() comes after stop(): the load's processes hold their files")
        assert self._em is not None
        self._em.drop_caches()
        out = self._em.take().view(TRACE_DTYPE)
        self.ops += out.shape[0]
        return out

    def end_at(self, t: float) -> None:
        """Declare that this load will not run past ``t`` seconds (until
        :meth:`stop`): the events of processes that outlive ``t`` (their later
        touches, frees, faults) are dropped as they are generated instead of
        kept, so a run's memory and work follow the run, not the processes'
        whole lives. The trace up to ``t`` is the same; :meth:`run_until`
        past it raises :class:`kmm.ConfigError`. ``t`` may not be before
        :attr:`now`, nor after an end declared before."""
        self._check_usable()
        if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)):
            raise ConfigError(f"end must be a number of seconds, not {type(t).__name__}")
        if not math.isfinite(float(t)):
            raise ConfigError(f"end must be finite, got {t}")
        t_us = round(float(t) * 1e6)
        if t_us < self._now_us or (self._end_us is not None and t_us > self._end_us):
            raise ConfigError(
                f"end {t} s must be between now ({self.now} s) and the end declared before"
            )
        self._end_us = t_us
        if self._em is not None:
            self._em.set_end(t_us)

    def chunks(self, until: float, chunk_s: float = 1.0) -> Iterator[np.ndarray]:
        """``run_until`` in steps of ``chunk_s`` seconds up to ``until``."""
        self._check_usable()
        chunk_s = float_arg("chunk_s", chunk_s, 1e-3, _MAX_SPAN_S)
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
        if self._end_us is not None and t_us > self._end_us and not self._stopped:
            raise ConfigError(
                f"this load ends at {self._end_us / 1e6} s (end_at()); cannot run it to {t} s"
            )
        if t_us - self._now_us > _MAX_SPAN_S * 1e6:
            raise ConfigError(
                f"cannot emit {t - self.now:.0f} s in one call "
                f"(at most {_MAX_SPAN_S:.0f} s; use chunks())"
            )
        return t_us

    def _bind(self) -> TraceEmitter:
        if self._em is None:
            self._ctx = Ctx()
            for s in self._sources:
                s.bind(self._ctx)
            self._em = TraceEmitter(
                KIND_CACHE_ARR.tolist(),
                KIND_GFP_ARR.tolist(),
                self._stack_table.tolist(),
                KIND_FLAGS_ARR.tolist(),
            )
            if self._end_us is not None:
                self._em.set_end(self._end_us)
        return self._em

    def _make_ready(self, w: int) -> None:
        """Generate every window up to ``w`` and make ``w`` the one emitted."""
        if self._ready_w == w:
            return
        self._generate(w)
        self._bind().ready(w)
        self._ready_w = w

    def _generate(self, w: int) -> None:
        """Generate every window up to ``w`` (each source's events, in source
        order, go to the engine's buckets)."""
        em = self._bind()
        ctx = self._ctx
        assert ctx is not None
        while self._gen_w <= w:
            g = self._gen_w
            ctx.ids.release_before(g * WIN_US)
            if not self._stopped:
                # in generation order: runs of event arrays, touches and processes
                parts: list[np.ndarray] = []
                for s in self._sources:
                    for e in s.generate(ctx, g):
                        if not e.shape[0]:
                            continue
                        if isinstance(e, (Touches, Procs)):
                            if parts:
                                em.push(g, parts)
                                parts = []
                            if isinstance(e, Procs):
                                e.push(em, g)
                            else:
                                em.push_touches(g, e.u, e.n, e.t0, e.t1, e.obj, e.pid, e.kind, e.proc)
                        else:
                            parts.append(np.ascontiguousarray(e).view(np.uint8))
                if parts:
                    em.push(g, parts)
            self._gen_w += 1


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
    out._stack_table = stack_table(stacks) if stacks is not None else loads[0]._stack_table.copy()
    for ld in loads:
        ld._consumed = True
    return out
