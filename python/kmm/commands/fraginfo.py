"""``kmm fraginfo``: the kernel's fragmentation indices for a real or saved /proc file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import procfs
from ..errors import ParseError
from .common import write_json

DEFAULT_FILE = "/proc/buddyinfo"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fraginfo",
        help="unusable and fragmentation indices of a /proc/buddyinfo or /proc/pagetypeinfo",
        description=(
            "Read /proc/buddyinfo (or /proc/pagetypeinfo, detected automatically) from a "
            "running kernel, a saved copy or a pipe, and print the unusable free space index "
            "and the fragmentation index of every zone and order exactly as debugfs "
            "extfrag/unusable_index and extfrag/extfrag_index print them. Unusable index: the "
            "share of free memory too fragmented to serve the order (0..1). Fragmentation "
            "index: -1.000 when the allocation would succeed; otherwise near 0 means it fails "
            "for lack of memory, near 1 because memory is fragmented."
        ),
    )
    p.add_argument(
        "file",
        nargs="?",
        default=DEFAULT_FILE,
        metavar="FILE|-",
        help=f"buddyinfo or pagetypeinfo text; '-' reads stdin (default: {DEFAULT_FILE})",
    )
    p.add_argument(
        "--only",
        choices=("unusable", "extfrag"),
        help="print just one table, byte for byte as its debugfs file (no heading)",
    )
    p.add_argument(
        "--layout",
        choices=tuple(procfs.LAYOUT_ZONES),
        help="zone layout when the zone names leave it open (default: inferred)",
    )
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.set_defaults(func=run)


#: Largest input read: /proc/pagetypeinfo of a 64-node machine is well under 1 MiB.
MAX_PROC_BYTES = 16 << 20


def read_source(path: str) -> str:
    """The whole text of ``path`` ('-' = stdin), read to EOF without stat()ing for a size."""
    chunks = []
    total = 0
    with open(sys.stdin.fileno() if path == "-" else path, "rb", buffering=0, closefd=path != "-") as f:
        while True:
            chunk = f.read(65536)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_PROC_BYTES:
                raise ParseError(
                    f"{path}: more than {MAX_PROC_BYTES >> 20} MiB, not a /proc/buddyinfo or /proc/pagetypeinfo"
                )
            chunks.append(chunk)
    data = b"".join(chunks)
    return data.decode("utf-8", errors="replace")


def report(info: procfs.BuddyInfo | procfs.PageTypeInfo, source: str) -> dict[str, Any]:
    """The JSON document: per populated zone, nr_free and both indices for every order."""
    buddy = info.buddyinfo() if isinstance(info, procfs.PageTypeInfo) else info
    unusable = procfs.unusable_indices(buddy.nr_free)
    extfrag = procfs.fragmentation_indices(buddy.nr_free)
    pages = buddy.free_pages()
    zones = []
    for node, zone, counts in buddy.zones():
        zt = buddy.zone_names.index(zone)
        zones.append(
            {
                "node": node,
                "zone": zone,
                "nr_free": [int(c) for c in counts],
                "free_pages": int(pages[node, zt]),
                "unusable_index": [int(v) / 1000 for v in unusable[node, zt]],
                "extfrag_index": [int(v) / 1000 for v in extfrag[node, zt]],
            }
        )
    doc: dict[str, Any] = {
        "source": source,
        "format": "pagetypeinfo" if isinstance(info, procfs.PageTypeInfo) else "buddyinfo",
        "layout": buddy.layout,
        "zone_names": list(buddy.zone_names),
        "nr_orders": buddy.nr_orders,
        "zones": zones,
    }
    if isinstance(info, procfs.PageTypeInfo):
        doc["pageblock_order"] = info.pageblock_order
        doc["type_names"] = list(info.type_names)
        doc["capped"] = info.any_capped
    return doc


def run(args: argparse.Namespace) -> int:
    source = "<stdin>" if args.file == "-" else args.file
    try:
        text = read_source(args.file)
    except OSError as e:
        print(f"kmm fraginfo: cannot read {source}: {e.strerror or e}", file=sys.stderr)
        return 1
    info = procfs.parse(text, layout=args.layout)
    if args.json:
        write_json(report(info, source))
        return 0
    unusable = procfs.unusable_text(info)
    extfrag = procfs.extfrag_text(info)
    if args.only == "unusable":
        sys.stdout.write(unusable)
    elif args.only == "extfrag":
        sys.stdout.write(extfrag)
    else:
        if isinstance(info, procfs.PageTypeInfo):
            note = " (some counts were capped at 100000)" if info.any_capped else ""
            sys.stdout.write(
                f"# {source}: pagetypeinfo, free blocks summed over migrate types{note}\n"
            )
        sys.stdout.write(
            "extfrag/unusable_index\n" + unusable + "\nextfrag/extfrag_index\n" + extfrag
        )
    sys.stdout.flush()
    return 0


__all__ = ["DEFAULT_FILE", "read_source", "register", "report", "run"]
