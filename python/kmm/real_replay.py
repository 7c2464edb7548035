"""Replay a real machine's kernel trace from its snapshot (``docs/real.md``).

Two placements (the engine's ``kmm-core/src/replay_real.rs``):

- ``recorded``: the kernel's own pfns; the kmem events move pages between the
  buddy lists, per-cpu lists and their owners as the kernel did, events that
  disagree with kmm's state are counted as divergences. The end state is
  loaded as a machine (``Machine.from_snapshot`` on its kpageflags words).
- ``policy``: every allocation and free of the window becomes a kmm trace
  record and runs on a machine of each variant, all built from the start
  snapshot; kmm's allocator places every block.

The window is the events after the start snapshot's ``kmm-snapshot LABEL
end`` marker and, with an end snapshot, before its ``kmm-snapshot LABEL
begin`` marker. The trace is streamed chunk by chunk: memory is the machines
plus the live objects, never the trace.

A *bundle* (``kmm record``) is an uncompressed tar holding
``kmm-bundle.json``, ``start.tar.zst``, ``end.tar.zst``, ``trace.txt.zst``
and ``stats`` (the ring buffer's per-cpu stats); a directory holding
``start`` and ``end`` (snapshot directories or files), ``trace.txt[.zst]``
and ``stats`` is read the same way.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import _kmm, procfs
from . import snapshot as _snapshot
from .errors import ParseError, SnapshotError
from .highalloc import VARIANTS
from .kernel_trace import CHUNK, open_input, parse_ring_stats
from .machine import PM_FREE, Machine
from .trace import TRACE_DTYPE

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_META",
    "DEFAULT_VARIANTS",
    "PLACEMENTS",
    "Bundle",
    "load_bundle",
    "replay",
]

BUNDLE_FORMAT = "kmm-bundle 1"
BUNDLE_META = "kmm-bundle.json"
PLACEMENTS = ("recorded", "policy")
#: what the issue asks of a policy replay: the three allocators and today's compaction
DEFAULT_VARIANTS = ["vanilla", "antifrag", "mobility", "mobility+compaction"]
_TRACE_NAMES = ("trace.txt.zst", "trace.txt.gz", "trace.txt", "trace")
_KPF_BUDDY = 10


@dataclass
class Bundle:
    """A recording: start and end snapshots, the trace (opened on demand) and
    the ring buffer's stats text."""

    source: str
    start: _snapshot.Snapshot | None
    end: _snapshot.Snapshot | None
    open_trace: Callable[[], IO[bytes]]
    stats: str | None


def _dir_snapshot(d: Path, name: str) -> _snapshot.Snapshot | None:
    for cand in (d / name, d / f"{name}.tar.zst"):
        if cand.exists():
            return _snapshot.load(cand)
    return None


def load_bundle(path: str | os.PathLike[str]) -> Bundle | None:
    """The bundle at ``path`` (a ``kmm record`` file or a directory), or None
    when ``path`` is a plain trace."""
    p = Path(path)
    if p.is_dir():
        trace = next((p / n for n in _TRACE_NAMES if (p / n).exists()), None)
        if trace is None:
            raise ParseError(f"{p}: a recording directory needs one of {', '.join(_TRACE_NAMES)}")
        stats = (p / "stats").read_text() if (p / "stats").exists() else None
        return Bundle(str(p), _dir_snapshot(p, "start"), _dir_snapshot(p, "end"), lambda: open_input(trace), stats)
    if not p.exists():
        raise ParseError(f"no trace or recording at {p}")
    try:
        is_tar = tarfile.is_tarfile(p)
    except OSError as e:
        raise ParseError(f"cannot read {p}: {e.strerror}") from e
    if not is_tar:
        return None
    try:
        with tarfile.open(p, "r:") as tf:
            names = tf.getnames()
            if BUNDLE_META not in names:
                raise ParseError(f"{p}: a tar but not a kmm recording (no {BUNDLE_META})")
            meta = json.loads(_member(tf, BUNDLE_META, p).read())
            if meta.get("format") != BUNDLE_FORMAT:
                raise ParseError(f"{p}: not a kmm recording (format {meta.get('format')!r})")
            start = _snapshot.load_stream(_member(tf, "start.tar.zst", p), f"{p}:start.tar.zst")
            end = _snapshot.load_stream(_member(tf, "end.tar.zst", p), f"{p}:end.tar.zst") if "end.tar.zst" in names else None
            stats = _member(tf, "stats", p).read().decode() if "stats" in names else None
            tname = meta.get("trace", "trace.txt.zst")
            if tname not in names:
                raise ParseError(f"{p}: recording lacks its trace {tname}")
    except (tarfile.TarError, EOFError) as e:
        raise ParseError(f"{p}: truncated or corrupt recording: {e}") from e

    def open_trace() -> IO[bytes]:
        tf = tarfile.open(p, "r:")
        return open_input(_member(tf, tname, p))

    return Bundle(str(p), start, end, open_trace, stats)


def _member(tf: tarfile.TarFile, name: str, p: Path) -> IO[bytes]:
    try:
        f = tf.extractfile(name)
    except KeyError:
        f = None
    if f is None:
        raise ParseError(f"{p}: recording lacks {name}")
    return f


def _free_counts(m: Machine) -> list[int]:
    return [int(x) for x in m.free_area().sum(axis=(0, 1))]


def end_state(m: Machine, *, counters: dict[str, int] | None = None) -> dict[str, Any]:
    """The views ``kmm replay`` shows of one end state."""
    fa = m.free_area()
    ui = procfs.unusable_indices(fa)
    fi = procfs.fragmentation_indices(fa)
    zones = {}
    for st in m.zone_stats():
        zt = m.zone_names.index(st.zone)
        zones[f"{st.node}:{st.zone}"] = {
            "free": st.free,
            "nr_free": [int(x) for x in fa[st.node, zt]],
            "unusable_index": {str(o): int(ui[st.node, zt, o]) for o in (9, 10)},
            "fragmentation_index": {str(o): int(fi[st.node, zt, o]) for o in (9, 10)},
        }
    c = counters if counters is not None else {}
    return {
        "buddyinfo": m.buddyinfo(),
        "free_pages": int(sum(z["free"] for z in zones.values())),
        "free_per_order": _free_counts(m),
        "zones": zones,
        "ceiling": {str(o): m.highorder_ceiling(o) for o in (9, 10)},
        "fallbacks": int(c.get("fallbacks", 0)),
        "pageblock_fallbacks": int(c.get("pageblock_fallback", 0)),
        "alloc_failures": int(c.get("alloc_fail", 0)),
    }


def agreement(free_kmm: np.ndarray, real: _snapshot.Snapshot, zones: list[tuple[int, int]]) -> dict[str, Any]:
    """pfn counts of free pages in kmm's end state and in the real one,
    over the zones' pfns: ``free_both``, ``free_only_kmm``, ``free_only_real``
    and ``agreement`` = both / (both + only_kmm + only_real)."""
    inside = np.zeros(len(free_kmm), dtype=bool)
    for s, e in zones:
        inside[s:min(e, len(inside))] = True
    rk = np.asarray(real.kpageflags)
    n = min(len(free_kmm), len(rk))
    rf = np.zeros(len(free_kmm), dtype=bool)
    rf[:n] = ((rk[:n] >> _KPF_BUDDY) & 1).astype(bool)
    k, r = free_kmm & inside, rf & inside
    both, ok, orl = int((k & r).sum()), int((k & ~r).sum()), int((~k & r).sum())
    union = both + ok + orl
    return {
        "free_both": both,
        "free_only_kmm": ok,
        "free_only_real": orl,
        "agreement": both / union if union else 1.0,
        "of_real_free": both / (both + orl) if both + orl else 1.0,
    }


def _zones(s: _snapshot.Snapshot) -> list[tuple[int, int]]:
    return [(z.start_pfn, z.end_pfn) for z in s.zones()]


def replay(
    src: Any,
    *,
    snapshot: Any = None,
    compare: Any = None,
    placement: str = "policy",
    variants: list[str] | None = None,
    chunk: int = CHUNK,
) -> tuple[dict[str, Machine], dict[str, Any]]:
    """Replay the trace or bundle ``src`` from ``snapshot`` (default: the
    bundle's start) and, with ``compare`` (default: the bundle's end), up to
    that snapshot's begin marker; returns (end machines by column, report).
    Columns: ``recorded`` or the variants, then ``real`` (the compare snapshot)."""
    if placement not in PLACEMENTS:
        raise ParseError(f"placement must be one of {', '.join(PLACEMENTS)}, not {placement!r}")
    bundle = load_bundle(src) if isinstance(src, (str, os.PathLike)) and str(src) != "-" else None
    start = _snapshot.load(snapshot) if snapshot is not None else (bundle.start if bundle else None)
    if start is None:
        raise SnapshotError("a replay needs the start snapshot: pass --snapshot S (or a bundle from kmm record)")
    end = _snapshot.load(compare) if compare is not None else (bundle.end if bundle else None)
    names = list(variants or DEFAULT_VARIANTS) if placement == "policy" else ["recorded"]
    unknown = [v for v in names if placement == "policy" and v not in VARIANTS]
    if unknown or not names:
        raise ParseError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    zones = _zones(start)
    kpf = np.ascontiguousarray(start.kpageflags, dtype=np.uint64)
    rr = _kmm.RealReplay(
        start.label, end.label if end is not None else None, kpf if placement == "recorded" else None, zones, placement == "policy"
    )
    machines = {v: Machine.from_snapshot(start, **VARIANTS[v]) for v in names} if placement == "policy" else {}
    before = {v: m.counters() for v, m in machines.items()}
    stream = bundle.open_trace() if bundle else open_input(src)
    t0, c0 = time.perf_counter(), time.process_time()
    records = 0

    def run(recs: bytes) -> None:
        nonlocal records
        if not recs:
            return
        arr = np.frombuffer(recs, dtype=TRACE_DTYPE)
        records += len(recs) // _kmm.TRACE_RECORD_SIZE
        for m in machines.values():
            m.replay(arr, outcomes=False)

    try:
        while True:
            try:
                b = stream.read(chunk)
            except (OSError, EOFError) as e:
                raise ParseError(f"reading the trace failed: {e}") from e
            if not b:
                break
            rr.feed(b)
            run(rr.take_records())
        rr.finish()
        run(rr.take_records())
    finally:
        stream.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    st = rr.stats()
    out: dict[str, Machine] = {}
    columns: dict[str, Any] = {}
    if placement == "recorded":
        end_kpf = rr.end_kpageflags(kpf)
        m = Machine.from_snapshot(start, "mobility", kpageflags=end_kpf)
        m.check()
        out["recorded"] = m
        columns["recorded"] = end_state(m)
        columns["recorded"]["fallbacks"] = st["events"]["mm_page_alloc_extfrag"]
        free = np.asarray(rr.states()) == 1
        divs = {k: v for k, v in st["divergences"].items() if v["events"]}
        columns["recorded"]["divergences"] = {
            "events": sum(v["events"] for v in divs.values()),
            "pages": sum(v["pages"] for v in divs.values()),
            "by_reason": divs,
            "examples": st["divergence_examples"],
        }
        if end is not None:
            columns["recorded"]["compare"] = agreement(free, end, zones)
    else:
        for v, m in machines.items():
            m.check()
            now = m.counters()
            delta = {k: now[k] - before[v].get(k, 0) for k in now}
            columns[v] = end_state(m, counters=delta)
            columns[v]["counters"] = delta
            if end is not None:
                columns[v]["compare"] = agreement(np.asarray(m.page_map()) == PM_FREE, end, zones)
            out[v] = m
    if end is not None:
        mr = Machine.from_snapshot(end)
        out["real"] = mr
        columns["real"] = end_state(mr)
        columns["real"]["fallbacks"] = None
    report: dict[str, Any] = {
        "source": bundle.source if bundle else str(src),
        "placement": placement,
        "start": start.label,
        "end": end.label if end is not None else None,
        "window": {k: st[k] for k in ("lines", "events_before", "events_in_window", "events_after",
                                       "start_marker_line", "end_marker_line", "events", "lost_events",
                                       "malformed_lines", "truncated_last_line")},
        "records": records,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "events_per_s": round(st["events_in_window"] / wall) if wall > 0 else None,
        "columns": columns,
    }
    if "import" in st:
        imp = st["import"]
        report["import"] = {k: imp[k] for k in ("allocations", "frees", "skipped", "live_objects", "alloc_of_allocated")}
    if bundle and bundle.stats:
        report["ring_buffer"] = parse_ring_stats(bundle.stats)
    return out, report


def warnings(report: dict[str, Any]) -> list[str]:
    """What a reader of a replay must know: lost events, unparsed lines, a cut input."""
    w = []
    rb = report.get("ring_buffer")
    if rb and (rb["overrun"] or rb["dropped"]):
        w.append(f"the ring buffer stats report {rb['dropped']} dropped and {rb['overrun']} overwritten events: "
                 "the trace is incomplete, expect divergences")
    win = report["window"]
    if win["lost_events"]:
        w.append(f"the trace says {win['lost_events']} events were lost")
    if win["malformed_lines"]:
        w.append(f"{win['malformed_lines']} lines did not parse and were skipped")
    if win["truncated_last_line"]:
        w.append("the trace ends in the middle of a line: that line was skipped")
    return w
