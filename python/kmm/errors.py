"""Exceptions raised by kmm.

Every error kmm raises is a :class:`KmmError`.  Errors about a bad value also
subclass :class:`ValueError`, as Python code expects.  The Rust engine raises
these same classes (the binding imports them from here, one per error kind of
the engine), and an engine call that fails leaves the machine exactly as it was.
A panic inside the engine is a bare :class:`KmmError`; the machine it hit is
unusable afterwards.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MachineBusyError",
    "KmmError",
    "ConfigError",
    "GfpError",
    "OrderError",
    "PfnError",
    "DoubleFreeError",
    "TraceError",
    "ParseError",
    "InvariantError",
    "PageOwnerError",
    "NicError",
    "NicWorkerError",
    "BenchmarkError",
    "SweepError",
    "SnapshotError",
    "NeedsRootError",
]


class KmmError(Exception):
    """Base class of every kmm error."""


class ConfigError(KmmError, ValueError):
    """A machine, allocator or tunable setting that cannot work."""


class GfpError(KmmError, ValueError):
    """Unknown GFP bits or names, or a combination the kernel forbids."""


class OrderError(KmmError, ValueError):
    """An allocation order outside 0..MAX_ORDER-1."""


class PfnError(KmmError, ValueError):
    """A pfn out of range, or not the head of an allocated block."""


class DoubleFreeError(PfnError):
    """A block freed twice."""


class TraceError(KmmError, ValueError):
    """A trace with the wrong dtype or shape, or out-of-range or inconsistent operations."""


class ParseError(KmmError, ValueError):
    """Malformed /proc or debugfs text (names the line)."""


class InvariantError(KmmError, AssertionError):
    """``Machine.check()`` found a broken allocator invariant (names the first one)."""


class PageOwnerError(KmmError):
    """page_owner misuse: a machine built without it, an unknown stack handle..."""


class NicError(KmmError, ValueError):
    """A NIC ring configuration that cannot work."""


class NicWorkerError(KmmError, RuntimeError):
    """A NIC worker thread failed (panicked or timed out); the run was torn down."""


class MachineBusyError(KmmError, RuntimeError):
    """The machine is in use by another thread (a replay, a dump...); nothing changed.

    A machine serves one call at a time: a call made from another thread while
    a long one runs is refused, not queued.
    """


def busy_guard(cls: type) -> type:
    """Turn the binding's borrow conflict (another thread's call holds the machine)
    into :class:`MachineBusyError` in every public method of ``cls``."""
    import functools

    def wrap(f: Any) -> Any:
        @functools.wraps(f)
        def g(*a: Any, **k: Any) -> Any:
            try:
                return f(*a, **k)
            except RuntimeError as e:
                if type(e) is RuntimeError and "borrowed" in str(e):
                    raise MachineBusyError(
                        "machine busy in another thread (one call at a time per machine)"
                    ) from None
                raise

        return g

    for name, f in list(vars(cls).items()):
        if callable(f) and not name.startswith("__"):
            setattr(cls, name, wrap(f))
    return cls


class BenchmarkError(KmmError, ValueError):
    """Benchmark options out of range."""


class SweepError(KmmError, ValueError):
    """A sweep that cannot run: a bad grid, an unreachable scheduler, a results directory of another kind."""


class SnapshotError(ParseError):
    """A real machine's snapshot that is truncated, inconsistent or cannot be read."""


class NeedsRootError(SnapshotError, PermissionError):
    """Reading a live machine needs root (names the file that refused)."""
