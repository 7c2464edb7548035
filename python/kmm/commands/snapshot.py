"""``kmm snapshot``: read a running machine's physical memory into one file
(root), or pack copies of its /proc files taken elsewhere (``--from DIR``)."""

from __future__ import annotations

import argparse
import sys

from .common import check_output_file, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "snapshot",
        help="snapshot a running machine's memory (root), or pack a directory of /proc copies",
        description="Read /proc zoneinfo, buddyinfo, pagetypeinfo, vmstat, meminfo, kpageflags and "
        "kpagecount (and debugfs extfrag/ when mounted) into one zstd-compressed file, with every "
        "buffer allocated before reading; report whether buddyinfo changed while reading; write "
        "'kmm-snapshot LABEL begin/end' to trace_marker when tracefs is mounted. With --from DIR, "
        "pack copies of those files (named as the kernel names them) instead.",
    )
    p.add_argument("-o", "--output", help="snapshot file to write (default: kmm-snapshot-LABEL.tar.zst)")
    p.add_argument("--label", help="label (default: DIR's name with --from, else a UTC timestamp)")
    p.add_argument("--from", dest="from_dir", metavar="DIR", help="pack files copied from a machine")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import snapshot as snap

    check_output_file("-o", args.output)
    if args.from_dir:
        out = args.output
        if out is None:
            from pathlib import Path

            out = f"kmm-snapshot-{args.label or Path(args.from_dir).resolve().name}.tar.zst"
        s = snap.pack_dir(args.from_dir, out, label=args.label)
        changed = None if s.consistent is None else not s.consistent
        meta = s.meta
    else:
        files, meta = snap.take(label=args.label)
        out = args.output or f"kmm-snapshot-{meta['label']}.tar.zst"
        snap.write(files, meta, out)
        changed = meta["buddyinfo_changed"]
    if args.json:
        write_json({"output": str(out), "label": meta["label"], "buddyinfo_changed": changed, "meta": meta})
        return 0
    state = {True: "changed while reading (not consistent)", False: "unchanged while reading (consistent)", None: "not known (no buddyinfo.after)"}[changed]
    print(f"wrote {out} (label {meta['label']}): buddyinfo {state}")
    if meta.get("source") == "live" and not meta.get("trace_markers"):
        print("  (tracefs not mounted: no trace markers written)", file=sys.stderr)
    return 0
