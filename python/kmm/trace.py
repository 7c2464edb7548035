"""The trace format: the operations :meth:`kmm.Machine.replay` runs.

A trace is a one-dimensional numpy array of :data:`TRACE_DTYPE` records, the
layout the Rust core reads (``kmm-core/src/replay.rs``). Workloads
(:mod:`kmm.workloads`) produce traces; this module makes, checks, joins and
edits them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _kmm
from . import gfp as _gfp
from . import kernel_trace as _kernel_trace
from ._args import U32_MAX, int_arg
from .errors import ConfigError, TraceError

__all__ = [
    "OP_ALLOC",
    "OP_FREE",
    "OP_SLAB_ALLOC",
    "OP_SLAB_FREE",
    "OP_SLAB_PIN",
    "OP_TICK",
    "OP_TOUCH",
    "SLAB_CACHES",
    "TF_TASK",
    "TF_UNEVICTABLE",
    "TRACE_DTYPE",
    "as_trace",
    "concat",
    "empty_trace",
    "inject_leak",
    "read_kernel",
]

OP_ALLOC: int = _kmm.OP_ALLOC
OP_FREE: int = _kmm.OP_FREE
OP_TOUCH: int = _kmm.OP_TOUCH
OP_TICK: int = _kmm.OP_TICK
#: Slab objects (``kmm-core/src/mm/slab.rs``): OP_SLAB_ALLOC puts object ``obj``
#: in the cache numbered ``order`` with the caller's mask ``gfp``; OP_SLAB_FREE
#: frees it; OP_TOUCH references it. OP_SLAB_PIN: object ``obj`` (a page or a
#: slab object) pins the slab object whose id is in the ``gfp`` field (a page of
#: an inode's page cache, or a dentry, pinning the inode) until ``obj`` is freed.
OP_SLAB_ALLOC: int = _kmm.OP_SLAB_ALLOC
OP_SLAB_FREE: int = _kmm.OP_SLAB_FREE
OP_SLAB_PIN: int = _kmm.OP_SLAB_PIN
#: ``flags`` of an OP_ALLOC / OP_SLAB_ALLOC: the object belongs to its task
#: (``tgid``: anonymous memory, page tables, kernel stack, the task's slab
#: objects), which the OOM killer frees when it kills the task.
TF_TASK: int = _kmm.TF_TASK
#: ``flags`` of an OP_ALLOC: the block is movable but reclaim cannot take it
#: (``PG_unevictable``: an mlocked page, or anonymous or shmem memory on a
#: machine without swap); it sits on its zone's unevictable list, which reclaim
#: never scans, and compaction migrates it. Combines with TF_TASK.
TF_UNEVICTABLE: int = _kmm.TF_UNEVICTABLE
#: cache name -> its index (the ``order`` of OP_SLAB_ALLOC)
SLAB_CACHES: dict[str, int] = {c[0]: i for i, c in enumerate(_kmm.SLAB_CACHES)}

#: One trace record (24 bytes). ``op``: OP_ALLOC / OP_FREE / OP_TOUCH / OP_TICK
#: / OP_SLAB_ALLOC / OP_SLAB_FREE / OP_SLAB_PIN;
#: ``obj``: the object id (for OP_TICK: microseconds to advance); ``order`` and
#: ``gfp`` for OP_ALLOC; ``stack``: a page_owner stack handle (0 = none);
#: ``pid``/``tgid``: the allocating task; ``flags``: TF_TASK | TF_UNEVICTABLE bits, or 0.
TRACE_DTYPE = np.dtype(
    {
        "names": ["op", "order", "flags", "obj", "gfp", "stack", "pid", "tgid"],
        "formats": ["u1", "u1", "u1", "<u4", "<u4", "<u4", "<u4", "<u4"],
        "offsets": [0, 1, 2, 4, 8, 12, 16, 20],
        "itemsize": _kmm.TRACE_RECORD_SIZE,
    }
)


def empty_trace(n: int) -> np.ndarray:
    """A zeroed trace of ``n`` records (fill ``op`` before replaying: op 0 is invalid)."""
    return np.zeros(int_arg("n", n, 0, 1 << 40, error=TraceError), dtype=TRACE_DTYPE)


def as_trace(trace: Any) -> np.ndarray:
    """Check a trace's dtype and shape; returns a C-contiguous structured array."""
    if not isinstance(trace, np.ndarray):
        raise TraceError(
            f"trace must be a numpy array of kmm.TRACE_DTYPE, not {type(trace).__name__}"
        )
    if trace.ndim != 1:
        raise TraceError(f"trace must be one-dimensional, got shape {trace.shape}")
    if trace.dtype != TRACE_DTYPE:
        # same fields, other layout (np.concatenate drops the padding): copy field by field
        names = trace.dtype.names
        if (
            names is None
            or set(names) != set(TRACE_DTYPE.names)
            or any(trace.dtype[n] != TRACE_DTYPE[n] for n in names)
        ):
            raise TraceError(f"trace dtype must be kmm.TRACE_DTYPE, got {trace.dtype}")
        out = np.empty(len(trace), dtype=TRACE_DTYPE)
        for n in names:
            out[n] = trace[n]
        return out
    return np.ascontiguousarray(trace)


def concat(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate traces byte for byte (np.concatenate copies fields and leaves
    the padding byte of each record undefined)."""
    if not parts:
        return np.zeros(0, TRACE_DTYPE)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p.view(np.uint8) for p in parts]).view(TRACE_DTYPE)


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
    t = as_trace(trace)
    every = int_arg("every", every, 1, 2**62)
    order = int_arg("order", order, 0, _kmm.MAX_ORDER - 1)
    gfp = _gfp.parse(gfp)
    stack = int_arg("stack", stack, 0, U32_MAX)
    objs = t["obj"][t["op"] != OP_TICK]
    n = t.shape[0] // every
    if obj_base is None:
        obj_base = int(objs.max()) + 1 if objs.shape[0] else 0
    obj_base = int_arg("obj_base", obj_base, 0, U32_MAX)
    if obj_base + n > 2**32:
        raise ConfigError(f"{n} leaked objects from id {obj_base} overflow 32-bit ids")
    if objs.shape[0] and n and np.any((objs >= obj_base) & (objs < obj_base + n)):
        raise ConfigError(
            f"leak ids {obj_base}..{obj_base + n - 1} collide with the trace's object ids"
        )
    if pid is None:
        pid = int(t["pid"].max()) + 1 if t.shape[0] else 1
    pid = int_arg("pid", pid, 0, U32_MAX)
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



def read_kernel(path_or_pipe: Any, *, stats: Any = None, chunk: int = _kernel_trace.CHUNK) -> _kernel_trace.KernelTrace:
    """Import a real kernel trace: ftrace ``trace``/``trace_pipe`` text or
    ``perf script`` output of the kmem page events (a path, ``-``, or an open
    binary file or pipe; zstd/gzip decompressed), see ``docs/real.md``.

    Returns a :class:`kmm.kernel_trace.KernelTrace` (``.trace``, ``.summary``,
    ``.markers``). ``stats``: the tracefs ``per_cpu/cpu*/stats`` text or path,
    whose dropped events join the summary's lost events. Raises
    :class:`kmm.ParseError` when no kmem page event parses.
    """
    data, summary = _kernel_trace.read_records(path_or_pipe, stats=stats, chunk=chunk)
    return _kernel_trace.KernelTrace(trace=np.frombuffer(data, dtype=TRACE_DTYPE), summary=summary)
