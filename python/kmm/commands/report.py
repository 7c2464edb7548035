"""``kmm report``: one self-contained HTML page of a sweep's results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import SweepError
from .common import check_output_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write a sweep's results as one self-contained HTML page",
        description=(
            "Write the summary tables and pictures (points per seed with mean and interval, "
            "successes over the attempts, buddyinfo heatmaps, page maps) of a kmm sweep as one "
            "HTML file with every image inlined; viewing it needs no network. Needs matplotlib."
        ),
    )
    p.add_argument("results", metavar="RESULTS", help="a kmm sweep directory or its results.parquet")
    p.add_argument("-o", "--output", default="report.html", metavar="FILE", help="the HTML file (default: report.html)")
    p.add_argument("--metric", help="the column the summary compares (default: success; xmit: pps)")
    p.add_argument("--baseline", help="the variant the others are compared with (default: the first)")
    p.set_defaults(func=cmd)


def cmd(args: argparse.Namespace) -> int:
    from ..report import sweep_report

    check_output_file("-o", args.output, SweepError)
    text = sweep_report(args.results, metric=args.metric, baseline=args.baseline)
    Path(args.output).write_text(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
