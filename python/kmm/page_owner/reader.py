"""Reading page_owner dump text: :func:`read`.

The text is parsed and merged in Rust (``_kmm.OwnerTextAggregator``); this
module only gets the bytes there, from a path, stdin, a descriptor, a file
object or a buffer.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, Any, Union

from .. import _kmm
from .._args import int_arg
from ..errors import ParseError
from .group import OwnerReport

__all__ = ["Source", "aggregate", "aggregator", "read"]

Source = Union[str, "os.PathLike[str]", int, bytes, bytearray, memoryview, IO[bytes]]


def read(
    source: Source,
    *,
    lenient: bool = False,
    progress: bool = False,
    chunk_size: int = 4 << 20,
    cull: Sequence[str] | None = None,
    pids: Sequence[int] | None = None,
    tgids: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
) -> OwnerReport:
    """Aggregate a page_owner dump (either format, a real kernel's, or a
    ``page_owner_stacks`` file: ``show_stacks``, or ``show_handles`` joined on
    the handle with a ``show_stacks_handles`` read before it).

    ``source``: a path, ``"-"`` for stdin, a file descriptor, the bytes
    themselves, or a binary file object. Paths, stdin and descriptors are read
    with ``read(2)`` only (never ``stat()``, so ``/proc`` files and pipes work).
    Each record is folded into its group as it is parsed: identical records
    (ignoring the per-record ``ts`` and PFN lines), or with ``cull`` records
    that agree on those fields (``pid tgid name stacktrace allocator``);
    ``pids``/``tgids``/``names`` keep only matching records. A malformed
    record raises :class:`kmm.errors.ParseError` naming its line; with
    ``lenient`` it is skipped and counted (``stats["skipped"]``, ``errors``).
    """
    agg = aggregator(source, lenient=lenient, progress=progress, chunk_size=chunk_size, cull=cull,
                     pids=pids, tgids=tgids, names=names)
    return OwnerReport(agg.table())


def aggregator(
    source: Source,
    *,
    lenient: bool = False,
    progress: bool = False,
    chunk_size: int = 4 << 20,
    cull: Sequence[str] | None = None,
    pids: Sequence[int] | None = None,
    tgids: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
) -> _kmm.OwnerTextAggregator:
    """:func:`read`, but the fed and finished Rust aggregator itself
    (``stats()``, ``errors()``; ``table()`` moves its groups out into the
    ``OwnerTable`` a report is made of)."""
    int_arg("chunk_size", chunk_size, 4096, 256 << 20, error=ParseError)
    agg = _kmm.OwnerTextAggregator(
        bool(lenient),
        cull=None if cull is None else list(cull),
        pids=None if pids is None else [int(p) for p in pids],
        tgids=None if tgids is None else [int(t) for t in tgids],
        names=None if names is None else list(names),
    )
    bar = _progress_bar() if progress else None
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            for i in range(0, len(data), chunk_size):
                agg.feed(data[i : i + chunk_size])
                if bar is not None:
                    bar.update(min(chunk_size, len(data) - i))
        elif isinstance(source, int) and not isinstance(source, bool):
            _read_fd(agg, source, chunk_size, bar)
        elif isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if path == "-":
                _read_fd(agg, sys.stdin.fileno(), chunk_size, bar)
            else:
                try:
                    fd = os.open(path, os.O_RDONLY)
                except OSError as e:
                    raise ParseError(f"cannot open {path}: {e.strerror}") from None
                try:
                    _read_fd(agg, fd, chunk_size, bar)
                finally:
                    os.close(fd)
        elif hasattr(source, "read"):
            while True:
                b = source.read(chunk_size)
                if not b:
                    break
                if isinstance(b, str):
                    b = b.encode("utf-8", "surrogateescape")
                agg.feed(b)
                if bar is not None:
                    bar.update(len(b))
        else:
            raise ParseError(f"cannot read page_owner text from {type(source).__name__}")
        agg.finish()
    finally:
        if bar is not None:
            bar.close()
    return agg


#: :func:`read` under the name of what it does.
aggregate = read


def _read_fd(agg: Any, fd: int, chunk_size: int, bar: Any) -> None:
    """Rust reads the descriptor itself to its end, with the GIL released (a
    big regular file on both cores, with or without a progress bar, which it
    updates about ten times a second); ``chunk_size`` does not apply."""
    threads = min(2, os.cpu_count() or 1)
    if bar is None:
        agg.feed_fd(fd, threads=threads)
        return

    def progress(n: int) -> None:
        bar.update(n - bar.n)

    agg.feed_fd(fd, threads=threads, progress=progress)
    progress(agg.stats()["bytes"])


def _progress_bar() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(unit="B", unit_scale=True, unit_divisor=1024, desc="page_owner", file=sys.stderr,
                mininterval=0.5, leave=False)
