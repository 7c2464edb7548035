"""``kmm xmit``: run the transmit path in every locking mode x driver and compare."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import nic
from .common import write_json

#: Drivers in the default matrix (``modern_nobarrier`` on request).
DEFAULT_DRIVERS = ("buggy_2005", "fixed_2005", "modern", "modern_bql", "modern_xmit_more")

#: (header, key, width) of the table's columns after mode and driver.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("ok", "verified", 3),
    ("kpps", "pps", 6),
    ("p50us", "latency_ns_p50", 6),
    ("p99us", "latency_ns_p99", 7),
    ("p999us", "latency_ns_p999", 7),
    ("requeues", "requeues", 8),
    ("busy", "busy", 6),
    ("BUGspur", "spurious_bug_logs", 7),
    ("BUGreal", "real_bug_logs", 7),
    ("harmless", "harmless_races", 8),
    ("falsewk", "false_wakes", 7),
    ("stops", "stops", 6),
    ("wakes", "wakes", 6),
    ("collide", "collisions", 7),
    ("lost", "lost_wakeups", 5),
    ("bell/pkt", "doorbells_per_packet", 8),
)


def _names(text: str, known: tuple[str, ...], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"no {what} given")
    for n in names:
        if n not in known:
            raise argparse.ArgumentTypeError(f"unknown {what} {n!r} (known: {', '.join(known)})")
    return names


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _nonneg(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {v}")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "xmit",
        help="run the NETIF_F_LLTX transmit race: locking modes x drivers",
        description=(
            "Send numbered packet streams from several CPUs (threads) through a NIC "
            "transmit ring, in each locking mode (xmit_lock, lltx_driver_lock, "
            "lltx_lockfree) with each driver (buggy_2005, fixed_2005, modern), verify "
            "exactly-once in-order delivery and print the counters side by side."
        ),
    )
    p.add_argument(
        "--modes",
        type=lambda s: _names(s, nic.MODES, "mode"),
        default=list(nic.MODES),
        help=f"comma-separated modes (default: {','.join(nic.MODES)})",
    )
    p.add_argument(
        "--drivers",
        type=lambda s: _names(s, nic.DRIVERS, "driver"),
        default=list(DEFAULT_DRIVERS),
        help=f"comma-separated drivers (default: {','.join(DEFAULT_DRIVERS)}; "
        f"known: {','.join(nic.DRIVERS)})",
    )
    p.add_argument(
        "--packets", type=_positive, default=100_000, help="packets per producer (default: 100000)"
    )
    p.add_argument(
        "--producers", type=_positive, default=2, help="producer threads, one per CPU (default: 2)"
    )
    p.add_argument(
        "--ring",
        type=_positive,
        default=64,
        help="ring size in descriptors, a power of two (default: 64)",
    )
    p.add_argument(
        "--max-descs",
        type=_positive,
        default=4,
        help="worst-case descriptors per packet (default: 4)",
    )
    p.add_argument(
        "--race-window-ns",
        type=_nonneg,
        default=1000,
        help="pause between the queue check and the ring reservation, ns; widens the 2005 "
        "race on machines with few cores, 0 = natural race only (default: 1000)",
    )
    p.add_argument(
        "--tx-rate",
        type=_nonneg,
        default=0,
        help="NIC descriptors per second, 0 = unlimited (default: 0)",
    )
    p.add_argument(
        "--tx-bulk",
        type=_positive,
        default=8,
        help="packets per qdisc dequeue; all but the last carry xmit_more (default: 8)",
    )
    p.add_argument(
        "--napi-budget",
        type=_positive,
        default=64,
        help="packets one NAPI poll may complete (default: 64)",
    )
    p.add_argument(
        "--coalesce-frames",
        type=_positive,
        default=16,
        help="completion interrupt after this many packets (ethtool tx-frames; default: 16)",
    )
    p.add_argument(
        "--coalesce-usecs",
        type=_nonneg,
        default=8,
        help="...or once the oldest done packet waited this long (tx-usecs; default: 8)",
    )
    p.add_argument("--seed", type=_nonneg, default=0, help="seed of the packet sizes (default: 0)")
    p.add_argument(
        "--plot",
        metavar="DIR",
        help="write the BQL limit over time of every BQL run to DIR (needs matplotlib)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def format_table(results: list[dict[str, Any]]) -> str:
    """The comparison table, one row per (mode, driver) run."""
    mw = max([len("mode")] + [len(r["mode"]) for r in results])
    dw = max([len("driver")] + [len(r["driver"]) for r in results])
    head = f"{'mode':<{mw}}  {'driver':<{dw}}" + "".join(f" {h:>{w}}" for h, _, w in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in results:
        cells = []
        for _, key, w in COLUMNS:
            v = r[key]
            if key == "verified":
                text = "yes" if v else "NO"
            elif key == "pps":
                text = f"{v / 1000:.0f}"
            elif key.startswith("latency_ns"):
                text = f"{v / 1000:.1f}"
            elif key == "doorbells_per_packet":
                text = f"{v:.2f}"
            else:
                text = str(v)
            cells.append(f" {text:>{w}}")
        lines.append(f"{r['mode']:<{mw}}  {r['driver']:<{dw}}" + "".join(cells))
    return "\n".join(lines) + "\n"


def lock_cost(results: list[dict[str, Any]]) -> dict[str, float]:
    """Per driver: packets/s of lltx_lockfree over xmit_lock (when both ran)."""
    by = {(r["mode"], r["driver"]): r for r in results}
    out = {}
    for (mode, driver), r in by.items():
        if mode == "lltx_lockfree" and ("xmit_lock", driver) in by:
            base = by[("xmit_lock", driver)]["pps"]
            if base > 0:
                out[driver] = r["pps"] / base
    return out


def run(args: argparse.Namespace) -> int:
    combos = [(m, d) for m in args.modes for d in args.drivers]
    common = dict(
        producers=args.producers,
        packets=args.packets,
        ring=args.ring,
        race_window_ns=args.race_window_ns,
        max_descs=args.max_descs,
        tx_rate=args.tx_rate,
        tx_bulk=args.tx_bulk,
        napi_budget=args.napi_budget,
        coalesce_frames=args.coalesce_frames,
        coalesce_usecs=args.coalesce_usecs,
        seed=args.seed,
    )
    plot_dir = Path(args.plot) if args.plot else None
    if plot_dir:
        from ..plot import PlotDependencyError

        try:
            import matplotlib  # noqa: F401  (fail early, with an install hint)
        except ImportError as e:
            raise PlotDependencyError(
                f"--plot needs matplotlib: pip install kmm[plot] ({e})"
            ) from None
        plot_dir.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    results: list[dict[str, Any]] = []
    bar = tqdm(
        combos,
        desc="xmit",
        unit="run",
        file=sys.stderr,
        disable=True if args.no_progress else None,
        leave=False,
    )
    for mode, driver in bar:
        bar.set_postfix_str(f"{mode}/{driver}")
        results.append(nic.run(mode=mode, driver=driver, **common))
    bar.close()
    plots = _plots(results, plot_dir) if plot_dir else []
    ratios = lock_cost(results)
    if args.json:
        write_json({"config": common, "runs": results, "lltx_lockfree_over_xmit_lock": ratios})
        return 0 if all(r["verified"] for r in results) else 1
    out = sys.stdout
    out.write(
        f"{args.producers} CPUs x {args.packets} packets, ring {args.ring}, "
        f"1..{args.max_descs} descriptors/packet, race window {args.race_window_ns} ns, "
        f"NIC {'unlimited' if args.tx_rate == 0 else f'{args.tx_rate} desc/s'}\n\n"
    )
    out.write(format_table(results))
    out.write(
        "\nok: every packet delivered exactly once, in per-CPU order.  BUG spur: "
        f'"{nic.BUG_TX_RING_FULL}" logged with the queue already stopped (the harmless '
        "LLTX race); BUG real: logged with the queue running.  lost: lost wakeups caught "
        "by the watchdog.  falsewk: the full-ring check at the start of xmit found no room "
        "with the queue running (a false wake; under LLTX also another CPU's packet not "
        "yet followed by its stop).  Latencies from dev_queue_xmit to the NAPI poll that reclaimed the packet.\n"
    )
    for path in plots:
        out.write(f"wrote {path}\n")
    for driver, ratio in ratios.items():
        out.write(f"lltx_lockfree / xmit_lock throughput, {driver}: {ratio:.2f}x\n")
    if not all(r["verified"] for r in results):
        out.write("VERIFICATION FAILED: see the ok column\n")
        return 1
    return 0


def _plots(results: list[dict[str, Any]], out: Path) -> list[Path]:
    """Write ``bql_<mode>_<driver>.png`` for every run that kept a BQL limit."""
    paths = []
    for r in results:
        if r["bql_limit"]:
            path = out / f"bql_{r['mode']}_{r['driver']}.png"
            nic.bql_limit_figure(r).savefig(path, dpi=100)
            paths.append(path)
    return paths
