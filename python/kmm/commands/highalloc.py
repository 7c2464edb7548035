"""``kmm highalloc``: reproduce Mel Gorman's 2005 high-order allocation experiment."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from .. import mmtests
from ..errors import BenchmarkError
from ..highalloc import (
    VARIANTS,
    HighallocConfig,
    format_report,
    format_seeds_report,
    run,
    run_seeds,
)
from ..mmtests import MmtestsConfig
from ..presets import PRESETS
from .common import check_output_dir, check_output_file, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "highalloc",
        help="the high-order allocation benchmark (2005: vanilla 3/160, anti-frag 81/160)",
        description=(
            "Load a 32-bit 1.5 GiB machine with updatedb and 7 concurrent make -j4 kernel builds "
            "for 180 simulated seconds, then try 160 order-10 GFP_HIGHUSER allocations, one every "
            "HZ/10, with the load running, holding the successes; then stop the load and try again "
            "at rest. Runs the same load on vanilla, antifrag (Mel Gorman, 2005), mobility (2.6.24+) "
            "and antifrag with active freeing, and reports them side by side with the ceiling."
        ),
    )
    p.add_argument(
        "--mmtests", action="store_true",
        help="mmtests' stress-highalloc instead: x86_64 2 GiB, order 9, passes 1 and 2 under load asking for "
        "--percent of memory at 16 MB/s, pass 3 at rest after the load is killed, its trees deleted and caches dropped",
    )
    p.add_argument("--percent", type=float, help="--mmtests: share of memory asked for per pass (default: 95)")
    p.add_argument(
        "--resident", action="store_true",
        help="--mmtests: a machine without swap whose long-lived processes keep working: their anonymous "
        "working sets, faulted again page by page through the run, are movable but cannot be reclaimed",
    )
    p.add_argument(
        "--preset", choices=list(PRESETS),
        help="the setup of one of Mel Gorman's 2005 posts (default: v7); other options override it",
    )
    p.add_argument("--quick", action="store_true", help="a small machine for a fast look (1 GiB, 30 s warm-up, 40 attempts)")
    p.add_argument("--seed", type=int, default=0, help="seed of the load (default: 0)")
    p.add_argument(
        "--seeds", type=int, default=1,
        help="run seeds SEED..SEED+N-1 one after the other and report mean, sd, min, max (default: 1)",
    )
    p.add_argument("--mem", help="memory size (default: 1536MiB; --quick: 1GiB)")
    p.add_argument("--layout", choices=["x86_32", "x86_64"], help="address layout (default: x86_32)")
    p.add_argument("--order", type=int, help="allocation order (default: 10)")
    p.add_argument("--attempts", type=int, help="attempts per pass (default: 160; --quick: 40)")
    p.add_argument("--attempts-rest", type=int, help="attempts of the pass at rest (default: as --attempts)")
    p.add_argument("--min-free-kbytes", type=int, help="vm.min_free_kbytes (default: the kernel's boot-time rule)")
    p.add_argument("--warmup", type=float, help="the script's sleep before the attempts, in simulated seconds from the end of the copy loop "
                   "(default: 180; --quick: 30; --mmtests: 300)")
    p.add_argument(
        "--builds", type=int,
        help="kernel trees copied and built (default: the preset's, 7 in the default run and --quick; with --mem "
        "or --layout and no preset, trees worth 1.5x RAM, docs/workloads.md; --mmtests: mmtests' rule, "
        "MemTotal MiB / 400 copies plus the primary tree)",
    )
    p.add_argument("--jobs", type=int, help="make -jN of each build (default: 4; --mmtests: 1, as mmtests built)")
    p.add_argument("--cpus", type=int, help="CPUs, each with its own per-cpu page lists (default: 1; v19-reply: 4)")
    p.add_argument("--oom", choices=["on", "off"], help="the OOM killer (default: on; v14 and v19 ran with it off)")
    p.add_argument(
        "--swap", choices=["on", "off"],
        help="swap space (default: on, as the 2005 machines had it; off: anonymous memory is never reclaimed)",
    )
    p.add_argument("--no-updatedb", action="store_true", help="leave updatedb out of the load")
    p.add_argument(
        "--nic-rings", type=int, default=0, metavar="N",
        help="N NIC rx rings of 1,024 2 KiB buffers (512 pages each) pinned from the start, "
        "refilled as packets arrive during the load (default: 0)",
    )
    p.add_argument(
        "--nic-rx-pps", type=float, metavar="PPS",
        help="packets per second per NIC ring while the load runs (default: 1000)",
    )
    p.add_argument("--variants", help=f"comma-separated subset of: {','.join(VARIANTS)}")
    p.add_argument("--processes", type=int, default=None, help="worker processes (default: one per variant, taking turns on the cores, so that the load streams through them and is never kept whole; fewer keep the whole load; 1 runs every variant in this process)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' for stdout)")
    p.add_argument("--plot", metavar="DIR", help="write page-map pictures per variant: before the attempts, after them under load, at rest (needs matplotlib)")
    p.add_argument("--html", metavar="FILE", help="write one self-contained HTML report of the run (needs matplotlib)")
    p.add_argument("--no-buddyinfo", action="store_true", help="leave the buddyinfo dumps out of the report")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd)


def config_from_args(args: argparse.Namespace) -> HighallocConfig:
    kw = {}
    for opt, key in (
        ("mem", "mem"), ("layout", "layout"), ("order", "order"), ("attempts", "attempts"),
        ("warmup", "warmup_s"), ("builds", "builds"), ("jobs", "jobs"), ("nic_rx_pps", "nic_rx_pps"),
        ("attempts_rest", "attempts_rest"), ("min_free_kbytes", "min_free_kbytes"), ("cpus", "cpus"),
    ):
        v = getattr(args, opt)
        if v is not None:
            kw[key] = v
    kw["seed"] = args.seed
    kw["nic_rings"] = args.nic_rings
    if args.oom is not None:
        kw["oom"] = args.oom == "on"
    if args.swap is not None:
        kw["swap"] = args.swap == "on"
    if args.no_updatedb:
        kw["updatedb"] = False
    if args.variants:
        kw["variants"] = [v.strip() for v in args.variants.split(",") if v.strip()]
    preset = args.preset
    if preset is None and not args.quick and args.mem is None and args.layout is None:
        preset = "v7"  # the default run is V7's setup
    if preset is not None:
        if args.quick:
            raise BenchmarkError("--quick is its own small setup: leave out --preset")
        return HighallocConfig.from_preset(preset, **kw)
    return HighallocConfig.quick(**kw) if args.quick else HighallocConfig(**kw)


def mmtests_config_from_args(args: argparse.Namespace) -> MmtestsConfig:
    for opt in ("preset", "attempts_rest", "min_free_kbytes", "oom", "cpus", "swap"):
        if getattr(args, opt) is not None:
            raise BenchmarkError(f"--{opt.replace('_', '-')} does not apply to --mmtests")
    kw = {}
    for opt, key in (
        ("mem", "mem"), ("layout", "layout"), ("order", "order"), ("percent", "percent"),
        ("warmup", "warmup_s"), ("builds", "builds"), ("jobs", "jobs"), ("nic_rx_pps", "nic_rx_pps"),
    ):
        v = getattr(args, opt)
        if v is not None:
            kw[key] = v
    kw["seed"] = args.seed
    kw["nic_rings"] = args.nic_rings
    if args.no_updatedb:
        kw["updatedb"] = False
    if args.resident:
        kw["resident"] = True
    if args.variants:
        kw["variants"] = [v.strip() for v in args.variants.split(",") if v.strip()]
    return MmtestsConfig.quick(**kw) if args.quick else MmtestsConfig(**kw)


def cmd_mmtests(args: argparse.Namespace) -> int:
    for opt in ("attempts", "plot"):
        if getattr(args, opt) is not None:
            raise BenchmarkError(f"--{opt} does not apply to --mmtests (--percent sets the attempts)")
    if args.seeds != 1:
        raise BenchmarkError("--seeds does not apply to --mmtests")
    cfg = mmtests_config_from_args(args)
    cfg.validate()
    check_output_file("--json", args.json, BenchmarkError)
    res = mmtests.run(cfg, processes=args.processes, progress=not args.no_progress and sys.stderr.isatty())
    if args.json == "-":
        write_json(res)
    else:
        sys.stdout.write(mmtests.format_report(res))
        if args.json:
            write_json(res, args.json)
    return 0


def cmd(args: argparse.Namespace) -> int:
    if args.mmtests:
        return cmd_mmtests(args)
    if args.resident:
        raise BenchmarkError("--resident applies to --mmtests only")
    if args.percent is not None:
        raise BenchmarkError("--percent applies to --mmtests only")
    cfg = config_from_args(args)
    cfg.validate()
    check_output_file("--json", args.json, BenchmarkError)
    if args.seeds != 1:
        if args.plot or args.html:
            raise BenchmarkError("--plot and --html draw one run: leave out --seeds (kmm sweep and kmm report draw many)")
        res = run_seeds(cfg, args.seeds, processes=args.processes, progress=not args.no_progress and sys.stderr.isatty())
        if args.json == "-":
            write_json(res)
        else:
            sys.stdout.write(format_seeds_report(res))
            if args.json:
                write_json(res, args.json)
        return 0
    plot_dir = Path(args.plot) if args.plot else None
    maps_dir = None
    tmp = None
    if plot_dir or args.html:
        from .. import plot

        plot._matplotlib()  # fail early, with an install hint, if matplotlib is missing
        check_output_dir("--plot", plot_dir, BenchmarkError)
        check_output_file("--html", args.html, BenchmarkError)
        tmp = tempfile.TemporaryDirectory(prefix="kmm-maps-")
        maps_dir = tmp.name
    res = run(cfg, processes=args.processes, progress=not args.no_progress and sys.stderr.isatty(), page_maps=maps_dir)
    if args.json == "-":
        write_json(res)
    else:
        sys.stdout.write(format_report(res, buddyinfo=not args.no_buddyinfo))
        if args.json:
            write_json(res, args.json)
    if plot_dir and maps_dir:
        _plots(res, cfg, Path(maps_dir), plot_dir)
    if args.html and maps_dir:
        _html(res, Path(maps_dir), Path(args.html))
    if tmp is not None:
        tmp.cleanup()
    return 0


def _html(res, maps: Path, out: Path) -> None:
    import numpy as np

    from ..report import highalloc_report

    arrays = {}
    for name in res["variants"]:
        for when, stem in (("before", "before"), ("after", "under_load")):
            f = maps / f"{name}-{stem}.npy"
            if f.exists():
                arrays[f"page_map|{name}|{when}"] = np.load(f)
    out.write_text(highalloc_report(res, arrays))
    print(f"wrote {out}", file=sys.stderr)


def _plots(res, cfg: HighallocConfig, maps: Path, out: Path) -> None:
    import numpy as np

    from .. import plot
    from ..machine import Machine

    zones = Machine(layout=cfg.layout, mem=cfg.mem).zone_stats()  # zone boundaries for the picture
    for f in sorted(maps.glob("*.npy")):
        variant, _, pas = f.stem.rpartition("-")
        fig = plot.page_map(np.load(f), zones=zones, title=f"{variant}, {pas.replace('_', ' ')}")
        path = out / f"{f.stem}.png"
        fig.savefig(path)
        print(f"wrote {path}", file=sys.stderr)
