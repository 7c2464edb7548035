"""``kmm sweep``: run highalloc or the NIC table over a grid of parameters, on Dask."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from typing import Any

from ..errors import SweepError
from ..sweep import grid as _grid

#: (option, config key, parser, help) of every grid parameter of ``kmm sweep highalloc``
HIGHALLOC_AXES: tuple[tuple[str, str, Callable[[str, str], list[Any]], str], ...] = (
    ("mem", "mem", _grid.parse_strs, "memory sizes, e.g. 1GiB,2GiB (default: 1536MiB; --quick: 1GiB)"),
    ("layout", "layout", _grid.parse_strs, "address layouts, x86_32,x86_64 (default: x86_32)"),
    ("preset", "preset", _grid.parse_strs, "highalloc presets, e.g. v7,v19 (see kmm highalloc --help)"),
    ("order", "order", _grid.parse_ints, "allocation orders (default: 10)"),
    ("attempts", "attempts", _grid.parse_ints, "attempts per pass (default: 160; --quick: 40)"),
    ("warmup", "warmup_s", _grid.parse_floats, "warm-ups in simulated seconds (default: 180; --quick: 30)"),
    ("builds", "builds", _grid.parse_ints, "concurrent kernel builds (default: 7)"),
    ("jobs", "jobs", _grid.parse_ints, "make -jN of each build (default: 4)"),
)

XMIT_AXES: tuple[tuple[str, str, Callable[[str, str], list[Any]], str], ...] = (
    ("modes", "mode", _grid.parse_strs, "locking modes (default: every mode)"),
    ("drivers", "driver", _grid.parse_strs, "drivers (default: buggy_2005,fixed_2005,modern)"),
    ("producers", "producers", _grid.parse_ints, "producer threads (default: 2)"),
    ("packets", "packets", _grid.parse_ints, "packets per producer (default: 20000)"),
    ("ring", "ring", _grid.parse_ints, "ring sizes in descriptors (default: 64)"),
    ("race-window-ns", "race_window_ns", _grid.parse_ints, "pauses in the race window, ns (default: 1000)"),
    ("tx-rate", "tx_rate", _grid.parse_ints, "NIC descriptors per second, 0 = unlimited (default: 0)"),
)
XMIT_DEFAULTS = {
    "mode": "xmit_lock,lltx_driver_lock,lltx_lockfree",
    "driver": "buggy_2005,fixed_2005,modern",
    "producers": "2",
    "packets": "20000",
    "ring": "64",
    "race_window_ns": "1000",
}


def _common(p: argparse.ArgumentParser, metric: str) -> None:
    p.add_argument("--seeds", default="0", help="seeds: a range A-B, a list 1,5,9, or both (default: 0)")
    p.add_argument("--out", default="kmm-sweep", metavar="DIR", help="results directory: results.parquet and one record per cell (default: ./kmm-sweep)")
    p.add_argument("--scheduler", metavar="ADDR", help="a running Dask scheduler, e.g. tcp://HOST:8786 (default: a local cluster)")
    p.add_argument("--workers", type=int, help="workers of the local cluster (default: one per core)")
    p.add_argument("--csv", action="store_true", help="also write DIR/results.csv")
    p.add_argument("--metric", default=metric, help=f"the column the summary compares (default: {metric})")
    p.add_argument("--baseline", help="the variant the others are compared with (default: the first)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run highalloc or the NIC table over a grid of parameters, on Dask",
        description=(
            "Run every combination of the given parameter values (comma lists or ranges A-B) on "
            "Dask distributed (a local cluster, or --scheduler), keep each finished cell in --out "
            "(a rerun skips them), write the tidy table to DIR/results.parquet and print an "
            "mmtests compare-style summary."
        ),
    )
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    h = kinds.add_parser("highalloc", help="the high-order allocation benchmark", description="Sweep kmm highalloc.")
    h.add_argument("--quick", action="store_true", help="start every cell from highalloc's --quick machine")
    h.add_argument("--no-updatedb", action="store_true", help="leave updatedb out of the load")
    h.add_argument("--variants", help="comma-separated variants every cell runs (default: highalloc's)")
    for opt, _key, _parse, text in HIGHALLOC_AXES:
        h.add_argument(f"--{opt}", help=text)
    _common(h, "success")
    h.set_defaults(func=cmd)
    x = kinds.add_parser("xmit", help="the NETIF_F_LLTX transmit table", description="Sweep kmm xmit (modes x drivers x ...).")
    for opt, _key, _parse, text in XMIT_AXES:
        x.add_argument(f"--{opt}", help=text)
    _common(x, "pps")
    x.set_defaults(func=cmd)


def _grid_of(args: argparse.Namespace) -> dict[str, Any]:
    g: dict[str, Any] = {}
    if args.kind == "highalloc":
        if args.quick:
            g["quick"] = [True]
        if args.no_updatedb:
            g["updatedb"] = [False]
        if args.variants:
            g["variants"] = [_grid.parse_strs("variants", args.variants)]
        axes = HIGHALLOC_AXES
        defaults: dict[str, str] = {}
    else:
        axes = XMIT_AXES
        defaults = XMIT_DEFAULTS
    for opt, key, parse, _text in axes:
        text = getattr(args, opt.replace("-", "_"))
        if text is None:
            text = defaults.get(key)
        if text is not None:
            g[key] = parse(opt, text)
    g["seed"] = _grid.parse_ints("seeds", args.seeds)
    return g


def _plain(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain(v) for v in x]
    return x


def cmd(args: argparse.Namespace) -> int:
    from .. import sweep
    from ..sweep import highalloc as ha_cell
    from ..sweep import xmit as xmit_cell

    if args.workers is not None and args.workers < 1:
        raise SweepError(f"--workers must be at least 1, got {args.workers}")
    if args.scheduler is not None and args.workers is not None:
        raise SweepError("--workers sizes the local cluster: leave it out with --scheduler")
    g = _grid_of(args)
    mod = ha_cell if args.kind == "highalloc" else xmit_cell
    compare, by = ("variant", ["phase"]) if args.kind == "highalloc" else ("driver", [])
    progress = not args.no_progress and sys.stderr.isatty()
    try:
        df = sweep.run(mod.run_cell, g, args.scheduler, out=args.out, workers=args.workers, kind=args.kind, validate=mod.validate, csv=args.csv, progress=progress)
    except KeyboardInterrupt:
        print(f"kmm sweep: interrupted; the finished cells are kept in {args.out} (the same command resumes)", file=sys.stderr)
        # every record and the table are on disk and the cluster is closed: leave now, without
        # the interpreter's teardown of Dask's objects (a second or more on a busy machine)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    counts = df.attrs["kmm.sweep.counts"]
    summary = sweep.summarize(df, args.metric, compare, by=by, baseline=args.baseline) if counts["done"] + counts["skipped"] else []
    failed = df[df["status"] == "failed"]
    if args.json:
        out = {"kind": args.kind, "out": args.out, "counts": counts, "summary": _plain(summary),
               "failed": [{"config": {c: r[c] for c in df.attrs["kmm.sweep.config_columns"] if c in r}, "error": r["error"]} for r in failed.to_dict("records")]}
        sys.stdout.write(json.dumps(out, indent=2, default=str, allow_nan=False) + "\n")
    else:
        sys.stdout.write(sweep.format_compare(summary, title=args.kind))
        for r in failed.to_dict("records"):
            sys.stdout.write(f"FAILED seed {r['seed']} cell {r['cell']}: {r['error']}\n")
        sys.stdout.write(
            f"{counts['done']} cells done, {counts['failed']} failed, {counts['skipped']} skipped (finished earlier); "
            f"results: {args.out}/results.parquet ({len(df)} rows)\n"
        )
    return 1 if counts["failed"] else 0
