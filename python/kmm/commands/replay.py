"""``kmm replay BUNDLE_OR_TRACE``: a real machine's trace replayed from its
snapshot, recorded (the kernel's pfns) or under kmm's allocators, end states
side by side."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import check_output_dir, write_json


def register(sub: argparse._SubParsersAction) -> None:
    from ..highalloc import VARIANTS
    from ..real_replay import DEFAULT_VARIANTS

    p = sub.add_parser(
        "replay",
        help="replay a real machine's kernel trace from its snapshot",
        description="Replay the kmem page events after snapshot S's end marker (and, with --compare E, "
        "up to E's begin marker) from S's memory: 'recorded' follows the kernel's own pfns and counts "
        "every event that disagrees with kmm's state as a divergence; 'policy' lets each variant's "
        "allocator place every block. Shows the end states side by side (buddyinfo, free pages per "
        "order, unusable and fragmentation index at orders 9 and 10, the high-order ceiling, "
        "fallbacks, divergences) and, with E, the free pfns both, only kmm and only the real machine hold.",
    )
    p.add_argument("input", help="a kmm record bundle, a recording directory, or a trace (ftrace/perf text)")
    p.add_argument("--snapshot", metavar="S", help="start snapshot (default: the bundle's start)")
    p.add_argument("--compare", metavar="E", help="end snapshot to compare with (default: the bundle's end)")
    p.add_argument("--variants", help=f"policy placement: comma-separated subset of {','.join(VARIANTS)} "
                   f"(default: {','.join(DEFAULT_VARIANTS)})")
    p.add_argument("--placement", choices=["recorded", "policy"], default="policy",
                   help="recorded: the kernel's pfns; policy: kmm's allocator places every block (default)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--plot", metavar="DIR", help="save a page map per column (and of the real end state) in DIR")
    p.set_defaults(func=run)


def _row(label: str, vals: list[Any], w: int) -> str:
    return f"{label:<28}" + "".join(f"{'-' if v is None else v:>{w}}" for v in vals)


def render(r: dict[str, Any]) -> str:
    cols = r["columns"]
    names = list(cols)
    w = max(14, *(len(n) + 2 for n in names))
    win = r["window"]
    out = [
        f"replay of {r['source']} ({r['placement']} placement) from snapshot {r['start']}"
        + (f" to {r['end']}" if r["end"] else ""),
        f"window: lines {win['start_marker_line'] or 1}..{win['end_marker_line'] or win['lines']}, "
        f"{win['events_in_window']} events ({win['events_before']} before, {win['events_after']} after); "
        f"{r['wall_s']} s, {r['events_per_s']} events/s",
        "",
        _row("", names, w),
        _row("free pages", [cols[n]["free_pages"] for n in names], w),
    ]
    for o in range(len(cols[names[0]]["free_per_order"])):
        out.append(_row(f"  free blocks of order {o}", [cols[n]["free_per_order"][o] for n in names], w))
    zones = list(cols[names[0]]["zones"])
    for z in zones:
        for key, short in (("unusable_index", "unusable"), ("fragmentation_index", "fragmentation")):
            for o in ("9", "10"):
                vals = [f"{cols[n]['zones'][z][key][o] / 1000:.3f}" if z in cols[n]["zones"] else None for n in names]
                out.append(_row(f"{z} {short}@{o}", vals, w))
    for o in ("9", "10"):
        out.append(_row(f"ceiling order {o}", [cols[n]["ceiling"][o] for n in names], w))
    out.append(_row("fallbacks", [cols[n]["fallbacks"] for n in names], w))
    if any("divergences" in cols[n] for n in names):
        out.append(_row("divergences (events)", [cols[n].get("divergences", {}).get("events") for n in names], w))
        out.append(_row("divergences (pages)", [cols[n].get("divergences", {}).get("pages") for n in names], w))
    if any("compare" in cols[n] for n in names):
        for k in ("free_both", "free_only_kmm", "free_only_real"):
            out.append(_row(k, [cols[n].get("compare", {}).get(k) for n in names], w))
        out.append(_row("agreement", [f"{cols[n]['compare']['agreement']:.5f}" if "compare" in cols[n] else None for n in names], w))
    out.append("")
    for n in names:
        out.append(f"buddyinfo ({n}):")
        out.append(cols[n]["buddyinfo"].rstrip("\n"))
    d = cols.get("recorded", {}).get("divergences")
    if d and d["events"]:
        out.append("")
        out.append("divergences by reason: " + ", ".join(f"{k} {v['events']} ({v['pages']} pages)" for k, v in d["by_reason"].items()))
        for e in d["examples"][:10]:
            out.append(f"  line {e['line']}: {e['event']} pfn {e['pfn']:#x} order {e['order']}: {e['reason']} (kmm: {e['found']})")
    return "\n".join(out) + "\n"


def run(args: argparse.Namespace) -> int:
    from ..real_replay import replay, warnings

    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    check_output_dir("--plot", args.plot)
    machines, r = replay(args.input, snapshot=args.snapshot, compare=args.compare,
                         placement=args.placement, variants=variants)
    for w in warnings(r):
        print(f"kmm replay: warning: {w}", file=sys.stderr)
    if args.plot:
        from ..plot import save_page_map

        d = Path(args.plot)
        d.mkdir(parents=True, exist_ok=True)
        r["plots"] = {}
        for name, m in machines.items():
            path = d / f"page-map-{name.replace('+', '_')}.png"
            save_page_map(m, path, title=f"{name}: end of {r['start']}..{r['end'] or 'trace end'}")
            r["plots"][name] = str(path)
    if args.json:
        write_json(r)
    else:
        sys.stdout.write(render(r))
    return 0
