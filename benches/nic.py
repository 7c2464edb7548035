"""Benchmarks of issues 6 and 16: the NIC transmit ring, what the xmit lock costs, today's path.

- ``ring_mpsc_mops``: the kmm-nic lock-free MPSC ring, 2 producer threads + 1
  consumer, single-descriptor enqueue/dequeue, millions of items per second.
- ``peer_crossbeam_arrayqueue_mops``: crossbeam's ``ArrayQueue`` doing the same
  work in the same process run (same capacity, 1024).
- ``peer_mutex_vecdeque_mops``: a ``Mutex<VecDeque>`` bounded to 1024, same work.
- ``ring_mpsc_burst32_mops``: the ring with the burst API (32 descriptors per
  reservation, 32 per dequeue).
  (All four from ``cargo run --release -q -p kmm-bench --bin ring -- [--quick]``,
  best of 2 (quick) or 3 interleaved runs.)
- ``ring_vs_arrayqueue``, ``burst32_vs_single``: the issue-16 targets (>= 1.2, >= 5),
  from the two-core throughputs above.
- ``*_cpu_ns`` (same runs): CPU time of all threads per item (``/proc/thread-self/schedstat``,
  spinning included); ``ring_vs_arrayqueue_cpu``, ``burst32_vs_single_cpu``: the same
  ratios in CPU time.
- ``ring_one_core_single_ns``, ``peer_arrayqueue_one_core_ns``, ``ring_one_core_burst32_ns``:
  one thread enqueuing then dequeuing (no cache-line transfers, no scheduling between
  threads); ``ring_vs_arrayqueue_one_core``, ``burst32_vs_single_one_core``: the ratios.
- ``ring_perf_<who>_<threads>_b<n>_ns``: DPDK ``test_ring_perf``-like table, ns per
  element for bulk sizes 8..256 through a ring of 4096, ``who`` in ring / arrayqueue /
  mutex, ``threads`` in one (one core) / spsc / mpsc (two cores), and
  ``ring_perf_empty_dequeue_ns`` (``cargo run --release -q -p kmm-bench --bin
  ring_perf -- [--quick]``, which also prints the table).
- ``xmit_<driver>_pps`` / ``_latency_ns_p99`` / ``_doorbells_per_packet`` for
  ``modern``, ``modern_bql`` and ``modern_xmit_more`` (``xmit_lock``, 2 CPUs, ring
  256), medians of the same paired runs.
- ``xmit_lltx_vs_lock_ratio``: packets/s of ``lltx_lockfree`` over ``xmit_lock``
  via ``kmm.nic.run`` (driver ``modern``, 2 producers, ring 256, no race window),
  median of 3 (quick) or 5 paired runs.
- ``xmit_lltx_lockfree_pps`` / ``xmit_lock_pps``: the medians behind that ratio.

A 2-core machine runs the 2 producers and the consumer on 2 cores, so one
thread is always waiting for a CPU: the figures measure contention plus
scheduling, not the rings' peak.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ring_figures(quick: bool, binary: str = "ring") -> dict[str, float]:
    """Build and run a ``kmm-bench`` ring binary; the JSON object on its last line."""
    cmd = ["cargo", "run", "--release", "-q", "-p", "kmm-bench", "--bin", binary, "--"]
    if quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return {k: float(v) for k, v in data.items()}


def xmit_ratio(quick: bool) -> dict[str, float]:
    """Median packets/s of lltx_lockfree and xmit_lock (driver modern, 2 CPUs)."""
    from kmm import nic

    packets = 200_000 if quick else 1_000_000
    runs = 3 if quick else 5
    pps: dict[str, list[float]] = {"lltx_lockfree": [], "xmit_lock": []}
    for _ in range(runs):
        for mode in pps:
            r = nic.run(mode=mode, driver="modern", producers=2, packets=packets, ring=256)
            if not r["verified"]:
                raise RuntimeError(f"nic run not verified: {r}")
            pps[mode].append(r["pps"])
    lf = statistics.median(pps["lltx_lockfree"])
    lk = statistics.median(pps["xmit_lock"])
    return {"xmit_lltx_vs_lock_ratio": lf / lk, "xmit_lltx_lockfree_pps": lf, "xmit_lock_pps": lk}


def xmit_drivers(quick: bool) -> dict[str, float]:
    """Medians of pps, p99 completion latency and doorbells per packet of the modern drivers."""
    from kmm import nic

    packets = 200_000 if quick else 1_000_000
    runs = 3 if quick else 5
    keys = ("pps", "latency_ns_p99", "doorbells_per_packet")
    got: dict[str, dict[str, list[float]]] = {}
    for _ in range(runs):
        for driver in ("modern", "modern_bql", "modern_xmit_more"):
            r = nic.run(mode="xmit_lock", driver=driver, producers=2, packets=packets, ring=256)
            if not r["verified"]:
                raise RuntimeError(f"nic run not verified: {r}")
            for k in keys:
                got.setdefault(driver, {}).setdefault(k, []).append(float(r[k]))
    return {
        f"xmit_{driver}_{k}": statistics.median(v)
        for driver, per in got.items()
        for k, v in per.items()
    }


def collect(quick: bool) -> dict[str, float]:
    """All figures of this module (``benches/run.py`` merges them)."""
    r = ring_figures(quick)
    r["ring_vs_arrayqueue"] = r["ring_mpsc_mops"] / r["peer_crossbeam_arrayqueue_mops"]
    r["burst32_vs_single"] = r["ring_mpsc_burst32_mops"] / r["ring_mpsc_mops"]
    r["ring_vs_arrayqueue_cpu"] = r["peer_crossbeam_arrayqueue_cpu_ns"] / r["ring_mpsc_cpu_ns"]
    r["burst32_vs_single_cpu"] = r["ring_mpsc_cpu_ns"] / r["ring_mpsc_burst32_cpu_ns"]
    r["ring_vs_arrayqueue_one_core"] = r["peer_arrayqueue_one_core_ns"] / r["ring_one_core_single_ns"]
    r["burst32_vs_single_one_core"] = r["ring_one_core_single_ns"] / r["ring_one_core_burst32_ns"]
    r.update(ring_figures(quick, "ring_perf"))
    r.update(xmit_ratio(quick))
    r.update(xmit_drivers(quick))
    return r


if __name__ == "__main__":
    import sys

    print(json.dumps(collect("--quick" in sys.argv), indent=2))
