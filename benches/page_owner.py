"""Benchmarks of issue 5: page_owner memory, dump speed, and the dump aggregator.

- ``page_owner_bytes_per_page``: page_owner memory (per-page records, context
  table, stack depot, comms) / pages, on a machine loaded by the high-order
  benchmark's workload (quick: 1 GiB, 2 builds, 30 s; full: 1.5 GiB, 7 builds +
  updatedb, 180 s). ``page_owner_bytes_per_page_with_objects`` adds the engine's
  per-trace-object context copy kept for refaults (not page_owner's own table).
- ``dump_records_per_s``: the debugfs-format dump of that machine streamed to a
  Python file object in 1 MiB chunks; ``dump_2005_records_per_s`` the 2005 format
  written to a path (opened by Python, rendered by Rust in 1 MiB chunks).
- ``sort_lines_per_s``: ``cat dump | python -m kmm page-owner sort -`` on a
  generated modern-format dump of >= 50 MB (quick) or >= 1 GB (full), lines of
  input / wall time of the sorting process (interpreter start included);
  ``sort_peak_rss_mb``: that process's peak RSS (``wait4`` rusage);
  ``sort_input_mb``: the dump's size.

Issue 10, on realistic dumps (``po_realistic.write_dump``: unique pids and
timestamps, 4,000 long-tailed stacks, hex PFNs, module frames, the optional
lines) of 100 MB (quick) and also 1 GiB (full), generated under /tmp and
deleted afterwards. Every tool runs as its own process, started from a small
helper so its peak RSS (``wait4``) is its own, side by side in one run, with
interpreter start-up included:

- ``sort_cull_lines_per_s`` / ``sort_cull_peak_rss_mb``: ``kmm page-owner sort
  --cull=stacktrace FILE``; ``sort_cull_pipe_peak_rss_mb`` the same from a pipe;
- ``sort_default_lines_per_s`` / ``sort_default_peak_rss_mb``: without --cull
  (every record distinct but for ts and PFN, so memory grows with the distinct
  records); ``sort_default_bytes_per_group``: the aggregator's own memory / groups;
- ``naive_grouper_lines_per_s``: the 40-line Python dict grouper
  (``po_realistic.NAIVE_GROUPER``); ``sort_vs_naive``: its wall / kmm's (cull);
  ``sort_cull_cpu_s``, ``naive_grouper_cpu_s`` and ``sort_vs_naive_cpu``: the
  same in CPU seconds (user + system, all threads: what a shared machine's
  load distorts least; kmm's two threads count twice), and
  ``load_average_1min`` when the run started;
- ``page_owner_sort_lines_per_s`` and ``sort_vs_page_owner_sort``: the kernel's
  ``tools/mm/page_owner_sort --cull=stacktrace`` (``_cpu``: by CPU time), when ``KMM_PAGE_OWNER_SORT``
  names a binary built from the kernel tree (not shipped here);
- ``json_peak_rss_mb``: ``kmm page-owner sort --json FILE`` (default mode);
- ``diff_lines_per_s``: ``kmm page-owner diff FILE FILE2 --cull=stacktrace``,
  lines of both inputs / wall.

Metric names without a suffix are of the largest dump; ``_100mb`` ones of the
100 MB dump in a full run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class _Counter:
    """A binary sink that counts what it is given."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, b: bytes) -> int:
        self.bytes += len(b)
        return len(b)


def _loaded_machine(quick: bool):
    import kmm
    import kmm.page_owner as po
    from kmm import workloads

    mem, builds, warm = ("1GiB", 2, 30.0) if quick else ("1536MiB", 7, 180.0)
    m = kmm.Machine(mem=mem, allocator="antifrag", page_owner=True)
    stacks = po.workload_stacks(m)
    load = workloads.stress_highalloc_load(builds=builds, jobs=4, seed=0, stacks=stacks)
    for chunk in load.chunks(warm, 5.0):
        m.replay(chunk, outcomes=False)
    return m


def _write_dump(m, path: Path, min_bytes: int) -> tuple[int, int]:
    """Write the machine's modern dump repeatedly until ``path`` holds ``min_bytes``; (bytes, lines)."""
    import io

    buf = io.BytesIO()
    m.page_owner.dump(buf, "modern")
    one = buf.getvalue()
    lines_one = one.count(b"\n")
    reps = max(1, -(-min_bytes // len(one)))
    with open(path, "wb") as f:
        f.writelines(one for _ in range(reps))
    return reps * len(one), reps * lines_one


_PIPE_HELPER = r"""
import json, os, subprocess, sys, time
path = sys.argv[1]
cat = subprocess.Popen(["cat", path], stdout=subprocess.PIPE)
t0 = time.perf_counter()
sorter = subprocess.Popen(
    [sys.executable, "-m", "kmm", "page-owner", "sort", "--no-progress", "--top", "3", "-"],
    stdin=cat.stdout, stdout=subprocess.PIPE,
)
cat.stdout.close()
out = sorter.stdout.read().decode()
_, status, usage = os.wait4(sorter.pid, 0)
wall = time.perf_counter() - t0
cat.wait()
print(json.dumps({"wall": wall, "rss_kib": usage.ru_maxrss, "status": os.waitstatus_to_exitcode(status),
                  "head": out[:200]}))
"""


def _sort_via_pipe(path: Path) -> tuple[float, float, str]:
    """``cat path | kmm page-owner sort -``, started from a small helper process
    (so the sorter's peak RSS is its own, not a fork of this big process):
    (wall seconds, peak RSS MiB, output head)."""
    import json

    import kmm

    # the sorter imports the kmm this process runs (an installed one, or the source tree)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(kmm.__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-c", _PIPE_HELPER, str(path)], env=env, check=True,
                         capture_output=True, text=True)
    r = json.loads(res.stdout)
    if r["status"] != 0:
        raise RuntimeError(f"kmm page-owner sort failed with status {r['status']}")
    return r["wall"], r["rss_kib"] / 1024.0, r["head"]


_RUN_HELPER = r"""
import json, os, subprocess, sys, time
cmd, stdin_path = json.loads(sys.argv[1])
t0 = time.perf_counter()
if stdin_path:
    cat = subprocess.Popen(["cat", stdin_path], stdout=subprocess.PIPE)
    p = subprocess.Popen(cmd, stdin=cat.stdout, stdout=subprocess.DEVNULL)
    cat.stdout.close()
else:
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(p.pid, 0)
wall = time.perf_counter() - t0
if stdin_path:
    cat.wait()
print(json.dumps({"wall": wall, "rss_kib": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime,
                  "status": os.waitstatus_to_exitcode(status)}))
"""


def _timed(cmd: list[str], stdin_path: str | None = None) -> tuple[float, float, float]:
    """Run ``cmd`` (stdin from ``stdin_path`` through a pipe, if given) from a
    small helper process: (wall seconds, peak RSS MiB of ``cmd`` alone, its
    CPU seconds, user + system, all threads)."""
    import json

    import kmm

    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(kmm.__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-c", _RUN_HELPER, json.dumps([cmd, stdin_path])], env=env,
                         check=True, capture_output=True, text=True)
    r = json.loads(res.stdout)
    if r["status"] != 0:
        raise RuntimeError(f"{cmd} failed with status {r['status']}")
    return r["wall"], r["rss_kib"] / 1024.0, r["cpu"]


def realistic(sizes: list[tuple[str, int]]) -> dict[str, float]:
    """The issue-10 metrics on realistic dumps of the given (label, bytes)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import kmm.page_owner as po
    from po_realistic import NAIVE_GROUPER, write_dump

    r: dict[str, float] = {}
    kmm_cmd = [sys.executable, "-m", "kmm", "page-owner"]
    pos_bin = os.environ.get("KMM_PAGE_OWNER_SORT")
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        naive = Path(d) / "naive.py"
        naive.write_text(NAIVE_GROUPER)
        for i, (label, size) in enumerate(sizes):
            last = i == len(sizes) - 1
            sfx = "" if last else f"_{label}"
            path = Path(d) / f"po_{label}.txt"
            path2 = Path(d) / f"po_{label}_2.txt"
            nbytes, lines, records = write_dump(path, size, seed=1)
            out = str(Path(d) / "out.txt")
            r[f"realistic_input_mb{sfx}"] = nbytes / 2**20
            r[f"realistic_records{sfx}"] = float(records)
            r[f"load_average_1min{sfx}"] = os.getloadavg()[0]
            wall, rss, cpu = _timed(kmm_cmd + ["sort", "--no-progress", "--cull=stacktrace", str(path), out])
            r[f"sort_cull_lines_per_s{sfx}"] = lines / wall
            r[f"sort_cull_peak_rss_mb{sfx}"] = rss
            r[f"sort_cull_cpu_s{sfx}"] = cpu
            kmm_wall, kmm_cpu = wall, cpu
            _, rss, _ = _timed(kmm_cmd + ["sort", "--no-progress", "--cull=stacktrace", "-", out], str(path))
            r[f"sort_cull_pipe_peak_rss_mb{sfx}"] = rss
            wall, _, cpu = _timed([sys.executable, str(naive), str(path)])
            r[f"naive_grouper_lines_per_s{sfx}"] = lines / wall
            r[f"naive_grouper_cpu_s{sfx}"] = cpu
            r[f"sort_vs_naive{sfx}"] = wall / kmm_wall
            r[f"sort_vs_naive_cpu{sfx}"] = cpu / kmm_cpu
            if pos_bin:
                wall, rss, cpu = _timed([pos_bin, "--cull=stacktrace", str(path), out])
                r[f"page_owner_sort_lines_per_s{sfx}"] = lines / wall
                r[f"page_owner_sort_peak_rss_mb{sfx}"] = rss
                r[f"sort_vs_page_owner_sort{sfx}"] = wall / kmm_wall
                r[f"sort_vs_page_owner_sort_cpu{sfx}"] = cpu / kmm_cpu
            wall, rss, _ = _timed(kmm_cmd + ["sort", "--no-progress", str(path), out])
            r[f"sort_default_lines_per_s{sfx}"] = lines / wall
            r[f"sort_default_peak_rss_mb{sfx}"] = rss
            agg = po.aggregator(str(path))
            st = agg.stats()
            r[f"sort_default_groups{sfx}"] = float(st["groups"])
            r[f"sort_default_bytes_per_group{sfx}"] = st["memory"] / max(1, st["groups"])
            del agg
            _, rss, _ = _timed(kmm_cmd + ["sort", "--no-progress", "--json", str(path), out])
            r[f"json_peak_rss_mb{sfx}"] = rss
            _, lines2, _ = write_dump(path2, size, seed=2)
            wall, _, _ = _timed(kmm_cmd + ["diff", "--cull=stacktrace", "--top", "10", str(path), str(path2)])
            r[f"diff_lines_per_s{sfx}"] = (lines + lines2) / wall
            path.unlink()
            path2.unlink()
    return r


def collect(quick: bool) -> dict[str, float]:
    r: dict[str, float] = {}
    sizes = [("100mb", 100 * 10**6)] + ([] if quick else [("1gib", 1 << 30)])
    r.update(realistic(sizes))
    m = _loaded_machine(quick)
    po = m.page_owner
    r["page_owner_bytes_per_page"] = po.bytes_per_page()
    r["page_owner_contexts"] = float(po.depot_stats()["contexts"])

    sink = _Counter()
    best = float("inf")
    records = 0
    for _ in range(3):
        t0 = time.perf_counter()
        records = po.dump(sink, "modern")
        best = min(best, time.perf_counter() - t0)
    r["dump_records"] = float(records)
    r["dump_records_per_s"] = records / best

    with tempfile.TemporaryDirectory() as d:
        p2005 = Path(d) / "po2005.txt"
        t0 = time.perf_counter()
        n = po.dump(p2005, "2005")
        r["dump_2005_records_per_s"] = n / (time.perf_counter() - t0)
        p2005.unlink()

        path = Path(d) / "page_owner.txt"
        size, lines = _write_dump(m, path, (50 << 20) if quick else (1 << 30))
        del m, po
        wall, rss, _ = _sort_via_pipe(path)
        r["sort_input_mb"] = size / 2**20
        r["sort_lines_per_s"] = lines / wall
        r["sort_peak_rss_mb"] = rss
    return r


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(collect("--quick" in sys.argv), indent=2))
