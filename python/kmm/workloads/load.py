"""The load: sources merged in simulated time and emitted as trace records."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .._args import float_arg
from ..errors import ConfigError, TraceError
from ..trace import (
    OP_ALLOC,
    OP_FREE,
    OP_SLAB_ALLOC,
    OP_SLAB_FREE,
    OP_SLAB_PIN,
    OP_TICK,
    OP_TOUCH,
    TF_TASK,
    TRACE_DTYPE,
    concat,
)
from .context import Ctx
from .events import EV, MS, NO_PIN, OP_ACCESS, WIN_US
from .kinds import KIND_CACHE_ARR, KIND_FLAGS_ARR, KIND_GFP_ARR, stack_table
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
        self._now_us = 0
        self._gen_w = 0  # next window to generate
        self._buckets: dict[int, list[np.ndarray]] = {}
        self._ready_w = -1
        self._ready = np.empty(0, EV)
        self._ready_slot = np.empty(0, np.int64)
        self._pos = 0  # first event of the ready window not yet emitted
        self._cache = np.zeros(1 << 16, dtype=bool)  # cache page allocated (first access done)
        self._live = np.zeros(1 << 16, dtype=bool)  # process object allocated now
        self._pid_of = np.zeros(1 << 16, dtype=np.uint32)
        self._slab_of = np.zeros(1 << 16, dtype=bool)  # object is a slab object
        self._pinner = np.zeros(1 << 16, dtype=bool)  # cache object pins an inode
        self._mapped = np.zeros(1 << 16, dtype=bool)  # cache page a permanent process maps
        self._perm_pids: set[int] = set()  # pids of processes that outlive stop()
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
            w = self._now_us // WIN_US
            self._make_ready(w)
            seg_end = min(t_us, (w + 1) * WIN_US)
            parts.append(self._emit(seg_end))
        out = concat(parts)
        self.ops += out.shape[0]
        return out

    def stop(self) -> np.ndarray:
        """Every build and process exits now: frees of everything processes own.

        Page cache and dentry/inode/buffer-head slab objects stay allocated
        (they are caches, left to reclaim and the shrinkers). Later :meth:`run_until` calls emit only ticks.
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
        out["op"] = np.where(self._slab_of[ids], OP_SLAB_FREE, OP_FREE)
        out["obj"] = ids
        out["pid"] = self._pid_of[ids]
        out["tgid"] = out["pid"]
        self._live[:] = False
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
        drop = self._cache & ~self._mapped
        ids = np.concatenate([np.nonzero(drop & self._pinner)[0], np.nonzero(drop & ~self._pinner)[0]])
        out = np.zeros(ids.shape[0], TRACE_DTYPE)
        out["op"] = np.where(self._slab_of[ids], OP_SLAB_FREE, OP_FREE)
        out["obj"] = ids
        self._cache[ids] = False
        self.ops += out.shape[0]
        return out

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
        if t_us - self._now_us > _MAX_SPAN_S * 1e6:
            raise ConfigError(
                f"cannot emit {t - self.now:.0f} s in one call "
                f"(at most {_MAX_SPAN_S:.0f} s; use chunks())"
            )
        return t_us

    def _bind(self) -> None:
        if self._ctx is None:
            self._ctx = Ctx()
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
            ctx.ids.release_before(g * WIN_US)
            if not self._stopped:
                evs = [e for s in self._sources for e in s.generate(ctx, g) if e.shape[0]]
                if evs:
                    ev = np.concatenate(evs)
                    win = ev["t"] // WIN_US - g
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
        ev = np.concatenate(parts) if parts else np.empty(0, EV)
        # order by millisecond slot, keeping generation order inside a slot (an
        # object's alloc, touches and free are generated in that order)
        slot = (ev["t"] - w * WIN_US) // MS
        order = np.argsort(slot.astype(np.uint16), kind="stable")
        self._ready = np.take(ev, order)
        self._ready_slot = slot[order] + w * (WIN_US // MS)
        self._ready_w = w
        self._pos = 0
        self._grow(ctx.ids.top)

    def _grow(self, n: int) -> None:
        if n > self._cache.shape[0]:
            size = max(n, 2 * self._cache.shape[0])
            for name in ("_cache", "_live", "_pid_of", "_slab_of", "_pinner", "_mapped"):
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
        # a first allocation that pins an inode is followed by its OP_SLAB_PIN
        has_pin = (ev["op"] == OP_ALLOC) & (ev["pin"] != NO_PIN)
        if has_pin.any():
            self._pinner[ev["obj"][has_pin]] = True
            reps = 1 + has_pin.astype(np.int64)
            second = (np.cumsum(reps) - 1)[has_pin]
            ev = np.repeat(ev, reps)
            slot = np.repeat(slot, reps)
            ev["op"][second] = OP_SLAB_PIN
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
            op = ev["op"].copy()
            order = ev["order"].copy()
            # slab kinds are objects: OP_SLAB_ALLOC / OP_SLAB_FREE into their cache
            cache = KIND_CACHE_ARR[kind]
            slab = cache != 255
            if slab.any():
                op[slab & (op == OP_ALLOC)] = OP_SLAB_ALLOC
                op[slab & (op == OP_FREE)] = OP_SLAB_FREE
                order[slab] = cache[slab]
            out["op"][idx] = op
            out["order"][idx] = order
            out["obj"][idx] = ev["obj"]
            out["gfp"][idx] = KIND_GFP_ARR[kind]
            out["stack"][idx] = self._stack_table[kind]
            out["pid"][idx] = ev["pid"]
            out["tgid"][idx] = ev["pid"]
            # a process's own memory goes with it if the OOM killer kills it
            owned = (ev["proc"] != 0) & ((op == OP_ALLOC) | (op == OP_SLAB_ALLOC))
            out["flags"][idx] = np.where(owned, TF_TASK | KIND_FLAGS_ARR[kind], 0)
            pins = np.nonzero(op == OP_SLAB_PIN)[0]
            if pins.shape[0]:
                pi = idx[pins]
                out["order"][pi] = 0
                out["gfp"][pi] = ev["pin"][pins]
                out["stack"][pi] = 0
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
        self._slab_of[ev["obj"][c]] = KIND_CACHE_ARR[ev["kind"][c]] != 255
        perm = ev["proc"] == 2
        if perm.any():
            self._perm_pids.update(np.unique(ev["pid"][perm]).tolist())
        acc = np.nonzero(ev["op"] == OP_ACCESS)[0]
        if acc.shape[0]:
            objs = ev["obj"][acc]
            ev["op"][acc] = OP_TOUCH
            cand = np.nonzero(~self._cache[objs])[0]  # not in the cache yet
            if cand.shape[0]:
                _, first = np.unique(objs[cand], return_index=True)
                new = acc[cand[first]]  # the first access of each becomes the alloc
                ev["op"][new] = OP_ALLOC
                self._cache[ev["obj"][new]] = True
                self._slab_of[ev["obj"][new]] = KIND_CACHE_ARR[ev["kind"][new]] != 255
            if self._perm_pids:
                by_perm = np.isin(ev["pid"][acc], np.fromiter(self._perm_pids, np.int64))
                self._mapped[objs[by_perm]] = True
        a = (ev["op"] == OP_ALLOC) & (ev["proc"] == 1)
        self._live[ev["obj"][a]] = True
        self._pid_of[ev["obj"][a]] = ev["pid"][a]
        self._slab_of[ev["obj"][a]] = KIND_CACHE_ARR[ev["kind"][a]] != 255
        f = (ev["op"] == OP_FREE) & (ev["proc"] == 1)
        self._live[ev["obj"][f]] = False
        return ev


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
