"""Snapshots of a real machine's physical memory (``/proc/kpageflags``: Documentation/admin-guide/mm/pagemap.rst).

A snapshot is the machine's ``/proc`` memory files, named as the kernel names
them: ``buddyinfo``, ``pagetypeinfo``, ``zoneinfo``, ``vmstat``, ``meminfo``,
``kpageflags`` and ``kpagecount`` (one little-endian u64 per pfn from pfn 0),
optionally debugfs ``extfrag/`` ``unusable_index`` and ``extfrag_index``, and
``buddyinfo.after``, buddyinfo read again after the big files (equal to
``buddyinfo``: nothing moved while reading; the snapshot is *consistent*).

On disk a snapshot is one file, a tar archive compressed with zstd whose first
member ``kmm-snapshot.json`` holds the label and how it was taken, or a
directory of the same files (``kpageflags`` and ``kpagecount`` may be
``.zst``-compressed there, as ``shared/real/`` holds them). Every reader here
accepts both.

In a snapshot file (format ``kmm-snapshot 2``) each u64 array is stored as
its distinct words (``NAME.words``, little-endian u64, sorted) and one index
into them per pfn (``NAME.index``, u8 when there are at most 256 words, else
u16 little-endian; a real machine's kpageflags has a few hundred distinct
words and kpagecount a few dozen), which zstd packs two to three times
smaller than the raw words; an array of more than 65,536 distinct words is
stored raw. Format 1 files (raw arrays) are read as before.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NeedsRootError, SnapshotError

__all__ = [
    "FORMAT",
    "OPTIONAL_FILES",
    "REQUIRED_FILES",
    "RealZone",
    "Snapshot",
    "load",
    "load_stream",
    "pack_dir",
    "parse_block_counts",
    "parse_zoneinfo",
    "take",
    "write",
]

FORMAT = "kmm-snapshot 2"
#: formats a reader accepts (1: the u64 arrays stored raw)
READ_FORMATS = ("kmm-snapshot 1", FORMAT)
META = "kmm-snapshot.json"
REQUIRED_FILES = ("buddyinfo", "pagetypeinfo", "zoneinfo", "vmstat", "meminfo", "kpageflags", "kpagecount")
OPTIONAL_FILES = ("buddyinfo.after", "unusable_index", "extfrag_index")
BINARY_FILES = ("kpageflags", "kpagecount")
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

#: Where a live machine keeps each file.
LIVE_PATHS = {
    "buddyinfo": "/proc/buddyinfo",
    "pagetypeinfo": "/proc/pagetypeinfo",
    "zoneinfo": "/proc/zoneinfo",
    "vmstat": "/proc/vmstat",
    "meminfo": "/proc/meminfo",
    "kpageflags": "/proc/kpageflags",
    "kpagecount": "/proc/kpagecount",
    "unusable_index": "/sys/kernel/debug/extfrag/unusable_index",
    "extfrag_index": "/sys/kernel/debug/extfrag/extfrag_index",
}
TRACE_MARKER = "/sys/kernel/tracing/trace_marker"


@dataclass(frozen=True)
class RealZone:
    """A zone as ``/proc/zoneinfo`` shows it."""

    node: int
    name: str
    start_pfn: int
    spanned: int
    present: int
    managed: int
    nr_free_pages: int
    #: (min, low, high) watermarks in pages, when zoneinfo shows them
    watermarks: tuple[int, int, int] | None = None

    @property
    def end_pfn(self) -> int:
        return self.start_pfn + self.spanned


_ZONE_RE = re.compile(r"^Node\s+(\d+),\s+zone\s+(\S+)\s*$")


def parse_zoneinfo(text: str) -> list[RealZone]:
    """The zones of ``/proc/zoneinfo`` that span pages, in file order."""
    zones: list[RealZone] = []
    cur: dict[str, Any] | None = None

    def close() -> None:
        if cur is not None and cur.get("spanned", 0) > 0:
            for k in ("spanned", "present", "managed", "start_pfn"):
                if k not in cur:
                    raise SnapshotError(f"zoneinfo: node {cur['node']} zone {cur['name']} has no {k!r} line")
            zones.append(
                RealZone(
                    cur["node"], cur["name"], cur["start_pfn"], cur["spanned"], cur["present"], cur["managed"], cur.get("free", 0),
                    (cur["min"], cur["low"], cur["high"]) if all(k in cur for k in ("min", "low", "high")) else None,
                )
            )

    for lineno, line in enumerate(text.splitlines(), 1):
        m = _ZONE_RE.match(line)
        if m:
            close()
            cur = {"node": int(m.group(1)), "name": m.group(2)}
            continue
        if cur is None:
            continue
        parts = line.replace(":", " ").split()
        if len(parts) == 2 and parts[0] in ("spanned", "present", "managed", "start_pfn"):
            try:
                cur[parts[0]] = int(parts[1])
            except ValueError:
                raise SnapshotError(f"zoneinfo line {lineno}: bad number {line.strip()!r}") from None
        elif len(parts) == 2 and parts[0] in ("min", "low", "high") and ":" not in line and parts[0] not in cur:
            cur[parts[0]] = int(parts[1])
        elif len(parts) == 3 and parts[0] == "pages" and parts[1] == "free":
            cur["free"] = int(parts[2])
    close()
    if not zones:
        raise SnapshotError("zoneinfo: no zone with pages (not a /proc/zoneinfo?)")
    return zones


def parse_block_counts(text: str) -> dict[tuple[int, str], dict[str, int]]:
    """pagetypeinfo's "Number of blocks type" table: (node, zone) -> {type: count}."""
    out: dict[tuple[int, str], dict[str, int]] = {}
    names: list[str] | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("Number of blocks type"):
            names = line.split()[4:]
            continue
        if names is None:
            continue
        m = re.match(r"^Node\s+(\d+),\s+zone\s+(\S+)\s+(.*)$", line)
        if not m:
            if line.strip():
                names = None
            continue
        vals = m.group(3).split()
        if len(vals) != len(names) or not all(v.isdigit() for v in vals):
            raise SnapshotError(f"pagetypeinfo line {lineno}: {len(vals)} block counts for {len(names)} types: {line.strip()!r}")
        out[(int(m.group(1)), m.group(2))] = dict(zip(names, map(int, vals)))
    return out


@dataclass
class Snapshot:
    """A loaded snapshot: ``texts`` by file name, the u64 arrays, ``meta``."""

    label: str
    texts: dict[str, str]
    kpageflags: np.ndarray
    kpagecount: np.ndarray | None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def consistent(self) -> bool | None:
        """buddyinfo unchanged while the snapshot was read (None: not known)."""
        after = self.texts.get("buddyinfo.after")
        if after is None:
            return self.meta.get("buddyinfo_changed") is False or None
        return after == self.texts["buddyinfo"]

    def zones(self) -> list[RealZone]:
        return parse_zoneinfo(self.texts["zoneinfo"])


def _read_zst(data: bytes, what: str) -> bytes:
    import zstandard

    try:
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
    except zstandard.ZstdError as e:
        raise SnapshotError(f"{what}: corrupt or truncated zstd data: {e}") from e


def _u64s(data: bytes, what: str) -> np.ndarray:
    if len(data) % 8:
        raise SnapshotError(f"{what}: {len(data)} bytes is not a whole number of u64 entries (truncated?)")
    return np.frombuffer(data, dtype="<u8")


def _check(snap: Snapshot) -> Snapshot:
    zones = snap.zones()  # raises on a bad zoneinfo
    end = max(z.end_pfn for z in zones)
    for name, arr in (("kpageflags", snap.kpageflags), ("kpagecount", snap.kpagecount)):
        if arr is not None and len(arr) < end:
            raise SnapshotError(
                f"{snap.source}: {name} holds {len(arr)} pfns but zoneinfo's zones end at pfn {end} "
                "(a truncated or short copy)"
            )
    return snap


def _from_files(files: dict[str, bytes], meta: dict[str, Any], source: str, label: str | None) -> Snapshot:
    missing = [f for f in REQUIRED_FILES if f not in files]
    if missing:
        raise SnapshotError(f"{source}: snapshot lacks {', '.join(missing)}")
    texts = {}
    for name, data in files.items():
        if name in BINARY_FILES:
            continue
        try:
            texts[name] = data.decode()
        except UnicodeDecodeError:
            raise SnapshotError(f"{source}: {name} is not text") from None
    flags = _u64s(files["kpageflags"], f"{source}: kpageflags")
    count = _u64s(files["kpagecount"], f"{source}: kpagecount")
    lab = label or meta.get("label") or Path(source).name
    return _check(Snapshot(label=lab, texts=texts, kpageflags=flags, kpagecount=count, meta=meta, source=source))


def _load_dir(d: Path, label: str | None) -> Snapshot:
    files: dict[str, bytes] = {}
    meta: dict[str, Any] = {}
    if (d / META).exists():
        meta = json.loads((d / META).read_text())
    for name in REQUIRED_FILES + OPTIONAL_FILES:
        p = d / name
        pz = d / (name + ".zst")
        if p.exists():
            files[name] = p.read_bytes()
        elif pz.exists():
            files[name] = _read_zst(pz.read_bytes(), str(pz))
        elif name in BINARY_FILES and (d / f"{name}.words").exists():  # a format 2 file's members
            idx = d / f"{name}.index"
            files[name] = _undict((d / f"{name}.words").read_bytes(), idx.read_bytes() if idx.exists() else None, f"{d}: {name}")
    return _from_files(files, meta, str(d), label or meta.get("label") or d.name)


def _load_file(p: Path, label: str | None) -> Snapshot:
    try:
        with open(p, "rb") as raw:
            return load_stream(raw, str(p), label)
    except OSError as e:
        raise SnapshotError(f"cannot read snapshot {p}: {e}") from e


def load_stream(raw: Any, source: str, label: str | None = None) -> Snapshot:
    """Load a snapshot file from an open binary stream (a member of a
    ``kmm record`` bundle); ``source`` names it in errors."""
    import zstandard

    files: dict[str, bytes] = {}
    meta: dict[str, Any] = {}
    p = source
    try:
        if raw.read(4) != _ZSTD_MAGIC:
            raise SnapshotError(f"{p}: not a kmm snapshot (no zstd magic; a snapshot is a .tar.zst or a directory)")
        raw.seek(0)
        with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False) as zr, tarfile.open(
            fileobj=zr, mode="r|"
        ) as tf:
            for ti in tf:
                if not ti.isfile():
                    continue
                f = tf.extractfile(ti)
                if f is None:
                    continue
                data = f.read()
                if len(data) != ti.size:
                    raise SnapshotError(f"{p}: member {ti.name} is cut short (truncated snapshot)")
                if ti.name == META:
                    meta = json.loads(data)
                else:
                    files[ti.name] = data
    except (tarfile.TarError, zstandard.ZstdError, EOFError) as e:
        raise SnapshotError(f"{p}: truncated or corrupt snapshot: {e}") from e
    if meta.get("format") not in READ_FORMATS:
        raise SnapshotError(f"{p}: not a kmm snapshot (format {meta.get('format')!r}, expected {FORMAT!r})")
    for name in BINARY_FILES:
        if f"{name}.words" in files or f"{name}.index" in files:
            files[name] = _undict(files.pop(f"{name}.words", None), files.pop(f"{name}.index", None), f"{p}: {name}")
    return _from_files(files, meta, str(p), label)


def _dict_code(data: bytes | memoryview) -> tuple[bytes, bytes] | None:
    """An array of u64s as (distinct words, index per entry); None when it has
    more than 65,536 distinct words."""
    a = np.frombuffer(data, dtype="<u8")
    words, index = np.unique(a, return_inverse=True)
    if len(words) > 1 << 16:
        return None
    return words.astype("<u8").tobytes(), index.astype("u1" if len(words) <= 256 else "<u2").tobytes()


def _undict(words: bytes | None, index: bytes | None, what: str) -> bytes:
    if words is None or index is None:
        raise SnapshotError(f"{what}: the snapshot holds one of {what.rsplit(' ', 1)[-1]}.words and .index but not both")
    if len(words) % 8 or not 0 < len(words) <= 8 << 16:
        raise SnapshotError(f"{what}.words: {len(words)} bytes is not 1 to 65,536 u64 words (truncated?)")
    w = np.frombuffer(words, dtype="<u8")
    idx = np.frombuffer(index, dtype="u1") if len(w) <= 256 else _u16s(index, f"{what}.index")
    if len(idx) and int(idx.max()) >= len(w):
        raise SnapshotError(f"{what}.index: index {int(idx.max())} past the {len(w)} words (corrupt snapshot)")
    return w[idx].tobytes()


def _u16s(data: bytes, what: str) -> np.ndarray:
    if len(data) % 2:
        raise SnapshotError(f"{what}: {len(data)} bytes is not a whole number of u16 entries (truncated?)")
    return np.frombuffer(data, dtype="<u2")


def load(path: str | os.PathLike[str] | Snapshot, *, label: str | None = None) -> Snapshot:
    """Load a snapshot file or directory."""
    if isinstance(path, Snapshot):
        return path
    p = Path(path)
    if p.is_dir():
        return _load_dir(p, label)
    if not p.exists():
        raise SnapshotError(f"no snapshot at {p}")
    return _load_file(p, label)


def write(snap_files: dict[str, bytes], meta: dict[str, Any], out: str | os.PathLike[str], *, level: int = 3) -> None:
    """Write files and meta as one snapshot file (tar, zstd-compressed)."""
    import zstandard

    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    names = [n for n in REQUIRED_FILES + OPTIONAL_FILES if n in snap_files]
    meta = dict(meta, format=FORMAT, files=names)
    members: list[tuple[str, Any]] = []
    for n in names:
        coded = _dict_code(snap_files[n]) if n in BINARY_FILES and len(snap_files[n]) % 8 == 0 else None
        if coded is None:
            members.append((n, snap_files[n]))
        else:
            members += [(f"{n}.words", coded[0]), (f"{n}.index", coded[1])]
    try:
        with open(tmp, "wb") as raw, zstandard.ZstdCompressor(level=level, threads=-1).stream_writer(
            raw, closefd=False
        ) as zw, tarfile.open(fileobj=zw, mode="w|") as tf:
            for name, data in [(META, json.dumps(meta, indent=1).encode())] + members:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                ti.mtime = int(meta.get("taken_at", 0))
                ti.mode = 0o644
                tf.addfile(ti, io.BytesIO(data))
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def pack_dir(
    d: str | os.PathLike[str], out: str | os.PathLike[str], *, label: str | None = None, level: int = 3
) -> Snapshot:
    """``kmm snapshot --from DIR``: pack copies of the files taken elsewhere."""
    snap = load(d, label=label)
    files = {n: t.encode() for n, t in snap.texts.items()}
    files["kpageflags"] = snap.kpageflags.tobytes()
    if snap.kpagecount is not None:
        files["kpagecount"] = snap.kpagecount.tobytes()
    lab = label or snap.label
    meta = {"label": lab, "source": f"from {Path(d).name}", "taken_at": snap.meta.get("taken_at", 0),
            "buddyinfo_changed": None if snap.consistent is None else not snap.consistent}
    write(files, meta, out, level=level)
    return load(out)


# ---- live ----------------------------------------------------------------


def _open(path: str, mode: str = "rb") -> Any:
    try:
        return open(path, mode, buffering=0)
    except PermissionError:
        raise NeedsRootError(f"{path}: permission denied; a snapshot of a live machine needs root") from None
    except FileNotFoundError:
        raise SnapshotError(f"{path} does not exist (not Linux, or a kernel without it)") from None


def _read_small(path: str) -> bytes:
    with _open(path) as f:
        return f.read()


#: pfns read per ``kmm-snapshot LABEL kpageflags PFN`` marker
KPF_MARK_PFNS = 16384


def _read_into(path: str, buf: bytearray, mark: str | None = None) -> int:
    """Read a /proc binary file into a buffer allocated beforehand; returns its
    length. With ``mark``, read ``KPF_MARK_PFNS`` u64s at a time and write
    ``MARK PFN`` to trace_marker before each read and ``MARK N`` after the
    last, so that a replay knows when each pfn was read."""
    mv = memoryview(buf)
    n = 0
    step = KPF_MARK_PFNS * 8 if mark else len(buf)
    with _open(path) as f:
        while n < len(buf):
            if mark:
                _mark(f"{mark} {n // 8}")
            k = f.readinto(mv[n : n + step])
            if not k:
                break
            n += k
        else:
            if f.read(1):
                raise SnapshotError(f"{path} is longer than zoneinfo's zones (memory hot-added while reading?)")
        if mark:
            _mark(f"{mark} {n // 8}")
    return n


def _touched(nbytes: int) -> bytearray:
    """A buffer whose every page is already faulted in, so that reading into it
    allocates nothing."""
    b = bytearray(nbytes)
    b[::4096] = b"\x01" * len(range(0, nbytes, 4096))
    return b


def _mark(text: str) -> bool:
    try:
        with open(TRACE_MARKER, "w") as f:
            f.write(text + "\n")
        return True
    except OSError:
        return False


def live_buffers() -> dict[str, bytearray]:
    """Buffers for one live snapshot's ``kpageflags`` and ``kpagecount``, sized
    from zoneinfo (8 bytes per pfn plus 8 MiB) and faulted in."""
    for name in BINARY_FILES:
        _open(LIVE_PATHS[name]).close()  # probe the files that need root first
    zones = parse_zoneinfo(_read_small(LIVE_PATHS["zoneinfo"]).decode())
    npfn = max(z.end_pfn for z in zones)
    return {name: _touched(8 * npfn + (8 << 20)) for name in BINARY_FILES}


def take(
    *,
    label: str | None = None,
    files: Iterable[str] | None = None,
    bufs: dict[str, bytearray] | None = None,
    kpageflags_last: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read the live machine's snapshot files (root). Returns (files, meta).

    Every buffer is allocated before the first read (the big files' sized from
    zoneinfo; ``bufs`` from :func:`live_buffers` are used in place and the big
    files come back as views of them, so a caller can allocate them before a
    recording starts), buddyinfo is read first and again last, and, when
    tracefs is mounted, ``kmm-snapshot LABEL begin`` / ``end`` go to
    ``trace_marker``. ``kpageflags_last`` reads kpagecount before kpageflags
    (a recording's start snapshot does, its end snapshot reads kpageflags
    first: a pfn's replay window runs from its kpageflags read in one to its
    read in the other, so the other reads fall outside it).
    """
    lab = label or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    if not re.fullmatch(r"[A-Za-z0-9_.:+-]+", lab):
        raise SnapshotError(f"snapshot label {lab!r} must be one word of letters, digits and _.:+-")
    own = bufs is None
    if bufs is None:
        bufs = live_buffers()
    want = set(files) if files is not None else set(REQUIRED_FILES + OPTIONAL_FILES)
    out: dict[str, Any] = {}
    marked = _mark(f"kmm-snapshot {lab} begin")
    t0 = time.time()
    out["buddyinfo"] = _read_small(LIVE_PATHS["buddyinfo"])
    for name in ("zoneinfo", "pagetypeinfo", "vmstat", "meminfo"):
        out[name] = _read_small(LIVE_PATHS[name])
    lens = {
        name: _read_into(LIVE_PATHS[name], bufs[name], f"kmm-snapshot {lab} kpageflags" if marked and name == "kpageflags" else None)
        for name in (BINARY_FILES[::-1] if kpageflags_last else BINARY_FILES)
    }
    out["buddyinfo.after"] = _read_small(LIVE_PATHS["buddyinfo"])
    t1 = time.time()
    if marked:
        _mark(f"kmm-snapshot {lab} end")
    for name in ("unusable_index", "extfrag_index"):
        if name in want and os.path.exists(LIVE_PATHS[name]):
            out[name] = _read_small(LIVE_PATHS[name])
    for name in BINARY_FILES:
        view = memoryview(bufs[name])[: lens[name]]
        out[name] = bytes(view) if own else view
    meta = {
        "label": lab,
        "source": "live",
        "taken_at": t0,
        "read_seconds": round(t1 - t0, 3),
        "kernel": platform.release(),
        "host": platform.node(),
        "buddyinfo_changed": out["buddyinfo"] != out["buddyinfo.after"],
        "trace_markers": marked,
    }
    return out, meta
