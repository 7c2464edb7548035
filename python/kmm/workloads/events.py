"""Events: the records sources generate before they become trace records,
and the windows of simulated time they are generated in."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..trace import OP_TOUCH

# internal op: a cache access, resolved at emission into OP_ALLOC (first access
# of that page) or OP_TOUCH (it is in the page cache / slab already)
OP_ACCESS = 5


#: no pin target (the ``pin`` field of an event)
NO_PIN = 0xFFFFFFFF

MS = 1000  # microseconds
WIN_US = 1_000_000  # generation window: 1 s of simulated time


# events before they become trace records
EV = np.dtype(
    [
        ("t", "<i8"),
        ("op", "u1"),
        ("order", "u1"),
        ("kind", "u1"),
        ("proc", "u1"),  # 1 = owned by a process (freed when it exits / at stop())
        ("obj", "<u4"),
        ("pid", "<u4"),
        # the slab object (an inode) this object pins from its first allocation
        # on (OP_SLAB_PIN), NO_PIN for none
        ("pin", "<u4"),
    ]
)


def events(
    t: Any,
    op: int,
    obj: Any,
    pid: Any,
    kind: Any,
    order: int = 0,
    proc: int = 1,
    pin: Any = NO_PIN,
) -> np.ndarray:
    """Events at times ``t`` (µs); the other fields are scalars or arrays like ``t``.

    ``pin``: the object each pins once it is first allocated (a page of a file
    or a dentry pinning the file's inode), which must be allocated before it.
    """
    t = np.asarray(t, dtype=np.int64)
    e = np.empty(t.shape[0], dtype=EV)
    e["t"] = t
    e["op"] = op
    e["order"] = order
    e["kind"] = kind
    e["proc"] = proc
    e["obj"] = obj
    e["pid"] = pid
    e["pin"] = pin
    return e


class Touches:
    """Touches of pages by the processes owning them, kept as draws rather than
    events (the engine makes the events as it takes them, ``Emitter::push_touches``):
    page ``i`` (object ``obj[i]`` of ``pid[i]``) is touched ``n[i]`` times, at
    ``t0[i] + trunc(u * (t1[i] - t0[i]))`` for its ``n[i]`` draws ``u`` in turn
    (the same events ``events(t, OP_TOUCH, ...)`` of those times would be)."""

    __slots__ = ("kind", "n", "obj", "pid", "proc", "t0", "t1", "u")

    def __init__(
        self, u: np.ndarray, n: np.ndarray, t0: np.ndarray, t1: np.ndarray, obj: np.ndarray,
        pid: np.ndarray, kind: int, proc: int,
    ) -> None:
        self.u = np.ascontiguousarray(u, dtype=np.float64)
        self.n = np.ascontiguousarray(n, dtype=np.int64)
        self.t0 = np.ascontiguousarray(t0, dtype=np.int64)
        self.t1 = np.ascontiguousarray(t1, dtype=np.int64)
        self.obj = np.ascontiguousarray(obj).astype(np.uint32, copy=False)
        self.pid = np.ascontiguousarray(pid).astype(np.uint32, copy=False)
        self.kind = int(kind)
        self.proc = int(proc)

    @property
    def shape(self) -> tuple[int]:
        return self.u.shape

    def as_events(self) -> np.ndarray:
        """The touches as events (in draw order)."""
        r = np.repeat(np.arange(self.n.shape[0]), self.n)
        t = self.t0[r] + (self.u * (self.t1 - self.t0)[r]).astype(np.int64)
        return events(t, OP_TOUCH, self.obj[r], self.pid[r], self.kind, proc=self.proc)


def window_sorted(t_us: np.ndarray, w: int) -> np.ndarray:
    """:func:`window` of times sorted in increasing order (a range of indices,
    found by bisection)."""
    lo, hi = np.searchsorted(t_us, (w * WIN_US, (w + 1) * WIN_US))
    return np.arange(lo, hi)


class SortedWindows:
    """:func:`window_sorted` of one array of sorted times for every window,
    the bisections made once (``np.searchsorted`` of all the windows' starts)."""

    __slots__ = ("edges",)

    def __init__(self, t_us: np.ndarray) -> None:
        n = 1 if t_us.shape[0] == 0 else max(0, int(t_us[-1]) // WIN_US) + 2
        self.edges = np.searchsorted(t_us, np.arange(n, dtype=np.int64) * WIN_US).tolist()

    def __call__(self, w: int) -> np.ndarray:
        e = self.edges
        if w < 0 or w + 1 >= len(e):
            return _NO_INDEX
        return np.arange(e[w], e[w + 1])


_NO_INDEX = np.arange(0)


def window(t_us: np.ndarray, w: int) -> np.ndarray:
    """Indices of the times ``t_us`` that fall in generation window ``w``."""
    return np.nonzero((t_us >= w * WIN_US) & (t_us < (w + 1) * WIN_US))[0]
