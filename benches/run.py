#!/usr/bin/env python3
"""kmm benchmark suite: ``python benches/run.py [--quick] [--json FILE] [--only NAME,...]``.

Prints a table of named figures with their targets and writes them, with
``--json``, as one flat JSON object. Sections:

- ``engine``: Rust micro-benchmarks (``rust/kmm-bench`` binary ``engine``): order-0
  and mixed alloc+free pairs per allocator, and the ``buddy_system_allocator``
  crate doing the same work in the same run (each the best pass of the
  thread's CPU time per pair, so a loaded machine's preemption is not counted).
- ``python``: ``replay_ops_per_s`` (a 10M-op trace through ``Machine.replay``),
  ``replay_vs_pure_python`` (a 4M-op order-0 free/alloc trace through
  ``Machine.replay`` against :class:`PyBuddy`, a pure-Python buddy allocator,
  doing the same operations in the same run; the pure-Python one is timed on
  the first 1M operations only, which take it seconds; the two are timed
  in turn, three times, and each side's best is kept),
  ``bytes_per_page`` (RSS of a booted 1.5 GiB machine / its pages, measured in a
  fresh process), ``boot_1tib_s``.
- ``highalloc``, ``nic``, ``page_owner``, ``real``, ``sweep``, ``thp``: from ``benches/<name>.py`` modules, each
  exposing ``collect(quick) -> dict``.

``--repeat N`` runs the chosen sections N times, in rounds (every section
once, then every section again), so that a drift of the machine over minutes
falls on every section alike; each figure is then the median of its N values,
printed with its lowest and highest, and ``--json`` adds ``NAME:min`` and
``NAME:max`` beside each median. The README's replay, engine and highalloc
figures are medians of ``--repeat 3``: on a shared VM single runs of the same
build differ by about 20%.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHES = Path(__file__).resolve().parent
SOURCE = ROOT / "python"

#: figure -> (target text, check) for the table; figures without a target are informative.
TARGETS: dict[str, tuple[str, Callable[[float], bool]]] = {
    "alloc_free_order0_ns": ("<= 12", lambda v: v <= 12),
    "peer_ratio_order0": (">= 10", lambda v: v >= 10),
    "peer_ratio_order0_contiguous": (">= 10", lambda v: v >= 10),
    "replay_ops_per_s": (">= 50e6", lambda v: v >= 50e6),
    "replay_vs_pure_python": (">= 30", lambda v: v >= 30),
    "bytes_per_page": ("<= 12", lambda v: v <= 12),
    "boot_1tib_s": ("<= 3", lambda v: v <= 3),
    "antifrag_vs_vanilla_order0": ("<= 1.3", lambda v: v <= 1.3),
    "mobility_vs_vanilla_order0": ("<= 1.3", lambda v: v <= 1.3),
    "highalloc_default_wall_s": ("<= 3", lambda v: v <= 3),
    "highalloc_x86_64_64g_s": ("<= 60", lambda v: v <= 60),
    "generate_ops_per_s": (">= 15e6", lambda v: v >= 15e6),
    "thpchallenge_quick_s": ("<= 30", lambda v: v <= 30),
    "thrash_ops_per_s": (">= 10e6", lambda v: v >= 10e6),
    "page_owner_bytes_per_page": ("<= 8", lambda v: v <= 8),
    "dump_records_per_s": (">= 2e6", lambda v: v >= 2e6),
    "sort_lines_per_s": (">= 5e6", lambda v: v >= 5e6),
    "ring_vs_arrayqueue": (">= 1.2", lambda v: v >= 1.2),
    "burst32_vs_single": (">= 5", lambda v: v >= 5),
    "ring_vs_arrayqueue_cpu": (">= 1.2", lambda v: v >= 1.2),
    "burst32_vs_single_cpu": (">= 5", lambda v: v >= 5),
    "ring_vs_arrayqueue_one_core": (">= 1.2", lambda v: v >= 1.2),
    "burst32_vs_single_one_core": (">= 5", lambda v: v >= 5),
    "mobility_compaction_vs_mobility_order0": ("<= 1.1", lambda v: v <= 1.1),
    "trace_import_lines_per_s": (">= 3e6", lambda v: v >= 3e6),
    "snapshot_load_s": ("<= 10", lambda v: v <= 10),
    "sort_cull_peak_rss_mb": ("<= 64", lambda v: v <= 64),
    "sort_cull_pipe_peak_rss_mb": ("<= 64", lambda v: v <= 64),
    "sort_vs_naive": (">= 4", lambda v: v >= 4),
    "sort_vs_page_owner_sort": (">= 10", lambda v: v >= 10),
    "sweep_parallel_over_serial": ("<= 0.65", lambda v: v <= 0.65),
}


def engine(quick: bool) -> dict[str, float]:
    cmd = ["cargo", "run", "--release", "-q", "-p", "kmm-bench", "--bin", "engine", "--"]
    if quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    r["antifrag_vs_vanilla_order0"] = r["antifrag_alloc_free_order0_ns"] / r["alloc_free_order0_ns"]
    r["mobility_vs_vanilla_order0"] = r["mobility_alloc_free_order0_ns"] / r["alloc_free_order0_ns"]
    return r


def churn_trace(n_ops: int, live: int = 100_000, seed: int = 0):
    """An alloc/free churn trace: ``live`` objects stay allocated, each new one frees the oldest."""
    import kmm
    import numpy as np

    rng = np.random.default_rng(seed)
    n_alloc = (n_ops + live) // 2
    t = kmm.empty_trace(2 * n_alloc - live)
    # ops: `live` allocations, then (alloc i, free i - live) pairs
    ids = np.arange(n_alloc, dtype=np.uint32)
    orders = np.where(rng.random(n_alloc) < 0.9, 0, rng.integers(1, 4, n_alloc)).astype(np.uint8)
    gfps = np.where(rng.random(n_alloc) < 0.5, kmm.GFP_KERNEL, kmm.GFP_HIGHUSER).astype(np.uint32)
    t["op"][:live] = kmm.OP_ALLOC
    t["obj"][:live] = ids[:live]
    t["order"][:live] = orders[:live]
    t["gfp"][:live] = gfps[:live]
    rest = t[live:]
    rest["op"][0::2] = kmm.OP_ALLOC
    rest["obj"][0::2] = ids[live:]
    rest["order"][0::2] = orders[live:]
    rest["gfp"][0::2] = gfps[live:]
    rest["op"][1::2] = kmm.OP_FREE
    rest["obj"][1::2] = ids[: n_alloc - live]
    return t


class PyBuddy:
    """The binary buddy allocator in pure Python, obviously correct and no
    more: a set of free block heads per order; an allocation takes the
    smallest free block that fits and splits it, a free merges the block with
    its buddy while the buddy is free."""

    def __init__(self, pages: int, max_order: int = 11) -> None:
        self.max_order = max_order
        self.free: list[set[int]] = [set() for _ in range(max_order)]
        self.order: dict[int, int] = {}  # allocated head pfn -> order
        top = 1 << (max_order - 1)
        self.free[max_order - 1].update(range(0, pages - pages % top, top))

    def alloc(self, order: int) -> int | None:
        for o in range(order, self.max_order):
            if self.free[o]:
                pfn = self.free[o].pop()
                while o > order:  # split: the upper half goes back
                    o -= 1
                    self.free[o].add(pfn + (1 << o))
                self.order[pfn] = order
                return pfn
        return None

    def release(self, pfn: int) -> None:
        order = self.order.pop(pfn)
        while order < self.max_order - 1:
            buddy = pfn ^ (1 << order)
            if buddy not in self.free[order]:
                break
            self.free[order].remove(buddy)  # merge
            pfn &= ~(1 << order)
            order += 1
        self.free[order].add(pfn)


def pure_python_replay(trace, pages: int) -> None:
    """Run an order-0 OP_ALLOC / OP_FREE trace on :class:`PyBuddy`."""
    import kmm

    b, where = PyBuddy(pages), {}
    for op, obj in zip(trace["op"].tolist(), trace["obj"].tolist()):
        if op == kmm.OP_ALLOC:
            where[obj] = b.alloc(0)
        else:
            b.release(where.pop(obj))


def python_figures(quick: bool) -> dict[str, float]:
    import kmm

    r: dict[str, float] = {}
    n = 2_000_000 if quick else 10_000_000
    trace = churn_trace(n)
    best = float("inf")
    for _ in range(3):
        m = kmm.Machine(layout="x86_32", mem="1536MiB")
        t0 = time.perf_counter()
        m.replay(trace, outcomes=False)
        best = min(best, time.perf_counter() - t0)
    r["replay_ops_per_s"] = len(trace) / best
    r["replay_trace_ops"] = float(len(trace))

    # order 0 only, one mask: the work PyBuddy can do too
    n = 1_000_000 if quick else 4_000_000
    trace = churn_trace(n)
    trace["order"] = 0
    trace["gfp"][trace["op"] == kmm.OP_ALLOC] = kmm.GFP_KERNEL
    # the two sides interleaved, best of three each: a slow spell of the
    # machine then slows both instead of one side of the ratio
    prefix = trace[: min(len(trace), 1_000_000)]
    best = best_py = float("inf")
    for _ in range(3):
        m = kmm.Machine(layout="x86_32", mem="1536MiB")
        t0 = time.perf_counter()
        m.replay(trace, outcomes=False)
        best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        pure_python_replay(prefix, m.nr_pages)
        best_py = min(best_py, time.perf_counter() - t0)
    r["replay_order0_ops_per_s"] = len(trace) / best
    r["pure_python_buddy_ops_per_s"] = len(prefix) / best_py
    r["replay_vs_pure_python"] = r["replay_order0_ops_per_s"] / r["pure_python_buddy_ops_per_s"]

    code = (
        "import os,kmm\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
        "a = rss(); m = kmm.Machine(layout='x86_32', mem='1536MiB'); b = rss()\n"
        "print((b - a) / m.nr_pages)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    r["bytes_per_page"] = float(out.stdout.strip())

    best = float("inf")
    for _ in range(1 if quick else 3):
        t0 = time.perf_counter()
        m = kmm.Machine(layout="x86_64", mem="1TiB")
        best = min(best, time.perf_counter() - t0)
        del m
    r["boot_1tib_s"] = best
    return r


def use_kmm() -> None:
    """Make ``import kmm`` work here and in the subprocesses the sections start.

    The installed kmm (``pip install .`` or ``pip install -e .``) is used as it
    is. Only when none is importable does the source tree stand in, and only
    if its compiled extension has been built in place (``maturin develop``).
    """
    try:
        import kmm  # noqa: F401
    except ImportError:
        pass
    else:
        return
    if not any((SOURCE / "kmm" / f"_kmm{suffix}").exists() for suffix in EXTENSION_SUFFIXES):
        raise SystemExit(
            "benches/run.py: kmm is not installed and python/kmm holds no compiled extension; "
            "run `pip install .` or `pip install -e '.[test]'` first"
        )
    sys.path.insert(0, str(SOURCE))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SOURCE), os.environ.get("PYTHONPATH")) if p
    )


def load_module(name: str):
    path = BENCHES / f"{name}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"kmm_bench_{name}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SECTIONS: dict[str, Callable[[bool], dict[str, float]]] = {
    "engine": engine,
    "python": python_figures,
}
MODULE_SECTIONS = ["highalloc", "nic", "page_owner", "real", "sweep", "thp"]


def fmt(v: float) -> str:
    return f"{v:,.3f}" if abs(v) < 1e6 else f"{v:,.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller runs for a fast look")
    ap.add_argument("--json", metavar="FILE", help="write the figures as one flat JSON object")
    ap.add_argument("--only", help="comma-separated sections: " + ",".join([*SECTIONS, *MODULE_SECTIONS]))
    ap.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="run the sections N times in rounds; report each figure's median"
    )
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    use_kmm()
    wanted = set(args.only.split(",")) if args.only else None
    runs: dict[str, list[float]] = {}
    sections: list[tuple[str, Callable[[bool], dict[str, float]]]] = list(SECTIONS.items())
    for name in MODULE_SECTIONS:
        mod = load_module(name)
        if mod is not None:
            sections.append((name, mod.collect))
    for rnd in range(args.repeat):
        for name, fn in sections:
            if wanted and name not in wanted:
                continue
            tag = f"[{name}]" if args.repeat == 1 else f"[{name} {rnd + 1}/{args.repeat}]"
            print(f"{tag} running...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                got = fn(args.quick)
            except Exception as e:  # report and go on with the other sections
                print(f"{tag} FAILED: {type(e).__name__}: {e}", file=sys.stderr)
                runs.setdefault(f"{name}_failed", []).append(1.0)
                continue
            for k, v in got.items():
                runs.setdefault(k, []).append(float(v))
            print(f"{tag} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    figures = {k: statistics.median(v) for k, v in runs.items()}
    width = max((len(k) for k in figures), default=10)
    spread = args.repeat > 1
    head = f"{'figure':<{width}}  {'value':>16}  {'target':>10}  met"
    print(head + (f"  {'lowest':>16}  {'highest':>16}  runs" if spread else ""))
    for k, v in figures.items():
        tgt, ok = TARGETS.get(k, ("", None))
        met = "" if ok is None else ("yes" if ok(v) else "NO")
        line = f"{k:<{width}}  {fmt(v):>16}  {tgt:>10}  {met:<3}"
        if spread:
            line += f"  {fmt(min(runs[k])):>16}  {fmt(max(runs[k])):>16}  {len(runs[k])}"
        print(line.rstrip())
    out: dict[str, float] = {}
    for k, v in figures.items():
        out[k] = v
        if spread:
            out[f"{k}:min"] = min(runs[k])
            out[f"{k}:max"] = max(runs[k])
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
