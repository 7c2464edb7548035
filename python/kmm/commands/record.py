"""``kmm record -o FILE -- CMD ...``: snapshot, trace the kmem page events
while CMD runs, snapshot again, bundle (root)."""

from __future__ import annotations

import argparse
import sys

from .common import check_output_file, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record",
        help="record a command's page allocations with snapshots before and after (root)",
        description="Snapshot the machine, enable the kmem page events (mm_page_alloc, "
        "mm_page_alloc_zone_locked, mm_page_free, mm_page_free_batched, mm_page_pcpu_drain, "
        "mm_page_alloc_extfrag) with overwrite off and a buffer sized for the run, run CMD, snapshot "
        "again, disable the events, and write one bundle for `kmm replay`. Every tracefs setting it "
        "changes is restored, also on Ctrl-C or failure; lost events are reported.",
    )
    p.add_argument("-o", "--output", required=True, help="bundle to write (an uncompressed tar)")
    p.add_argument("--buffer-kb", type=int, help="ring buffer per CPU in KiB (default: 64 MiB, "
                   "at most an eighth of MemAvailable over all CPUs)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import SnapshotError
    from ..recording import record

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if args.buffer_kb is not None and args.buffer_kb < 1:
        raise SnapshotError(f"--buffer-kb must be positive, not {args.buffer_kb}")
    check_output_file("-o", args.output, SnapshotError)
    s = record(args.output, cmd, buffer_kb=args.buffer_kb)
    rb = s["ring_buffer"]
    if rb["dropped"] or rb["overrun"]:
        print(f"kmm record: warning: the ring buffer dropped {rb['dropped']} and overwrote {rb['overrun']} events: "
              "the trace is incomplete (use a larger --buffer-kb)", file=sys.stderr)
    for e in s.get("restore_errors", []):
        print(f"kmm record: warning: restoring tracefs: {e}", file=sys.stderr)
    if args.json:
        write_json(s)
    else:
        cons = {True: "consistent", False: "not consistent"}
        print(f"wrote {s['output']}: {rb['entries']} events in {s['seconds']} s "
              f"({rb['dropped'] + rb['overrun']} lost), command exit {s['exit_status']}; "
              f"start snapshot {cons[s['start_consistent']]}, end {cons[s['end_consistent']]}")
    return 0 if s["exit_status"] == 0 else 1
