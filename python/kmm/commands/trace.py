"""``kmm trace import``: a real kernel trace (ftrace or perf script text of the
kmem page events) into a kmm trace file."""

from __future__ import annotations

import argparse
import sys

from .common import check_output_file, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trace",
        help="real kernel traces: import ftrace / perf script text",
        description="Work with real kernel traces of the kmem page events.",
    )
    tsub = p.add_subparsers(dest="trace_command", metavar="SUBCOMMAND")
    tsub.required = True
    imp = tsub.add_parser(
        "import",
        help="import ftrace trace/trace_pipe or perf script text into a kmm trace",
        description="Stream a tracefs `trace` or `trace_pipe` text, or `perf script` output, of the "
        "kmem page events (auto-detected; zstd or gzip compressed accepted; '-' reads stdin) into a "
        "kmm trace (.npy of kmm.TRACE_DTYPE). Unknown events and lines are counted and reported; "
        "only an input of which nothing parses is an error.",
    )
    imp.add_argument("input", help="trace text, perf script output, or '-' for stdin")
    imp.add_argument("-o", "--output", help="write the kmm trace here (.npy); default: summary only")
    imp.add_argument("--stats", metavar="FILE", help="tracefs per_cpu/cpu*/stats after the run (concatenated): report its dropped and overwritten events")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    imp.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    from ..kernel_trace import (
        _Import,
        _stats_text,
        add_ring_stats,
        import_to_file,
        summary_json,
        warnings,
    )

    check_output_file("-o", args.output)
    if args.output:
        from ..trace import TRACE_DTYPE

        summary = import_to_file(args.input, args.output, TRACE_DTYPE)
    else:
        run = _Import(args.input, 4 << 20)
        for _ in run:
            pass
        summary = run.summary
    if args.stats:
        add_ring_stats(summary, _stats_text(args.stats))
    for w in warnings(summary):
        print(f"kmm trace import: warning: {w}", file=sys.stderr)
    if args.json:
        write_json(summary_json(summary))
        return 0
    ev = summary["events"]
    out = sys.stdout
    out.write(f"format: {summary['format']}\nlines: {summary['lines']}\n")
    for name, n in ev.items():
        out.write(f"  {name}: {n}\n")
    out.write(f"allocations: {summary['allocations']}\nfrees: {summary['frees']}\n")
    out.write(f"live objects at the end: {summary['live_objects']}\n")
    for name, n in summary["skipped"].items():
        if n:
            out.write(f"skipped {name}: {n}\n")
    for m in summary["markers"]:
        out.write(f"marker at record {m['record']}: {m['text']}\n")
    if args.output:
        out.write(f"wrote {summary['records']} records to {args.output}\n")
    return 0
