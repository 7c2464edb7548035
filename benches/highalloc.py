"""Benchmarks of issues 4 and 15: the high-order allocation benchmark, the
generation of its load, and replay under reclaim.

- ``highalloc_quick_s``: wall time of ``kmm highalloc --quick`` (all variants).
- ``highalloc_default_wall_s``: wall time of the default run (``kmm highalloc``,
  the v7 preset, all variants, the whole command), full mode only;
  ``highalloc_default_cpu_s`` its CPU time (user + system of the command and
  its workers), the figure to trust on a shared machine, and
  ``highalloc_default_loadavg`` the 1-minute load average when it ended.
- ``highalloc_x86_64_64g_s``: wall time of ``kmm highalloc --layout x86_64
  --mem 64GiB`` (the load scaled to RAM), full mode only, with its CPU time
  and load average likewise; ``highalloc_x86_64_64g_failed`` 1 when the
  command fails.
- ``generate_ops_per_s``: trace records per second generating the default
  run's load (``stress_highalloc_load``, 7 x make -j4 + updatedb + the
  system, as the default ``kmm highalloc`` generates it: its own config from
  the command's parser, ``highalloc.generate_load``, the copies, the warm-up
  and the attempts, ``generate_until_s`` simulated seconds, then ``stop()``,
  declared to end there, ``Load.end_at``), best of three;
  ``generate_ops_per_cpu_s`` the same per CPU second (the figure to trust on
  a shared machine);
  ``generate_open_ops_per_cpu_s`` per CPU second without the end declared
  (every process's events to its end kept, as a caller that does not know
  its end gets them).
- Run alone: ``python benches/highalloc.py [--quick] [--generate]`` prints
  the figures as JSON (``--generate``: the generation figures only).
- ``thrash_ops_per_s``: a kernel-build trace (7 x make -j4 + updatedb, filling a
  1.5 GiB machine) through ``Machine.replay`` with reclaim active.
- ``highalloc_<variant>_<pass>``: the success counts of the run, for the record.
- ``slab_objects_per_s``: slab object operations (OP_SLAB_ALLOC / OP_SLAB_FREE /
  OP_TOUCH of slab objects, 2M of them over five caches, a quarter of the
  objects live at any time) replayed per second, no reclaim pressure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _kmm_highalloc(args: list[str]) -> tuple[float, float, dict]:
    """(wall s, CPU s of the command and its workers, the JSON result) of one run."""
    import resource

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "r.json"
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "kmm", "highalloc", "--no-progress", "--json", str(out), *args],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        return wall, cpu, json.loads(out.read_text())


def collect(quick: bool) -> dict[str, float]:
    import kmm
    from kmm import workloads

    r: dict[str, float] = {}
    r.update(generate_ops_per_s(quick))
    wall, _, res = _kmm_highalloc(["--quick"])
    r["highalloc_quick_s"] = wall
    if not quick:
        wall, cpu, res = _kmm_highalloc([])
        r["highalloc_default_wall_s"] = wall
        r["highalloc_default_cpu_s"] = cpu
        r["highalloc_default_loadavg"] = os.getloadavg()[0]
        try:
            wall64, cpu64, _ = _kmm_highalloc(["--layout", "x86_64", "--mem", "64GiB"])
        except subprocess.CalledProcessError:
            r["highalloc_x86_64_64g_failed"] = 1.0
        else:
            r["highalloc_x86_64_64g_s"] = wall64
            r["highalloc_x86_64_64g_cpu_s"] = cpu64
            r["highalloc_x86_64_64g_loadavg"] = os.getloadavg()[0]
    for name, v in res["variants"].items():
        for pas in ("under_load", "at_rest"):
            r[f"highalloc_{name}_{pas}"] = v[pas]["success"]
        r[f"highalloc_{name}_ceiling"] = v["under_load"]["ceiling"]

    load = workloads.stress_highalloc_load(builds=7, jobs=4, seed=0)
    trace = load.trace(30.0 if quick else 120.0)
    best = float("inf")
    for _ in range(2 if quick else 3):
        m = kmm.Machine(layout="x86_32", mem="1536MiB")
        t0 = time.perf_counter()
        _, c = m.replay(trace, outcomes=False)
        best = min(best, time.perf_counter() - t0)
    r["thrash_ops_per_s"] = len(trace) / best
    r["thrash_trace_ops"] = float(len(trace))
    r["thrash_pgsteal"] = float(c["pgsteal"])
    r["thrash_refaults"] = float(c["refaults"])
    r["slab_objects_per_s"] = slab_objects_per_s(quick)
    return r


def default_config(quick: bool):
    """The config ``kmm highalloc`` (``--quick`` if ``quick``) runs, built by the command's own parser."""
    from kmm.cli import build_parser
    from kmm.commands.highalloc import config_from_args

    args = build_parser().parse_args(["highalloc", *(["--quick"] if quick else [])])
    return config_from_args(args).resolved()


class _Count:
    """A chunk store that only counts the records handed to it."""

    def __init__(self) -> None:
        self.n = 0

    def put(self, name: str, chunk) -> None:
        self.n += len(chunk)


def generate_ops_per_s(quick: bool) -> dict[str, float]:
    from kmm import highalloc, workloads

    cfg = default_config(quick)
    # the run's end: the last attempt under load (``highalloc.generate_load``)
    until = cfg.attempts_start_s() + cfg.attempts * cfg.interval_s
    best_wall = best_cpu = open_cpu = float("inf")
    for _ in range(1 if quick else 3):
        # declared: the default run's own generation, chunk for chunk
        store = _Count()
        t0, c0 = time.perf_counter(), time.process_time()
        highalloc.generate_load(cfg, store)
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        n = store.n
        # open: the same load without its end declared
        load = workloads.stress_highalloc_load(
            builds=cfg.builds, jobs=cfg.jobs, updatedb=cfg.updatedb, seed=cfg.seed,
            updatedb_files=cfg.updatedb_files,
        )
        c0 = time.process_time()
        n_open = sum(len(c) for c in load.chunks(until, chunk_s=10.0)) + len(load.stop())
        open_cpu = min(open_cpu, time.process_time() - c0)
    return {
        "generate_ops_per_s": n / best_wall,
        "generate_ops_per_cpu_s": n / best_cpu,
        "generate_open_ops_per_cpu_s": n_open / open_cpu,
        "generate_ops": float(n),
        "generate_until_s": until,
        "generate_loadavg": os.getloadavg()[0],
    }


def slab_objects_per_s(quick: bool) -> float:
    import kmm
    import numpy as np

    n = 500_000 if quick else 2_000_000
    live = n // 8
    rng = np.random.default_rng(0)
    caches = np.array([kmm.SLAB_CACHES[c] for c in ("dentry_cache", "ext3_inode_cache",
                                                     "buffer_head", "vm_area_struct", "size-32")])
    # generations of `live` objects: even generations allocate slots in a random
    # order, odd ones touch a quarter of them and then free them all
    parts = []
    for g in range(n // live):
        order = rng.permutation(live).astype(np.uint32)
        t = np.zeros(live, kmm.TRACE_DTYPE)
        t["obj"] = order
        t["order"] = caches[order % caches.shape[0]]
        t["gfp"] = kmm.GFP_KERNEL
        t["op"] = kmm.OP_SLAB_ALLOC if g % 2 == 0 else kmm.OP_SLAB_FREE
        parts.append(t)
        if g % 2 == 0:
            k = rng.choice(live, live // 4, replace=False).astype(np.uint32)
            tt = np.zeros(k.shape[0], kmm.TRACE_DTYPE)
            tt["op"] = kmm.OP_TOUCH
            tt["obj"] = k
            parts.append(tt)
    trace = kmm.trace.concat(parts)
    best = float("inf")
    for _ in range(3):
        m = kmm.Machine(layout="x86_32", mem="1536MiB", max_objects=live)
        t0 = time.perf_counter()
        _, c = m.replay(trace, outcomes=False)
        best = min(best, time.perf_counter() - t0)
        m.check()
    return len(trace) / best


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="the highalloc benchmarks (issues 4 and 15)")
    ap.add_argument("--quick", action="store_true", help="smaller runs for a fast look")
    ap.add_argument("--generate", action="store_true", help="only the generation figures")
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    res = generate_ops_per_s(a.quick) if a.generate else collect(a.quick)
    res["loadavg_at_start"] = load0
    print(json.dumps(res, indent=1, sort_keys=True))
