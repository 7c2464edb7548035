"""``kmm thpchallenge``: mmtests' thpchallenge, THP faults on a fragmented machine."""

from __future__ import annotations

import argparse
import sys

from ..errors import BenchmarkError
from ..highalloc import VARIANTS
from ..thpchallenge import FRAGMENTERS, ThpChallengeConfig, format_report, run
from .common import check_output_file, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "thpchallenge",
        help="mmtests' thpchallenge: huge-page faults on a fragmented machine, per variant",
        description=(
            "Run a fragmenter (kernel builds, or fio threads writing 64 KiB files worth 150% of memory) "
            "on an x86_64 machine while workers fault 75% of memory as transparent huge pages, round after "
            "round; report per variant the THP faults that got a huge page (fault_huge) or fell back to base "
            "pages (fault_base), the success rate per round, and the compaction work per huge page."
        ),
    )
    p.add_argument("--quick", action="store_true", help="1 GiB for 40 simulated seconds")
    p.add_argument("--layout", choices=["x86_64"], help="address layout (default: x86_64, the one with THP)")
    p.add_argument("--mem", help="memory size (default: 2GiB; --quick: 1GiB)")
    p.add_argument("--seed", type=int, default=0, help="seed of the load (default: 0)")
    p.add_argument("--variants", help=f"comma-separated subset of: {','.join(VARIANTS)}")
    p.add_argument("--fragmenter", choices=FRAGMENTERS, default="kbuild", help="the fragmenting load (default: kbuild)")
    p.add_argument("--swap", choices=["on", "off"], help="swap space (default: on; off: anonymous memory is never reclaimed)")
    p.add_argument("--processes", type=int, default=None, help="worker processes (default: one per variant, taking turns on the cores, so that the load streams through them and is never kept whole; fewer keep the whole load; 1 runs every variant in this process)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' for stdout)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd)


def cmd(args: argparse.Namespace) -> int:
    kw: dict = {"seed": args.seed, "fragmenter": args.fragmenter}
    if args.layout:
        kw["layout"] = args.layout
    if args.mem:
        kw["mem"] = args.mem
    if args.variants:
        kw["variants"] = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.swap is not None:
        kw["swap"] = args.swap == "on"
    cfg = ThpChallengeConfig.quick(**kw) if args.quick else ThpChallengeConfig(**kw)
    cfg.validate()
    check_output_file("--json", args.json, BenchmarkError)
    res = run(cfg, processes=args.processes, progress=not args.no_progress and sys.stderr.isatty())
    if args.json == "-":
        write_json(res)
    else:
        sys.stdout.write(format_report(res))
        if args.json:
            write_json(res, args.json)
    return 0
