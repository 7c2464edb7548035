"""The transmit path on real threads: the NETIF_F_LLTX race of 2005, its fixes, and today's path.

:func:`run` starts one producer thread per simulated CPU (each sends a numbered
packet stream through ``dev_queue_xmit``), one consumer thread (the NIC, which
fetches descriptors, verifies them and completes them) and a watchdog, then
returns the counters.  Every run verifies that each packet was delivered
exactly once and in per-producer order (``verified``).

Modes (who serialises calls into the driver): ``xmit_lock`` (the core's
``dev->xmit_lock``), ``lltx_driver_lock`` (NETIF_F_LLTX, the driver's own
``tx_lock``), ``lltx_lockfree`` (LLTX over a lock-free multi-producer ring).

Drivers: ``buggy_2005`` (logs "BUG! Tx Ring full when queue awake!" whenever the
ring is full), ``fixed_2005`` (silent when the queue is already stopped: the
harmless race), ``modern`` (the netdev_queues helpers ``netif_txq_maybe_stop`` /
``__netif_txq_completed_wake``: stop / barrier / recheck, BUSY only after a false
wake), ``modern_nobarrier`` (the same without its barrier pair: wakeups can be
lost), ``modern_bql`` (plus byte queue limits and STACK_XOFF) and
``modern_xmit_more`` (plus doorbell batching with ``xmit_more``).  The NIC
completes packets through a moderated interrupt and a NAPI poll with a budget.

See ``docs/nic.md``.
"""

from __future__ import annotations

from typing import Any

from . import _kmm
from ._args import U32_MAX, U64_MAX, int_arg
from .errors import NicError

__all__ = [
    "MODES",
    "DRIVERS",
    "FAULTS",
    "BUG_TX_RING_FULL",
    "COUNTERS",
    "run",
    "bql_limit_figure",
]

#: Locking modes, in table order.
MODES: tuple[str, ...] = tuple(_kmm.NIC_MODES)
#: Driver behaviours, in table order.
DRIVERS: tuple[str, ...] = tuple(_kmm.NIC_DRIVERS)
#: Faults that can be injected on purpose (tests).
FAULTS: tuple[str, ...] = tuple(_kmm.NIC_FAULTS)
#: The 2005 drivers' log line.
BUG_TX_RING_FULL: str = _kmm.BUG_TX_RING_FULL

#: Integer counters every result carries.
COUNTERS: tuple[str, ...] = (
    "expected",
    "sent",
    "delivered",
    "dropped",
    "duplicates",
    "order_violations",
    "torn_packets",
    "requeues",
    "busy",
    "spurious_bug_logs",
    "real_bug_logs",
    "harmless_races",
    "false_wakes",
    "stopper_races",
    "stops",
    "wakes",
    "restarts",
    "collisions",
    "lost_wakeups",
    "doorbells",
    "stack_xoffs",
    "descriptors",
    "interrupts",
    "completions",
    "latency_ns_p50",
    "latency_ns_p99",
    "latency_ns_p999",
)

def run(
    mode: str = "lltx_lockfree",
    driver: str = "modern",
    producers: int = 2,
    packets: int = 100_000,
    ring: int = 256,
    race_window_ns: int = 0,
    *,
    max_descs: int = 4,
    stop_thresh: int | None = None,
    wake_thresh: int | None = None,
    tx_batch: int = 16,
    tx_rate: int = 0,
    watchdog_ms: int = 20,
    timeout_ms: int = 120_000,
    seed: int = 0,
    fault: str | None = None,
    tx_bulk: int = 8,
    napi_budget: int = 64,
    coalesce_frames: int = 16,
    coalesce_usecs: int = 8,
    bql_hold_ms: int = 1000,
) -> dict[str, Any]:
    """Run one transmit experiment on real threads and return its counters.

    ``packets`` is per producer; each packet uses 1..``max_descs`` descriptors
    (a function of ``seed``). The queue stops when fewer than ``stop_thresh``
    descriptors are free (default ``max_descs``, the worst case) and the
    completion path wakes it at ``wake_thresh`` (default twice that, at most the
    ring). ``race_window_ns`` pauses between the queue check and the ring
    reservation (0 = the natural race only). ``tx_rate`` limits the NIC to that
    many descriptors per second (0 = unlimited) and fetches ``tx_batch``
    descriptors per DMA burst, up to the doorbell. The core hands the driver
    ``tx_bulk`` packets per qdisc dequeue, all but the last with ``xmit_more``
    (only ``modern_xmit_more`` defers its doorbell on it). The completion
    interrupt fires once ``coalesce_frames`` packets are done or the oldest has
    waited ``coalesce_usecs``; its NAPI poll completes at most ``napi_budget``
    packets a round. BQL drivers shrink their limit at most once per
    ``bql_hold_ms``. The watchdog counts a stopped queue whose wake condition
    holds while the completion path is idle for ``watchdog_ms`` as a lost wakeup
    (``lost_wakeups``) and wakes it; the run fails after ``timeout_ms``.

    Returns a dict with the configuration and the counters of :data:`COUNTERS`,
    plus ``verified`` (every packet delivered exactly once, in per-producer
    order), ``elapsed_s``, ``pps`` (delivered packets per second),
    ``doorbells_per_packet`` and ``bql_limit`` (BQL drivers: ``(seconds,
    bytes)`` at the start and at every change of the limit; empty otherwise).
    Latencies run from ``dev_queue_xmit`` to the NAPI poll that reclaimed the
    packet. The counters other than the verification depend on thread timing.

    Raises :class:`~kmm.errors.NicError` for a configuration that cannot work
    (before any thread starts) and :class:`~kmm.errors.NicWorkerError` if a
    worker thread panics or the run times out.
    """
    if mode not in MODES:
        raise NicError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
    if driver not in DRIVERS:
        raise NicError(f"unknown driver {driver!r} (known: {', '.join(DRIVERS)})")
    if fault is not None and fault not in FAULTS:
        raise NicError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
    args = dict(
        producers=int_arg("producers", producers, 1, U32_MAX, error=NicError),
        packets=int_arg("packets", packets, 1, U64_MAX, error=NicError),
        ring=int_arg("ring", ring, 0, U64_MAX, error=NicError),
        max_descs=int_arg("max_descs", max_descs, 1, U32_MAX, error=NicError),
        stop_thresh=None if stop_thresh is None else int_arg("stop_thresh", stop_thresh, 0, U32_MAX, error=NicError),
        wake_thresh=None if wake_thresh is None else int_arg("wake_thresh", wake_thresh, 0, U32_MAX, error=NicError),
        race_window_ns=int_arg("race_window_ns", race_window_ns, 0, U64_MAX, error=NicError),
        tx_batch=int_arg("tx_batch", tx_batch, 1, U32_MAX, error=NicError),
        tx_rate=int_arg("tx_rate", tx_rate, 0, U64_MAX, error=NicError),
        watchdog_ms=int_arg("watchdog_ms", watchdog_ms, 1, U64_MAX, error=NicError),
        timeout_ms=int_arg("timeout_ms", timeout_ms, 1, U64_MAX, error=NicError),
        seed=int_arg("seed", seed, 0, U64_MAX, error=NicError),
        tx_bulk=int_arg("tx_bulk", tx_bulk, 1, U32_MAX, error=NicError),
        napi_budget=int_arg("napi_budget", napi_budget, 1, U32_MAX, error=NicError),
        coalesce_frames=int_arg("coalesce_frames", coalesce_frames, 1, U32_MAX, error=NicError),
        coalesce_usecs=int_arg("coalesce_usecs", coalesce_usecs, 0, U64_MAX, error=NicError),
        bql_hold_ms=int_arg("bql_hold_ms", bql_hold_ms, 0, U64_MAX, error=NicError),
    )
    return dict(_kmm.nic_run(mode, driver, fault=fault, **args))


def bql_limit_figure(result: dict[str, Any]) -> Any:
    """A :class:`matplotlib.figure.Figure` of one run's BQL limit over time.

    ``result`` is what :func:`run` returned for a BQL driver (``modern_bql`` or
    ``modern_xmit_more``). Needs matplotlib (``pip install kmm[plot]``).
    """
    points = result.get("bql_limit") or []
    if not points:
        raise NicError(f"driver {result.get('driver')!r} keeps no byte queue limit")
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        from .plot import INSTALL_HINT, PlotDependencyError

        raise PlotDependencyError(f"{INSTALL_HINT} ({e})") from None

    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    # the limit holds until its next change: draw it as steps to the end of the run
    t = [p[0] * 1e3 for p in points] + [result["elapsed_s"] * 1e3]
    limit = [p[1] for p in points] + [points[-1][1]]
    ax.step(t, limit, where="post")
    ax.set_xlabel("time since start (ms)")
    ax.set_ylabel("BQL limit (bytes)")
    ax.set_title(
        f"{result['mode']} / {result['driver']}: {result['producers']} CPUs, ring {result['ring']}"
    )
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig
