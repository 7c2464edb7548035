"""The live view of a machine's page_owner: ``m.page_owner``, a :class:`PageOwnerView`.

A thin layer over ``_kmm.PageOwner``: argument checks and conversion to
Python types. All text (dumps, ``show_stacks``, groups) is rendered in Rust.
"""

from __future__ import annotations

import codecs
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

import numpy as np

from .. import _kmm
from .. import symbols as _symbols
from .._args import U32_MAX, U64_MAX, int_arg
from ..errors import PageOwnerError, PfnError, busy_guard
from .group import OwnerGroup, groups_of

__all__ = ["FORMATS", "WORKLOAD_KINDS", "PageOwnerView", "StackCounts", "workload_stacks"]

#: Dump formats: the 2005 ``/proc/page_owner`` and today's debugfs file.
FORMATS = ("2005", "modern")

Frame = tuple  # (address, symbol, offset, size, module | None)


class _Machine(Protocol):
    """What the view needs of a :class:`kmm.Machine`: its engine."""

    _m: _kmm.Machine


@dataclass
class StackCounts:
    """Outstanding base pages per stack handle (``page_owner_stacks/show_stacks``)."""

    handles: np.ndarray
    nr_base_pages: np.ndarray
    text: str


@busy_guard
class PageOwnerView:
    """``m.page_owner`` of a machine built with ``page_owner=True``."""

    def __init__(self, machine: _Machine) -> None:
        self._po = _kmm.PageOwner(machine._m)  # raises PageOwnerError without page_owner

    # -- the stack depot ---------------------------------------------------

    def intern(self, frames: Sequence[Sequence[Any]]) -> int:
        """Intern a call chain, leaf first; returns its 32-bit handle (never 0).

        Each frame is ``(address, symbol, offset, size)`` or with a fifth item,
        the module name (or None). Interning a known chain returns its handle.
        """
        if isinstance(frames, (str, bytes)) or not isinstance(frames, Sequence):
            raise PageOwnerError("frames must be a sequence of (address, symbol, offset, size[, module])")
        norm = []
        for i, f in enumerate(frames):
            if isinstance(f, (str, bytes)) or not isinstance(f, Sequence) or len(f) not in (4, 5):
                raise PageOwnerError(
                    f"frame {i} must be (address, symbol, offset, size[, module]), got {f!r}"
                )
            addr, sym, off, size = f[0], f[1], f[2], f[3]
            mod = f[4] if len(f) == 5 else None
            for name, v, hi in (("address", addr, U64_MAX), ("offset", off, U32_MAX), ("size", size, U32_MAX)):
                int_arg(f"frame {i}: {name}", v, 0, hi, error=PageOwnerError)
            if not isinstance(sym, str) or not (mod is None or isinstance(mod, str)):
                raise PageOwnerError(f"frame {i}: symbol and module must be strings, got {sym!r}, {mod!r}")
            norm.append((int(addr), sym, int(off), int(size), mod))
        return self._po.intern(norm)

    def intern_symbols(self, calls: Sequence[tuple[str, int]]) -> int:
        """Intern a chain of ``(symbol, offset)`` pairs from :mod:`kmm.symbols`, leaf first."""
        return self.intern(_symbols.chain(*calls))

    def frames(self, handle: int) -> list[Frame]:
        """The frames behind a handle (empty for 0)."""
        return [tuple(f) for f in self._po.frames(int_arg("handle", handle, 0, U32_MAX, error=PageOwnerError))]

    def depot_stats(self) -> dict[str, int]:
        """Stack depot counters: stacks, frames, names, bytes, hits; and contexts."""
        return self._po.depot_stats()

    # -- tasks -------------------------------------------------------------

    def set_comm(self, pid: int, comm: str) -> None:
        """Name task ``pid`` (at most 15 bytes, as ``TASK_COMM_LEN``); threads inherit their tgid's name."""
        if not isinstance(comm, str):
            raise PageOwnerError(f"comm must be a string, got {comm!r}")
        self._po.set_comm(int_arg("pid", pid, 0, U32_MAX, error=PageOwnerError), comm)

    def comm(self, pid: int, tgid: int | None = None) -> str:
        return self._po.comm(int_arg("pid", pid, 0, U32_MAX, error=PageOwnerError), int_arg("tgid", pid if tgid is None else tgid, 0, U32_MAX, error=PageOwnerError))

    # -- per page ----------------------------------------------------------

    def owner(self, pfn: int) -> dict[str, Any]:
        """The record of the allocated block headed by ``pfn``; ``last_migrate_reason``
        is ``"compaction"`` once compaction moved the block there, else None."""
        stack, order, gfp, pid, tgid, free_stack, ts, reason = self._po.record(
            int_arg("pfn", pfn, 0, U64_MAX, error=PfnError))
        return {"stack": stack, "order": order, "gfp": gfp, "pid": pid, "tgid": tgid,
                "free_stack": free_stack, "ts_ns": ts, "last_migrate_reason": reason}

    def memory(self) -> dict[str, int]:
        """Bytes page_owner uses: per_page arrays, contexts, depot, comms, total."""
        return self._po.memory()

    def bytes_per_page(self) -> float:
        """page_owner memory divided by the machine's pages (the 2005 patch: 36)."""
        mem = self.memory()
        return mem["total"] / mem["nr_pages"]

    # -- dumps -------------------------------------------------------------

    def dump(self, file: str | os.PathLike[str] | IO[Any], format: str = "2005") -> int:
        """Write the dump of every allocated head page, in pfn order; returns the records.

        ``format``: "2005" (``/proc/page_owner``: ``Page allocated via order N,
        mask 0x..`` and ``[0x...] symbol+offset`` lines) or "modern"
        (``/sys/kernel/debug/page_owner``). ``file``: a path, or a file object
        (binary, or text). Rendered in Rust in 1 MiB chunks; a short write
        (``write`` returning fewer bytes than given) gets the rest again, a
        write that takes nothing is a PageOwnerError, and an error ``write``
        raises reaches the caller as it is, whatever the dump's size (an
        empty dump still makes one ``write`` call).
        """
        fmt = _format(format)
        if isinstance(file, (str, os.PathLike)):
            with open(file, "wb") as f:
                return self._po.dump(f, fmt)
        if not hasattr(file, "write"):
            raise PageOwnerError(f"dump needs a path or a file object, not {type(file).__name__}")
        if isinstance(file, io.TextIOBase):
            sink = _TextSink(file)
            n = self._po.dump(sink, fmt)
            file.write(sink._dec.decode(b"", final=True))
            return n
        return self._po.dump(file, fmt)

    def dumps(self, format: str = "2005") -> str:
        """The dump as a string."""
        buf = io.BytesIO()
        self.dump(buf, format)
        return buf.getvalue().decode("utf-8", "replace")

    # -- aggregation straight from the engine --------------------------------

    def stacks(self, threshold: int = 0) -> StackCounts:
        """``page_owner_stacks/show_stacks``: outstanding base pages per stack
        (handles holding at least one page, and at least ``threshold``)."""
        threshold = int_arg("threshold", threshold, 0, U32_MAX, error=PageOwnerError)
        h, n = self._po.stacks()
        keep = n >= max(threshold, 1)
        return StackCounts(h[keep], n[keep], self._po.show_stacks(threshold))

    def show_stacks(self, threshold: int = 0) -> str:
        """The ``show_stacks`` text: frames, ``nr_base_pages: N``, a blank line, per stack."""
        return self._po.show_stacks(int_arg("threshold", threshold, 0, U32_MAX, error=PageOwnerError))

    def show_handles(self, threshold: int = 0) -> str:
        """The ``show_handles`` text (6.19): ``handle: H``, ``nr_base_pages: N``, a blank line, per stack."""
        return self._po.show_handles(int_arg("threshold", threshold, 0, U32_MAX, error=PageOwnerError))

    def show_stacks_handles(self, threshold: int = 0) -> str:
        """The ``show_stacks_handles`` text (6.19): frames, ``handle: H``, a blank line, per stack."""
        return self._po.show_stacks_handles(int_arg("threshold", threshold, 0, U32_MAX, error=PageOwnerError))

    def aggregate(self, by: str = "stack") -> dict[str, np.ndarray]:
        """Allocated blocks and pages per stack handle (``by="stack"``) or per
        context (``by="context"``: stack, order, gfp, pid, tgid), as numpy
        columns sorted by blocks, most first (ties by pages, then key)."""
        cols = self._po.aggregate()
        if by == "context":
            out = dict(cols)
        elif by == "stack":
            stacks, inv = np.unique(cols["stack"], return_inverse=True)
            out = {
                "stack": stacks.astype(np.uint32),
                "blocks": np.bincount(inv, weights=cols["blocks"], minlength=stacks.shape[0]).astype(np.uint64),
                "pages": np.bincount(inv, weights=cols["pages"], minlength=stacks.shape[0]).astype(np.uint64),
            }
        else:
            raise PageOwnerError(f"aggregate by {by!r}: expected 'stack' or 'context'")
        order = np.lexsort((out["stack"], -out["pages"].astype(np.int64), -out["blocks"].astype(np.int64)))
        return {k: v[order] for k, v in out.items()}

    def groups(self, format: str = "modern") -> list[OwnerGroup]:
        """The groups a text aggregation of ``dump(format=...)`` finds, straight
        from the engine (same headers, stack lines and counts), in the order
        of first appearance by pfn. They are rows of a Rust table, which
        :func:`kmm.page_owner.sort_groups`, :func:`kmm.page_owner.format_sort`
        and the others work on as on the groups of :func:`kmm.page_owner.read`."""
        return groups_of(self._po.groups(_format(format)))


class _TextSink:
    """Adapts a text file to the binary ``write`` the dump calls."""

    def __init__(self, f: IO[str]) -> None:
        self._f = f
        # a comm may be UTF-8 split across two chunks
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, b: bytes) -> int:
        self._f.write(self._dec.decode(b))
        return len(b)


def _format(format: str) -> str:
    if format not in FORMATS:
        raise PageOwnerError(f"unknown page_owner dump format {format!r} (expected one of {', '.join(FORMATS)})")
    return format



# ---------------------------------------------------------------------------
# workload call chains

#: The workload kinds that get a call chain (those of :mod:`kmm.workloads`
#: and the high-order benchmark's test module).
WORKLOAD_KINDS: tuple[str, ...] = tuple(_symbols.CHAINS)


class _WithPageOwner(Protocol):
    @property
    def page_owner(self) -> PageOwnerView: ...


def workload_stacks(machine: _WithPageOwner) -> dict[str, int]:
    """Intern a realistic call chain for every workload kind; returns kind -> handle.

    Pass the result as ``stacks=`` to the generators of :mod:`kmm.workloads`.
    """
    po = machine.page_owner
    return {kind: po.intern_symbols(calls) for kind, calls in _symbols.CHAINS.items()}
