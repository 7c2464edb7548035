"""``kmm record``: snapshot a live machine, trace the kmem page events while a
command runs, snapshot again, and bundle both snapshots with the trace
(``docs/real.md``). Needs root and tracefs.

What it changes in tracefs (``buffer_size_kb``, ``options/overwrite``,
``tracing_on``, the six kmem events' ``enable``, and a tracefs mount when
none was there) it restores in a ``finally``, also on Ctrl-C, SIGTERM or a
failing command; the trace buffer is cleared before and after.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from . import snapshot as _snapshot
from .errors import NeedsRootError, SnapshotError
from .real_replay import BUNDLE_FORMAT, BUNDLE_META

__all__ = ["EVENTS", "TRACEFS", "default_buffer_kb", "record"]

TRACEFS = "/sys/kernel/tracing"
#: the kmem page events a recording enables (include/trace/events/kmem.h)
EVENTS = (
    "mm_page_alloc",
    "mm_page_alloc_zone_locked",
    "mm_page_free",
    "mm_page_free_batched",
    "mm_page_pcpu_drain",
    "mm_page_alloc_extfrag",
)


def default_buffer_kb() -> int:
    """Per-CPU buffer: 64 MiB (about 2 M events of 34 bytes: 10 s of a busy
    compile per CPU), at most an eighth of MemAvailable over all CPUs."""
    ncpu = os.cpu_count() or 1
    avail_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail_kb = int(line.split()[1])
    except OSError:
        pass
    cap = avail_kb // 8 // ncpu if avail_kb else 65536
    return max(1024, min(65536, cap))


class _Tracefs:
    """The tracefs settings a recording changes, saved and restorable."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.saved: list[tuple[str, str]] = []
        self.mounted = False

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def mount(self) -> None:
        if os.path.exists(self.path("trace_marker")):
            return
        if os.geteuid() != 0:
            raise NeedsRootError(f"{self.root} is not mounted and mounting tracefs needs root")
        r = subprocess.run(["mount", "-t", "tracefs", "nodev", self.root], capture_output=True, text=True)
        if r.returncode != 0:
            raise SnapshotError(f"mount -t tracefs nodev {self.root} failed: {r.stderr.strip()}")
        self.mounted = True

    def read(self, rel: str) -> str:
        try:
            with open(self.path(rel)) as f:
                return f.read()
        except PermissionError:
            raise NeedsRootError(f"{self.path(rel)}: permission denied; kmm record needs root") from None
        except FileNotFoundError:
            raise SnapshotError(f"{self.path(rel)} does not exist (a kernel without this tracepoint?)") from None

    def write(self, rel: str, value: str, *, save: bool = True) -> None:
        if save:
            old = self.read(rel).strip()
            if rel == "buffer_size_kb":
                old = old.split()[0]  # "7 (expanded: 1408)"
            self.saved.append((rel, old))
        try:
            with open(self.path(rel), "w") as f:
                f.write(value + "\n")
        except PermissionError:
            raise NeedsRootError(f"{self.path(rel)}: permission denied; kmm record needs root") from None
        except OSError as e:
            raise SnapshotError(f"writing {value!r} to {self.path(rel)} failed: {e.strerror}") from e

    def restore(self) -> list[str]:
        errors = []
        for rel, old in reversed(self.saved):
            try:
                self.write(rel, old, save=False)
            except Exception as e:  # restore as much as possible
                errors.append(str(e))
        self.saved.clear()
        try:
            self.write("trace", "", save=False)
        except Exception as e:
            errors.append(str(e))
        if self.mounted:
            r = subprocess.run(["umount", self.root], capture_output=True, text=True)
            if r.returncode != 0:
                errors.append(f"umount {self.root}: {r.stderr.strip()}")
            self.mounted = False
        return errors


def _term(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def record(
    out: str | os.PathLike[str],
    cmd: list[str],
    *,
    buffer_kb: int | None = None,
    tracefs: str = TRACEFS,
) -> dict[str, Any]:
    """Record ``cmd`` into the bundle ``out``; returns a summary (the
    command's exit status, event and loss counts, snapshot consistency)."""
    import zstandard

    if not cmd:
        raise SnapshotError("kmm record needs a command to run after --")
    if os.geteuid() != 0:
        raise NeedsRootError("kmm record needs root (/proc/kpageflags, tracefs)")
    out = Path(out)
    kb = buffer_kb or default_buffer_kb()
    t = _Tracefs(tracefs)
    old_term = signal.signal(signal.SIGTERM, _term)
    summary: dict[str, Any] = {"output": str(out), "buffer_size_kb": kb, "command": cmd}
    with tempfile.TemporaryDirectory(prefix="kmm-record-", dir=out.parent if out.parent.exists() else None) as tmp:
        td = Path(tmp)
        try:
            t.mount()
            # both snapshots' big buffers before the events are on: nothing of
            # it is allocated, nor is a snapshot compressed, inside the window
            bufs = [_snapshot.live_buffers(), _snapshot.live_buffers()]
            t.write("tracing_on", "0")
            t.write("buffer_size_kb", str(kb))
            t.write("options/overwrite", "0")
            t.write("trace", "", save=False)
            for e in EVENTS:
                t.write(f"events/kmem/{e}/enable", "1")
            t.write("tracing_on", "1", save=False)
            start = _snapshot.take(label="start", bufs=bufs[0], kpageflags_last=True)
            summary["start_consistent"] = not start[1]["buddyinfo_changed"]
            t0 = time.time()
            try:
                proc = subprocess.run(cmd)
                summary["exit_status"] = proc.returncode
            except FileNotFoundError:
                raise SnapshotError(f"command not found: {cmd[0]}") from None
            summary["seconds"] = round(time.time() - t0, 3)
            end = _snapshot.take(label="end", bufs=bufs[1])
            summary["end_consistent"] = not end[1]["buddyinfo_changed"]
            t.write("tracing_on", "0", save=False)
            for e in EVENTS:
                t.write(f"events/kmem/{e}/enable", "0", save=False)
            ncpu = sorted(p for p in os.listdir(t.path("per_cpu")) if p.startswith("cpu"))
            stats = "".join(t.read(f"per_cpu/{c}/stats") for c in ncpu)
            (td / "stats").write_text(stats)
            with open(t.path("trace"), "rb") as src, open(td / "trace.txt.zst", "wb") as dst:
                zstandard.ZstdCompressor(level=3, threads=-1).copy_stream(src, dst, read_size=1 << 20)
            _snapshot.write(*start, td / "start.tar.zst")
            _snapshot.write(*end, td / "end.tar.zst")
        finally:
            errors = t.restore()
            signal.signal(signal.SIGTERM, old_term)
            if errors:
                summary["restore_errors"] = errors
        from .kernel_trace import parse_ring_stats

        rs = parse_ring_stats(stats)
        summary["ring_buffer"] = rs
        bmeta = {"format": BUNDLE_FORMAT, "start": "start", "end": "end", "trace": "trace.txt.zst",
                 "command": cmd, "buffer_size_kb": kb, "recorded_at": t0, "ring_buffer": rs}
        part = out.with_name(out.name + ".part")
        with tarfile.open(part, "w:") as tf:
            data = json.dumps(bmeta, indent=1).encode()
            ti = tarfile.TarInfo(BUNDLE_META)
            ti.size = len(data)
            import io

            tf.addfile(ti, io.BytesIO(data))
            for name in ("start.tar.zst", "end.tar.zst", "stats", "trace.txt.zst"):
                tf.add(td / name, arcname=name)
        os.replace(part, out)
    return summary
