"""Real kernel traces: ftrace ``trace`` / ``trace_pipe`` text or ``perf script``
output of the kmem page events, imported into a kmm trace.

The parsing is the engine's (``kmm-core/src/ftrace.rs``, through
``kmm._kmm.KernelTraceImporter``); this module opens files, pipes and
compressed files (zstd, gzip: recognised by their magic bytes) and streams
them through the importer chunk by chunk, so memory stays proportional to the
pages the trace touches, never to its length. :func:`import_to_file` writes
the kmm trace as a ``.npy`` file record chunk by record chunk.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import _kmm
from .errors import ParseError

__all__ = ["CHUNK", "KERNEL_EVENTS", "KernelTrace", "add_ring_stats", "import_to_file", "open_input", "parse_ring_stats", "read_records"]

#: Bytes read per feed.
CHUNK = 4 << 20
#: The events the importer knows, in its order.
KERNEL_EVENTS: list[str] = list(_kmm.KERNEL_EVENTS)

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"


def _zstd_reader(raw: IO[bytes]) -> IO[bytes]:
    try:
        import zstandard
    except ImportError as e:  # pragma: no cover - zstandard is a dependency
        raise ParseError("a zstd-compressed input needs the zstandard package") from e
    return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[return-value]


def open_input(src: Any) -> IO[bytes]:
    """A binary stream of ``src``: a path (``-`` for stdin), or an open binary
    file or pipe; zstd and gzip are decompressed on the fly."""
    if isinstance(src, (str, os.PathLike)):
        if str(src) == "-":
            raw: IO[bytes] = sys.stdin.buffer
        else:
            try:
                raw = open(src, "rb")
            except OSError as e:
                raise ParseError(f"cannot open trace {os.fspath(src)!r}: {e.strerror}") from e
    elif hasattr(src, "read"):
        raw = src
        if isinstance(src, io.TextIOBase):
            raw = src.buffer  # type: ignore[attr-defined]
    else:
        raise ParseError(f"trace input must be a path or a binary file, not {type(src).__name__}")
    peek = b""
    if hasattr(raw, "peek"):
        peek = raw.peek(4)[:4]
    elif raw.seekable():
        peek = raw.read(4)
        raw.seek(0)
    if peek.startswith(_ZSTD_MAGIC):
        return _zstd_reader(raw)
    if peek.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


@dataclass
class KernelTrace:
    """An imported kernel trace: the kmm ``trace`` (:data:`kmm.TRACE_DTYPE`)
    and the importer's ``summary`` (see :func:`summary_json`)."""

    trace: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def markers(self) -> list[dict[str, Any]]:
        """The ``tracing_mark_write`` lines: text, line, record (records before it), ts_ns."""
        return list(self.summary.get("markers", []))


def _chunks(stream: IO[bytes], chunk: int) -> Iterator[bytes]:
    while True:
        b = stream.read(chunk)
        if not b:
            return
        yield b


class _Import:
    """One import: iterate to get record chunks, then read ``summary``."""

    def __init__(self, src: Any, chunk: int) -> None:
        self.src = src
        self.chunk = chunk
        self.summary: dict[str, Any] = {}

    def __iter__(self) -> Iterator[bytes]:
        im = _kmm.KernelTraceImporter()
        stream = open_input(self.src)
        try:
            try:
                for b in _chunks(stream, self.chunk):
                    im.feed(b)
                    recs = im.take_records()
                    if recs:
                        yield recs
            except OSError as e:
                raise ParseError(f"reading the trace failed: {e}") from e
            except EOFError as e:  # gzip cut short
                raise ParseError(f"compressed trace is truncated: {e}") from e
            im.finish()
            recs = im.take_records()
            if recs:
                yield recs
        finally:
            if stream is not sys.stdin.buffer and not hasattr(self.src, "read"):
                stream.close()
        self.summary = dict(im.stats())
        self.summary["live_objects"] = im.live_objects()


def read_records(path_or_pipe: Any, *, stats: Any = None, chunk: int = CHUNK) -> tuple[bytearray, dict[str, Any]]:
    """The kmm records (TRACE_DTYPE bytes) and the summary of a kernel trace;
    :func:`kmm.trace.read_kernel` makes the array."""
    run = _Import(path_or_pipe, chunk)
    data = bytearray()
    for b in run:
        data += b
    summary = run.summary
    if stats is not None:
        add_ring_stats(summary, _stats_text(stats))
    return data, summary


def _stats_text(stats: Any) -> str:
    if isinstance(stats, (str, os.PathLike)) and "\n" not in str(stats):
        try:
            return Path(stats).read_text()
        except OSError as e:
            raise ParseError(f"cannot read ring buffer stats {os.fspath(stats)!r}: {e.strerror}") from e
    return str(stats)


# A .npy header padded to a fixed size, so the record count can be written last.
_NPY_HEADER = 256


def _npy_header(dtype: np.dtype, n: int) -> bytes:
    d = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)}
    text = repr(d).encode("latin1")
    pad = _NPY_HEADER - 10 - len(text) - 1
    if pad < 0:  # pragma: no cover - the dtype is fixed
        raise AssertionError("npy header too long")
    return b"\x93NUMPY\x01\x00" + (_NPY_HEADER - 10).to_bytes(2, "little") + text + b" " * pad + b"\n"


def import_to_file(
    path_or_pipe: Any, out: str | os.PathLike[str], dtype: np.dtype, *, chunk: int = CHUNK
) -> dict[str, Any]:
    """Import a kernel trace into ``out`` (a ``.npy`` of ``dtype`` records,
    :data:`kmm.TRACE_DTYPE`; ``np.load`` reads it), streaming; returns the
    summary. ``out`` is only replaced when the import succeeded."""
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    n = 0
    run = _Import(path_or_pipe, chunk)
    try:
        with open(tmp, "wb") as f:
            f.write(_npy_header(dtype, 0))
            for b in run:
                f.write(b)
                n += len(b) // dtype.itemsize
            f.seek(0)
            f.write(_npy_header(dtype, n))
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return run.summary


def summary_json(summary: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` summary: ``lines``, ``events`` (per event name),
    ``allocations``, ``frees``, ``skipped`` (per reason), and the rest."""
    keys = ["format", "lines", "events", "allocations", "frees", "skipped"]
    out = {k: summary[k] for k in keys}
    out.update({k: v for k, v in summary.items() if k not in out})
    return out


def warnings(summary: dict[str, Any]) -> list[str]:
    """What a user must know about an import: lost events, unparsed lines, cut input."""
    w = []
    rb = summary.get("ring_buffer")
    if rb and (rb["overrun"] or rb["dropped"]):
        w.append(
            f"the ring buffer stats report {rb['dropped']} dropped and {rb['overrun']} overwritten events: "
            "the trace is incomplete (use a larger buffer_size_kb)"
        )
    if summary["lost_events"]:
        w.append(f"the ring buffer lost {summary['lost_events']} events: the trace is incomplete (use a larger buffer_size_kb)")
    if summary["truncated_last_line"]:
        w.append("the input ends in the middle of a line: that line was skipped")
    sk = summary["skipped"]
    if sk["malformed_lines"]:
        ex = summary["malformed_examples"][0]
        w.append(f"{sk['malformed_lines']} lines did not parse (first: line {ex[0]}: {ex[1]}: {ex[2]!r})")
    if sk["other_event_lines"]:
        names = ", ".join(sorted(summary["other_events"]))
        w.append(f"{sk['other_event_lines']} lines of other events skipped ({names})")
    if summary["unknown_fields"]:
        w.append(f"{summary['unknown_fields']} fields kmm does not read were ignored")
    if summary["gfp_unknown_names"]:
        w.append(f"{summary['gfp_unknown_names']} gfp flag names kmm does not know were ignored")
    if summary["alloc_of_allocated"]:
        w.append(f"{summary['alloc_of_allocated']} allocations of a page the trace still held (a free was not logged)")
    return w


def parse_ring_stats(text: str) -> dict[str, int]:
    """Sum tracefs ``per_cpu/cpu*/stats`` files (concatenated): ``entries``,
    ``overrun`` (events overwritten, overwrite mode), ``commit_overrun`` and
    ``dropped`` (events refused with ``options/overwrite`` 0)."""
    keys = {"entries": "entries", "overrun": "overrun", "commit overrun": "commit_overrun", "dropped events": "dropped"}
    out = dict.fromkeys(keys.values(), 0)
    seen = False
    for lineno, line in enumerate(text.splitlines(), 1):
        k, sep, v = line.partition(":")
        if not sep or k.strip() not in keys:
            continue
        try:
            out[keys[k.strip()]] += int(v.strip())
        except ValueError:
            raise ParseError(f"ring buffer stats line {lineno}: bad number {line!r}") from None
        seen = True
    if not seen:
        raise ParseError("not tracefs per_cpu stats: no 'entries:', 'overrun:' or 'dropped events:' line")
    return out


def add_ring_stats(summary: dict[str, Any], stats_text: str) -> dict[str, Any]:
    """Put the ring buffer's own loss counts into an import summary."""
    rs = parse_ring_stats(stats_text)
    summary["ring_buffer"] = rs
    summary["skipped"]["lost_events"] = summary["lost_events"] + rs["overrun"] + rs["dropped"]
    return summary
