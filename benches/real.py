"""Benchmarks of issue 14: real machines.

- ``trace_import_lines_per_s``: ``kmm.kernel_trace.import_to_file`` on a
  generated ftrace ``trace`` text of >= 5 M lines (quick: 1 M), lines / wall
  time, file read and .npy written included (``..._per_cpu_s``: per second of
  the process's CPU time, which a loaded machine does not stretch). The text repeats a block of
  alloc / free / free_batched / zone_locked / pcpu_drain lines in the real
  recording's proportions (as the kmem tracepoints print them, ``include/trace/events/kmem.h``), with comms holding spaces.
- ``snapshot_load_s``: ``Machine.from_snapshot`` (mobility) of a synthetic
  256 GiB snapshot file (quick: 32 GiB): DMA, DMA32 with a 1 GiB hole, Normal;
  pages in 64-page runs of free, LRU, slab, flag-less and reserved pages,
  decompression and tar reading included; ``snapshot_load_core_s`` the engine's
  part alone (the arrays already in memory).
- ``real_replay_events_per_s`` (``_recorded`` and ``_policy``):
  ``kmm.real_replay.replay`` of the generated text (2 M lines, quick: 0.5 M)
  after a ``kmm-snapshot synthetic end`` marker, from a synthetic 8 GiB
  snapshot; events in the window per second of wall time, reading the text
  included (policy: one variant, mobility; ``..._per_cpu_s`` per CPU second).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def _ftrace_block(n_pages: int = 10_000) -> bytes:
    lines = []
    ts = 0
    for i in range(n_pages):
        pfn = 0x100000 + i * 3
        comm = ("opt cgu.0", "python3", "kworker/1:1", "tar")[i % 4]
        pid = 1000 + i % 97
        cpu = i % 2
        lines.append(f"{comm:>16}-{pid:<7} [{cpu:03d}] ..... {ts // 10**6}.{ts % 10**6:06d}: mm_page_alloc: page=00000000b130e681 pfn={pfn:#x} order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP")
        ts += 3
        if i % 9 == 0:
            lines.append(f"{comm:>16}-{pid:<7} [{cpu:03d}] d..2. {ts // 10**6}.{ts % 10**6:06d}: mm_page_alloc_zone_locked: page=00000000b130e681 pfn={pfn + 1:#x} order=0 migratetype=1 percpu_refill=1")
        lines.append(f"{comm:>16}-{pid:<7} [{cpu:03d}] ...2. {ts // 10**6}.{ts % 10**6:06d}: mm_page_free: page=00000000b130e681 pfn={pfn:#x} order=0")
        if i % 2 == 0:
            lines.append(f"{comm:>16}-{pid:<7} [{cpu:03d}] ...4. {ts // 10**6}.{ts % 10**6:06d}: mm_page_free_batched: page=00000000b130e681 pfn={pfn:#x} order=0")
        if i % 10 == 0:
            lines.append(f"{comm:>16}-{pid:<7} [{cpu:03d}] d..2. {ts // 10**6}.{ts % 10**6:06d}: mm_page_pcpu_drain: page=00000000b130e681 pfn={pfn + 2:#x} order=0 migratetype=1")
        ts += 5
    return ("\n".join(lines) + "\n").encode()


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def trace_import(quick: bool, tmp: Path) -> dict[str, float]:
    from kmm import TRACE_DTYPE, kernel_trace

    target = 1_000_000 if quick else 5_000_000
    block = _ftrace_block()
    per = block.count(b"\n")
    reps = -(-target // per)
    src = tmp / "trace.txt"
    with open(src, "wb") as f:
        f.write(b"# tracer: nop\n#\n")
        for _ in range(reps):
            f.write(block)
    c0 = _cpu()
    t0 = time.perf_counter()
    s = kernel_trace.import_to_file(src, tmp / "trace.npy", TRACE_DTYPE)
    dt = time.perf_counter() - t0
    cpu = _cpu() - c0
    return {
        "trace_import_lines": s["lines"],
        "trace_import_lines_per_s": s["lines"] / dt,
        "trace_import_lines_per_cpu_s": s["lines"] / cpu,
        "trace_import_mb_per_s": src.stat().st_size / dt / 1e6,
    }


def _synthetic_kpageflags(npfn: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    run = 64
    kinds = rng.choice(
        np.array([1 << 10, 1 << 5 | 1 << 12, 1 << 7, 0, 1 << 32, 1 << 5 | 1 << 11], dtype=np.uint64),
        size=npfn // run,
        p=[0.35, 0.35, 0.08, 0.1, 0.02, 0.10],
    )
    return np.repeat(kinds, run)[:npfn]


def _write_snapshot(path: Path, flags, zones: list[tuple[str, int, int, int]]) -> None:
    """A snapshot of ``flags`` (kpageflags words) whose zoneinfo lists
    ``zones`` as (name, start_pfn, spanned, present), managed = present."""
    import numpy as np
    from kmm import snapshot

    zoneinfo = "".join(
        f"Node 0, zone {name:>8}\n  pages free     0\n        spanned  {spanned}\n        present  {present}\n"
        f"        managed  {present}\n  start_pfn:           {start}\n"
        for name, start, spanned, present in zones
    )
    files = {
        "buddyinfo": b"", "pagetypeinfo": b"", "vmstat": b"", "meminfo": b"",
        "zoneinfo": zoneinfo.encode(), "kpageflags": flags.tobytes(),
        "kpagecount": np.zeros(flags.shape[0], np.uint64).tobytes(),
    }
    snapshot.write(files, {"label": "synthetic"}, path, level=1)


def snapshot_load(quick: bool, tmp: Path) -> dict[str, float]:
    import kmm

    gib = 32 if quick else 256
    npfn = gib << 18
    flags = _synthetic_kpageflags(npfn)
    flags[0:1] = 1 << 32
    flags[0xC0000:0x100000] = 0  # the PCI hole below 4 GiB
    dma32_present = 0x100000 - 4096 - 0x40000
    path = tmp / "synthetic.tar.zst"
    _write_snapshot(path, flags, [
        ("DMA", 1, 4095, 4095),
        ("DMA32", 4096, 0x100000 - 4096, dma32_present),
        ("Normal", 0x100000, npfn - 0x100000, npfn - 0x100000),
    ])
    c0 = _cpu()
    t0 = time.perf_counter()
    m = kmm.Machine.from_snapshot(path, allocator="mobility")
    dt = time.perf_counter() - t0
    load_cpu = _cpu() - c0
    snap = m.snapshot
    del m
    zones = [(z.node, z.name, z.start_pfn, z.spanned, z.present, z.managed, None, None) for z in snap.zones()]
    t0 = time.perf_counter()
    from kmm import _kmm

    _kmm.machine_from_snapshot("mobility", zones, snap.kpageflags)
    core = time.perf_counter() - t0
    return {"snapshot_gib": gib, "snapshot_load_s": dt, "snapshot_load_cpu_s": load_cpu, "snapshot_load_core_s": core,
            "snapshot_file_mb": path.stat().st_size / 1e6}


def real_replay(quick: bool, tmp: Path) -> dict[str, float]:
    from kmm import real_replay as rr

    npfn = 8 << 18
    flags = _synthetic_kpageflags(npfn, seed=1)
    flags[0x100000:0x100000 + 0x80000] = 1 << 10  # the pfns the text uses start free
    snap = tmp / "synthetic.tar.zst"
    _write_snapshot(snap, flags, [("DMA32", 0, 0x100000, 0x100000), ("Normal", 0x100000, npfn - 0x100000, npfn - 0x100000)])
    target = 500_000 if quick else 2_000_000
    block = _ftrace_block()
    reps = -(-target // block.count(b"\n"))
    src = tmp / "trace.txt"
    with open(src, "wb") as f:
        f.write(b"           kmm-1       [000] ...1. 0.000000: tracing_mark_write: kmm-snapshot synthetic end\n")
        for _ in range(reps):
            f.write(block)
    out: dict[str, float] = {}
    for placement in ("recorded", "policy"):
        c0 = _cpu()
        t0 = time.perf_counter()
        _, r = rr.replay(src, snapshot=snap, placement=placement, variants=["mobility"])
        dt, cpu = time.perf_counter() - t0, _cpu() - c0
        ev = r["window"]["events_in_window"]
        out[f"real_replay_events_{placement}"] = ev
        out[f"real_replay_events_per_s_{placement}"] = ev / dt
        out[f"real_replay_events_per_cpu_s_{placement}"] = ev / cpu
    return out


def collect(quick: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kmm-real-bench-", dir=os.environ.get("KMM_BENCH_TMP")) as d:
        tmp = Path(d)
        # wall figures are stretched by other work on the machine: say how much there was
        out = {"real_load_average_1m": os.getloadavg()[0]}
        out.update(trace_import(quick, tmp))
        for f in tmp.iterdir():
            f.unlink()
        out.update(snapshot_load(quick, tmp))
        for f in tmp.iterdir():
            f.unlink()
        out.update(real_replay(quick, tmp))
    return out
