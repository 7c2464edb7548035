"""``kmm buddyinfo``: boot a machine and print its /proc/buddyinfo."""

from __future__ import annotations

import argparse
import sys

from .common import add_machine_options, machine_from_args, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "buddyinfo",
        help="boot a machine and print /proc/buddyinfo",
        description="Boot a simulated machine and print its /proc/buddyinfo, byte for byte "
        "as the kernel prints it (one line per populated zone, free blocks per order 0..10).",
    )
    add_machine_options(p)
    p.add_argument("--pagetypeinfo", action="store_true", help="print /proc/pagetypeinfo too")
    p.add_argument("--json", action="store_true", help="print JSON instead of the /proc text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    m = machine_from_args(args)
    if args.json:
        fa = m.free_area()
        zones = []
        for st in m.zone_stats():
            zt = m.zone_names.index(st.zone)
            zones.append(
                {
                    "node": st.node,
                    "zone": st.zone,
                    "nr_free": [int(x) for x in fa[st.node, zt]],
                    "free_pages": st.free,
                    "managed": st.managed,
                    "watermarks": {"min": st.min, "low": st.low, "high": st.high},
                }
            )
        write_json({"layout": m.layout, "allocator": m.allocator, "pages": m.nr_pages, "zones": zones})
        return 0
    sys.stdout.write(m.buddyinfo())
    if args.pagetypeinfo:
        sys.stdout.write("\n" + m.pagetypeinfo())
    return 0
