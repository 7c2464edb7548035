"""``kmm inspect SNAPSHOT``: a real machine's memory as kmm sees it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from .common import check_output_file, write_json

#: pageblock content classes, as ``kmm inspect`` counts them
CONTENT = ("free", "movable", "unmovable", "mixed", "reserved")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="a real machine's snapshot as kmm sees it",
        description="Load a snapshot (file or directory, see `kmm snapshot`) into a kmm machine and "
        "show its zones, buddyinfo (and whether kmm reproduces the snapshot's), pagetypeinfo, "
        "the extfrag indices at orders 9 and 10, the high-order ceiling, and its pageblocks by content.",
    )
    p.add_argument("snapshot", help="snapshot file or directory")
    p.add_argument("--allocator", choices=["vanilla", "antifrag", "mobility"], default="mobility",
                   help="allocator to load it under (default: mobility, today's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--plot", metavar="FILE", help="save a page-map picture (.png, .svg)")
    p.set_defaults(func=run)


def pageblock_content(page_map: np.ndarray, zones: list[Any], block_order: int) -> dict[str, dict[str, int]]:
    """Per zone, the pageblocks holding a pfn of it (as pagetypeinfo counts
    them, a zone starting at pfn 1 included) by content: ``free`` (only free
    or pcp pages), ``movable`` (allocated pages all movable), ``unmovable``
    (allocated pages all unmovable or reclaimable kernel pages), ``mixed``
    (both), ``reserved`` (only reserved pages: holes and unmanaged memory).
    Pfns of a pageblock outside the zone count as reserved."""
    from ..machine import PM_FREE, PM_PCP, PM_RESERVED, PM_USERRCLM

    size = 1 << block_order
    out: dict[str, dict[str, int]] = {}
    for z in zones:
        s, e = z.start_pfn, z.start_pfn + z.spanned
        first = s // size * size
        nb = -(-(e - first) // size)
        pm = np.full(nb * size, PM_RESERVED, dtype=page_map.dtype)
        pm[s - first : e - first] = page_map[s:e]
        pm = pm.reshape(nb, size)
        resv = (pm == PM_RESERVED).all(axis=1)
        mov = (pm == PM_USERRCLM).any(axis=1)
        unmov = ((pm != PM_FREE) & (pm != PM_PCP) & (pm != PM_RESERVED) & (pm != PM_USERRCLM)).any(axis=1)
        c = {
            "free": int((~resv & ~mov & ~unmov).sum()),
            "movable": int((mov & ~unmov).sum()),
            "unmovable": int((unmov & ~mov).sum()),
            "mixed": int((mov & unmov).sum()),
            "reserved": int(resv.sum()),
        }
        out[f"{z.node}:{z.zone}"] = c
    return out


def inspect(path: str, allocator: str = "mobility") -> tuple[Any, dict[str, Any]]:
    """(machine, report) of a snapshot."""
    from .. import procfs
    from ..machine import Machine

    m = Machine.from_snapshot(path, allocator=allocator)
    snap = m.snapshot
    fa = m.free_area()
    ui = procfs.unusable_indices(fa)
    fi = procfs.fragmentation_indices(fa)
    real = {(z.node, z.name): z for z in snap.zones()}
    zones = []
    for st in m.zone_stats():
        zt = m.zone_names.index(st.zone)
        rz = real[(st.node, st.zone)]
        zones.append({
            "node": st.node, "zone": st.zone, "start_pfn": rz.start_pfn, "spanned": rz.spanned,
            "present": rz.present, "managed": rz.managed, "free": st.free,
            "watermarks": {"min": st.min, "low": st.low, "high": st.high},
            "nr_free": [int(x) for x in fa[st.node, zt]],
            "unusable_index": {str(o): int(ui[st.node, zt, o]) for o in (9, 10)},
            "fragmentation_index": {str(o): int(fi[st.node, zt, o]) for o in (9, 10)},
            "pages": m.snapshot_classes[(st.node, st.zone)],
        })
    report = {
        "label": snap.label,
        "source": snap.source,
        "allocator": m.allocator,
        "consistent": snap.consistent,
        "buddyinfo_equal": m.buddyinfo() == snap.texts["buddyinfo"],
        "zones": zones,
        "ceiling": {str(o): m.highorder_ceiling(o) for o in (9, 10)},
        "pageblocks": pageblock_content(m.page_map(), m.zone_stats(), m.pageblock_order),
        "pageblock_order": m.pageblock_order,
    }
    return m, report


def run(args: argparse.Namespace) -> int:
    check_output_file("--plot", args.plot)
    m, r = inspect(args.snapshot, args.allocator)
    if args.plot:
        from ..plot import save_page_map

        save_page_map(m, args.plot, title=f"{r['label']} ({r['allocator']})")
    if args.json:
        write_json(r)
        return 0
    out = sys.stdout
    cons = {True: "consistent", False: "NOT consistent (buddyinfo changed while reading)", None: "consistency unknown"}[r["consistent"]]
    out.write(f"snapshot {r['label']} ({r['source']}), {cons}; loaded under {r['allocator']}\n\n")
    out.write("zones:\n")
    for z in r["zones"]:
        p = z["pages"]
        out.write(
            f"  Node {z['node']}, zone {z['zone']:>8}: start_pfn {z['start_pfn']} spanned {z['spanned']} "
            f"present {z['present']} managed {z['managed']} free {z['free']}\n"
            f"      pages: free {p['free']} movable {p['movable']} slab {p['slab']} unmovable {p['unmovable']} reserved {p['reserved']}\n"
        )
    same = "equal to the snapshot's" if r["buddyinfo_equal"] else "DIFFERS from the snapshot's"
    out.write(f"\nbuddyinfo (kmm's, {same}):\n{m.buddyinfo()}\n")
    out.write(f"pagetypeinfo (the snapshot's):\n{m.snapshot.texts['pagetypeinfo']}\n")
    out.write("extfrag (order 9, 10):\n")
    for z in r["zones"]:
        u, f = z["unusable_index"], z["fragmentation_index"]
        out.write(
            f"  Node {z['node']}, zone {z['zone']:>8}: unusable {u['9'] / 1000:.3f} {u['10'] / 1000:.3f}"
            f"  fragmentation {f['9'] / 1000:.3f} {f['10'] / 1000:.3f}\n"
        )
    out.write(f"\nhigh-order ceiling: order 9: {r['ceiling']['9']} blocks, order 10: {r['ceiling']['10']} blocks\n")
    out.write(f"\npageblocks (order {r['pageblock_order']}) by content:\n")
    for zone, c in r["pageblocks"].items():
        out.write(f"  {zone}: " + "  ".join(f"{k} {c[k]}" for k in CONTENT) + "\n")
    return 0
