"""page_owner: who allocated every page, and the tools that boil it down.

Recording lives in the engine (``Machine(page_owner=True)``); this module is
its Python face, ``m.page_owner`` (a :class:`PageOwnerView`):

>>> import kmm
>>> m = kmm.Machine(mem="64MiB", page_owner=True)
>>> h = m.page_owner.intern(kmm.symbols.chain(("kmem_getpages", 49), ("cache_grow", 173)))
>>> pfn = m.alloc(0, "GFP_KERNEL", stack=h, pid=1)
>>> print(m.page_owner.dumps("2005"), end="")
Page allocated via order 0, mask 0xd0
[0xc0146f01] kmem_getpages+49
[0xc014846d] cache_grow+173
<BLANKLINE>

and the aggregator of dump text (``Documentation/page_owner.c`` of 2005 and
today's ``tools/mm/page_owner_sort``), :func:`read`, which streams a file, a
pipe or stdin through a Rust hot loop in memory proportional to the number of
distinct records, never stat()ing its input. :func:`format_classic`,
:func:`format_sort`, :func:`format_folded` and :func:`to_json` print the
result; :meth:`PageOwnerView.groups` gives the same groups straight from a live
machine, without a text round trip.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any, Union

import numpy as np

from . import _kmm
from . import symbols as _symbols
from .errors import PageOwnerError, ParseError

if TYPE_CHECKING:  # pragma: no cover
    from .machine import Machine

__all__ = [
    "CULL_FIELDS",
    "FORMATS",
    "SORT_KEYS",
    "WORKLOAD_KINDS",
    "OwnerGroup",
    "OwnerReport",
    "PageOwnerView",
    "StackCounts",
    "aggregate",
    "cull_groups",
    "filter_groups",
    "format_classic",
    "format_folded",
    "format_sort",
    "read",
    "sort_groups",
    "to_json",
    "workload_stacks",
]

#: Dump formats: the 2005 ``/proc/page_owner`` and today's debugfs file.
FORMATS = ("2005", "modern")
#: Frames each format prints.
FRAMES_PER_FORMAT = {"2005": 8, "modern": 16}

Frame = tuple  # (address, symbol, offset, size, module | None)
Source = Union[str, "os.PathLike[str]", int, bytes, bytearray, memoryview, IO[bytes]]


# ---------------------------------------------------------------------------
# groups: one distinct record and how often it occurs


@dataclass
class OwnerGroup:
    """A distinct page_owner record and how many times it occurs.

    ``header`` is the record's first line without the per-record ``ts``
    fields; ``stack`` its stack lines as printed (and the kept optional lines).
    """

    header: str
    stack: list[str]
    order: int
    count: int
    pages: int
    mask: int | None = None
    pid: int | None = None
    tgid: int | None = None
    comm: str | None = None
    allocator: str = "OTHERS"
    first_ts: int | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The record as printed (header, stack lines; each line ends in a newline)."""
        return "".join(line + "\n" for line in [self.header, *self.stack, *self.extra])

    @property
    def stack_text(self) -> str:
        return "".join(line + "\n" for line in self.stack)

    def symbols(self) -> list[str]:
        """Function names of the stack, leaf first."""
        return [_frame_symbol(s) for s in self.stack]


@dataclass
class OwnerReport:
    """What :func:`read` found: the distinct records and counters."""

    groups: list[OwnerGroup]
    stats: dict[str, int]
    errors: list[str]

    @property
    def records(self) -> int:
        return self.stats["records"]


def _frame_symbol(line: str) -> str:
    s = line.strip()
    if s.startswith("["):
        end = s.find("]")
        if end >= 0:
            s = s[end + 1 :].strip()
    if " [" in s:  # module suffix
        s = s[: s.index(" [")]
    plus = s.find("+")
    return s[:plus] if plus > 0 else s


def _groups_from_rows(rows: Iterable[tuple]) -> list[OwnerGroup]:
    out = []
    for text, header_len, order, mask, pid, tgid, comm, allocator, _nf, count, pages, first_ts in rows:
        header = text[: header_len - 1]
        stack: list[str] = []
        extra: list[str] = []
        for line in text[header_len:].splitlines():
            (stack if line[:1] in (" ", "\t", "[") else extra).append(line)
        out.append(
            OwnerGroup(header=header, stack=stack, order=order, count=count, pages=pages, mask=mask,
                       pid=pid, tgid=tgid, comm=comm, allocator=allocator, first_ts=first_ts,
                       extra=extra)
        )
    return out


# ---------------------------------------------------------------------------
# the live view: m.page_owner


@dataclass
class StackCounts:
    """Outstanding base pages per stack handle (``page_owner_stacks/show_stacks``)."""

    handles: np.ndarray
    nr_base_pages: np.ndarray
    text: str


class PageOwnerView:
    """``m.page_owner`` of a machine built with ``page_owner=True``."""

    def __init__(self, machine: Machine) -> None:
        self._machine = machine
        self._m = machine._m
        _kmm.po_depot_stats(self._m)  # raises PageOwnerError without page_owner

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
            for name, v, hi in (("address", addr, 2**64), ("offset", off, 2**32), ("size", size, 2**32)):
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < hi:
                    raise PageOwnerError(f"frame {i}: {name} must be an int in 0..{hi - 1}, got {v!r}")
            if not isinstance(sym, str) or not (mod is None or isinstance(mod, str)):
                raise PageOwnerError(f"frame {i}: symbol and module must be strings, got {sym!r}, {mod!r}")
            norm.append((int(addr), sym, int(off), int(size), mod))
        return _kmm.po_intern(self._m, norm)

    def intern_symbols(self, calls: Sequence[tuple[str, int]]) -> int:
        """Intern a chain of ``(symbol, offset)`` pairs from :mod:`kmm.symbols`, leaf first."""
        return self.intern(_symbols.chain(*calls))

    def frames(self, handle: int) -> list[Frame]:
        """The frames behind a handle (empty for 0)."""
        return [tuple(f) for f in _kmm.po_frames(self._m, _u32("handle", handle))]

    def depot_stats(self) -> dict[str, int]:
        """Stack depot counters: stacks, frames, names, bytes, hits; and contexts."""
        return _kmm.po_depot_stats(self._m)

    # -- tasks -------------------------------------------------------------

    def set_comm(self, pid: int, comm: str) -> None:
        """Name task ``pid`` (at most 15 bytes, as ``TASK_COMM_LEN``); threads inherit their tgid's name."""
        if not isinstance(comm, str):
            raise PageOwnerError(f"comm must be a string, got {comm!r}")
        _kmm.po_set_comm(self._m, _u32("pid", pid), comm)

    def comm(self, pid: int, tgid: int | None = None) -> str:
        return _kmm.po_comm(self._m, _u32("pid", pid), _u32("tgid", pid if tgid is None else tgid))

    # -- per page ----------------------------------------------------------

    def owner(self, pfn: int) -> dict[str, int]:
        """The record of the allocated block headed by ``pfn``."""
        if isinstance(pfn, bool) or not isinstance(pfn, (int, np.integer)):
            from .errors import PfnError

            raise PfnError(f"pfn must be an int, not {type(pfn).__name__}")
        stack, order, gfp, pid, tgid, free_stack, ts = _kmm.po_record(self._m, int(pfn))
        return {"stack": stack, "order": order, "gfp": gfp, "pid": pid, "tgid": tgid,
                "free_stack": free_stack, "ts_ns": ts}

    def memory(self) -> dict[str, int]:
        """Bytes page_owner uses: per_page arrays, contexts, depot, comms, total."""
        return _kmm.po_memory(self._m)

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
        (binary, or text). Written from Rust in 1 MiB chunks.
        """
        fmt = _format(format)
        if isinstance(file, (str, os.PathLike)):
            return _kmm.po_dump_path(self._m, os.fspath(file), fmt)
        if not hasattr(file, "write"):
            raise PageOwnerError(f"dump needs a path or a file object, not {type(file).__name__}")
        if isinstance(file, io.TextIOBase):
            sink = _TextSink(file)
            n = _kmm.po_dump(self._m, sink, fmt)
            file.write(sink._dec.decode(b"", final=True))
            return n
        return _kmm.po_dump(self._m, file, fmt)

    def dumps(self, format: str = "2005") -> str:
        """The dump as a string."""
        buf = io.BytesIO()
        self.dump(buf, format)
        return buf.getvalue().decode("utf-8", "replace")

    # -- aggregation straight from the engine --------------------------------

    def stacks(self, threshold: int = 0) -> StackCounts:
        """``page_owner_stacks/show_stacks``: outstanding base pages per stack
        (handles holding at least one page, and at least ``threshold``)."""
        threshold = _u32("threshold", threshold)
        h, n = _kmm.po_stacks(self._m)
        keep = n >= max(threshold, 1)
        return StackCounts(h[keep], n[keep], _kmm.po_show_stacks(self._m, threshold))

    def show_stacks(self, threshold: int = 0) -> str:
        """The ``show_stacks`` text: frames, ``nr_base_pages: N``, a blank line, per stack."""
        return _kmm.po_show_stacks(self._m, _u32("threshold", threshold))

    def aggregate(self, by: str = "stack") -> dict[str, np.ndarray]:
        """Allocated blocks and pages per stack handle (``by="stack"``) or per
        context (``by="context"``: stack, order, gfp, pid, tgid), as numpy
        columns sorted by blocks, most first (ties by pages, then key)."""
        cols = _kmm.po_aggregate(self._m)
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
        of first appearance by pfn."""
        fmt = _format(format)
        cols = _kmm.po_aggregate(self._m)
        nframes = FRAMES_PER_FORMAT[fmt]
        stack_lines: dict[int, list[str]] = {}
        merged: dict[tuple[str, tuple[str, ...]], OwnerGroup] = {}
        for i in range(cols["stack"].shape[0]):
            h = int(cols["stack"][i])
            if h not in stack_lines:
                stack_lines[h] = [_render_frame(f, fmt) for f in self.frames(h)[:nframes]]
            order, gfp = int(cols["order"][i]), int(cols["gfp"][i])
            pid, tgid = int(cols["pid"][i]), int(cols["tgid"][i])
            if fmt == "2005":
                header = f"Page allocated via order {order}, mask {gfp:#x}"
                comm, gpid, gtgid = None, None, None
            else:
                comm = self.comm(pid, tgid)
                mask = f"{gfp:#x}" if gfp else "0"  # C's %#x prints zero bare
                header = (f"Page allocated via order {order}, mask {mask}({_kmm.gfp_names(gfp)}), "
                          f"pid {pid}, tgid {tgid} ({comm})")
                gpid, gtgid = pid, tgid
            key = (header, tuple(stack_lines[h]))
            ts = int(cols["first_ts"][i]) if fmt == "modern" else None
            g = merged.get(key)
            if g is None:
                merged[key] = OwnerGroup(
                    header=header, stack=list(stack_lines[h]), order=order, count=int(cols["blocks"][i]),
                    pages=int(cols["pages"][i]), mask=gfp, pid=gpid, tgid=gtgid, comm=comm,
                    allocator=_allocator(stack_lines[h]), first_ts=ts,
                )
            else:
                g.count += int(cols["blocks"][i])
                g.pages += int(cols["pages"][i])
                if ts is not None and g.first_ts is not None:
                    g.first_ts = min(g.first_ts, ts)
        return list(merged.values())


class _TextSink:
    """Adapts a text file to the binary ``write`` the dump calls."""

    def __init__(self, f: IO[str]) -> None:
        import codecs

        self._f = f
        # a comm may be UTF-8 split across two chunks
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, b: bytes) -> int:
        self._f.write(self._dec.decode(b))
        return len(b)


def _render_frame(f: Frame, fmt: str) -> str:
    addr, sym, off, size, mod = f
    if fmt == "2005":
        return f"[{addr:#x}] {sym}+{off}"
    return f" {sym}+{off:#x}/{size:#x}" + (f" [{mod}]" if mod else "")


def _allocator(stack: Sequence[str]) -> str:
    text = "\n".join(stack)
    if "cma_alloc" in text:
        return "CMA"
    if any(k in text for k in ("slab_alloc", "kmem_cache_alloc", "kmem_getpages", "cache_grow",
                                "allocate_slab", "new_slab")):
        return "SLAB"
    if "vmalloc" in text:
        return "VMALLOC"
    return "OTHERS"


def _format(format: str) -> str:
    if format not in FORMATS:
        raise PageOwnerError(f"unknown page_owner dump format {format!r} (expected one of {', '.join(FORMATS)})")
    return format


def _u32(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < 2**32:
        raise PageOwnerError(f"{name} must be an int in 0..2**32-1, got {v!r}")
    return int(v)


def view(machine: Machine) -> PageOwnerView:
    """The page_owner view of a machine (what ``Machine.page_owner`` returns)."""
    return PageOwnerView(machine)


# ---------------------------------------------------------------------------
# reading dump text


def read(
    source: Source,
    *,
    lenient: bool = False,
    progress: bool = False,
    chunk_size: int = 4 << 20,
) -> OwnerReport:
    """Aggregate a page_owner dump (either format, or a real kernel's).

    ``source``: a path, ``"-"`` for stdin, a file descriptor, the bytes
    themselves, or a binary file object. Paths, stdin and descriptors are read
    with ``read(2)`` only (never ``stat()``, so ``/proc`` files and pipes work);
    memory stays proportional to the number of distinct records. Identical
    records are merged ignoring per-record ``ts`` and PFN lines. A malformed
    record raises :class:`kmm.errors.ParseError` naming its line; with
    ``lenient`` it is skipped and counted (``stats["skipped"]``, ``errors``).
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or not 4096 <= chunk_size <= 256 << 20:
        raise ParseError(f"chunk_size must be an int in 4096..{256 << 20}, got {chunk_size!r}")
    agg = _kmm.OwnerTextAggregator(bool(lenient))
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
    return OwnerReport(_groups_from_rows(agg.groups()), dict(agg.stats()), list(agg.errors()))


#: :func:`read` under the name of what it does.
aggregate = read


def _read_fd(agg: Any, fd: int, chunk_size: int, bar: Any) -> None:
    while True:
        try:
            n = agg.feed_fd(fd, chunk_size)
        except OSError as e:
            if "Is a directory" in str(e):
                raise ParseError(f"cannot read page_owner text: {e}") from None
            raise
        if n == 0:
            return
        if bar is not None:
            bar.update(n)


def _progress_bar() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(unit="B", unit_scale=True, unit_divisor=1024, desc="page_owner", file=sys.stderr,
                mininterval=0.5, leave=False)


# ---------------------------------------------------------------------------
# sorting, filtering, culling (page_owner_sort semantics)

#: ``--sort`` keys and their short names (page_owner_sort's, plus times and pages).
SORT_KEYS: dict[str, str] = {
    "p": "pid", "pid": "pid",
    "tg": "tgid", "tgid": "tgid",
    "n": "name", "name": "name",
    "st": "stacktrace", "stacktrace": "stacktrace",
    "T": "txt", "txt": "txt",
    "at": "alloc_ts", "alloc_ts": "alloc_ts",
    "ator": "allocator", "allocator": "allocator",
    "t": "times", "times": "times",
    "m": "pages", "pages": "pages",
}
#: ``--cull`` fields.
CULL_FIELDS = ("pid", "tgid", "name", "stacktrace", "allocator")


def _key_value(g: OwnerGroup, key: str) -> Any:
    if key == "pid":
        return -1 if g.pid is None else g.pid
    if key == "tgid":
        return -1 if g.tgid is None else g.tgid
    if key == "name":
        return g.comm or ""
    if key == "stacktrace":
        return g.stack_text
    if key == "txt":
        return g.text
    if key == "alloc_ts":
        return -1 if g.first_ts is None else g.first_ts
    if key == "allocator":
        return g.allocator
    if key == "times":
        return g.count
    if key == "pages":
        return g.pages
    raise PageOwnerError(f"unknown sort key {key!r} (expected one of {', '.join(sorted(set(SORT_KEYS)))})")


def parse_sort(spec: str) -> list[tuple[str, bool]]:
    """``"n,+pid,-tgid"`` -> [(key, descending)]: ascending unless prefixed with '-'."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        desc = part.startswith("-")
        name = part.lstrip("+-")
        if name not in SORT_KEYS:
            raise PageOwnerError(
                f"unknown sort key {name!r} in {spec!r} (expected one of {', '.join(sorted(SORT_KEYS))})"
            )
        out.append((SORT_KEYS[name], desc))
    if not out:
        raise PageOwnerError("empty --sort specification")
    return out


def sort_groups(groups: Sequence[OwnerGroup], keys: Sequence[tuple[str, bool]] | str = "-times") -> list[OwnerGroup]:
    """Sort by keys (first key most significant); ties keep input order."""
    if isinstance(keys, str):
        keys = parse_sort(keys)
    out = list(groups)
    for key, desc in reversed(list(keys)):
        out.sort(key=lambda g: _key_value(g, key), reverse=desc)
    return out


def filter_groups(
    groups: Iterable[OwnerGroup],
    *,
    pids: Iterable[int] | None = None,
    tgids: Iterable[int] | None = None,
    names: Iterable[str] | None = None,
) -> list[OwnerGroup]:
    """Keep the groups whose pid, tgid and comm are in the given lists (None: any)."""
    p = None if pids is None else set(pids)
    t = None if tgids is None else set(tgids)
    n = None if names is None else set(names)
    return [
        g for g in groups
        if (p is None or g.pid in p) and (t is None or g.tgid in t) and (n is None or g.comm in n)
    ]


def cull_groups(groups: Iterable[OwnerGroup], fields: Iterable[str]) -> list[OwnerGroup]:
    """Merge groups that agree on ``fields`` (page_owner_sort ``--cull``)."""
    fs = list(fields)
    for f in fs:
        if f not in CULL_FIELDS:
            raise PageOwnerError(f"unknown cull field {f!r} (expected some of {', '.join(CULL_FIELDS)})")
    merged: dict[tuple, OwnerGroup] = {}
    for g in groups:
        key = tuple(
            {"pid": g.pid, "tgid": g.tgid, "name": g.comm, "stacktrace": g.stack_text,
             "allocator": g.allocator}[f]
            for f in fs
        )
        m = merged.get(key)
        if m is None:
            merged[key] = replace(g, stack=list(g.stack), extra=list(g.extra))
        else:
            m.count += g.count
            m.pages += g.pages
            if g.first_ts is not None:
                m.first_ts = g.first_ts if m.first_ts is None else min(m.first_ts, g.first_ts)
    return list(merged.values())


# ---------------------------------------------------------------------------
# output


def format_classic(groups: Iterable[OwnerGroup]) -> str:
    """``Documentation/page_owner.c`` output: ``N times:``, the record, a blank line."""
    return "".join(f"{g.count} times:\n{g.text}\n" for g in groups)


def format_sort(
    groups: Iterable[OwnerGroup],
    *,
    cull: Iterable[str] = (),
    filtered: Iterable[str] = (),
) -> str:
    """page_owner_sort output. Without ``cull``: ``N times, P pages, allocated
    by ALLOCATOR:`` then the record and a blank line. With ``cull`` (and for
    the fields in ``filtered``: "pid", "tgid", "name"): ``N times, P pages``
    then ``, PID x``, ``, TGID y``, ``, task_comm_name: z``, ``, allocated by
    A`` as culled or filtered, and the stack when culled by stacktrace."""
    c = set(cull)
    f = set(filtered)
    out = []
    for g in groups:
        if not c:
            out.append(f"{g.count} times, {g.pages} pages, allocated by {g.allocator}:\n{g.text}\n")
            continue
        s = f"{g.count} times, {g.pages} pages"
        if "pid" in c or "pid" in f:
            s += f", PID {-1 if g.pid is None else g.pid}"
        if "tgid" in c or "tgid" in f:
            s += f", TGID {-1 if g.tgid is None else g.tgid}"
        if "name" in c or "name" in f:
            s += f", task_comm_name: {g.comm or ''}"
        if "allocator" in c:
            s += f", allocated by {g.allocator}"
        if "stacktrace" in c:
            s += ":\n" + g.stack_text
        out.append(s + "\n")
    return "".join(out)


def format_folded(groups: Iterable[OwnerGroup]) -> str:
    """Folded stacks for flame graphs: frames root first joined by ';', a
    space, the pages; identical stacks merged, most pages first."""
    acc: dict[str, int] = {}
    for g in groups:
        syms = g.symbols()
        if not syms:
            syms = ["[no stack]"]
        key = ";".join(reversed(syms))
        acc[key] = acc.get(key, 0) + g.pages
    return "".join(f"{k} {v}\n" for k, v in sorted(acc.items(), key=lambda kv: (-kv[1], kv[0])))


def to_json(groups: Iterable[OwnerGroup], stats: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A JSON-ready dict: the groups (count, pages, order, mask, pid, tgid,
    comm, allocator, first_ts, header, stack) and the read counters."""
    gl = [
        {
            "count": g.count, "pages": g.pages, "order": g.order, "mask": g.mask, "pid": g.pid,
            "tgid": g.tgid, "comm": g.comm, "allocator": g.allocator, "first_ts": g.first_ts,
            "header": g.header, "stack": [s.strip() for s in g.stack], "symbols": g.symbols(),
            "extra": g.extra,
        }
        for g in groups
    ]
    return {"groups": gl, "stats": dict(stats or {})}


# ---------------------------------------------------------------------------
# workload call chains

#: The workload kinds that get a call chain (those of :mod:`kmm.workloads`
#: and the high-order benchmark's test module).
WORKLOAD_KINDS: tuple[str, ...] = tuple(_symbols.CHAINS)


def workload_stacks(machine: Machine) -> dict[str, int]:
    """Intern a realistic call chain for every workload kind; returns kind -> handle.

    Pass the result as ``stacks=`` to the generators of :mod:`kmm.workloads`.
    """
    po = machine.page_owner
    return {kind: po.intern_symbols(calls) for kind, calls in _symbols.CHAINS.items()}
