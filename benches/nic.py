"""Benchmarks of issue 6: the NIC transmit ring and what the xmit lock costs.

- ``ring_mpsc_mops``: the kmm-nic lock-free MPSC ring, 2 producer threads + 1
  consumer, single-descriptor enqueue/dequeue, millions of items per second.
- ``peer_crossbeam_arrayqueue_mops``: crossbeam's ``ArrayQueue`` doing the same
  work in the same process run (same capacity, 1024).
- ``peer_mutex_vecdeque_mops``: a ``Mutex<VecDeque>`` bounded to 1024, same work.
- ``ring_mpsc_burst32_mops``: the ring with the burst API (32 descriptors per
  reservation, 32 per dequeue).
  (All four from ``cargo run --release -q -p kmm-bench --bin ring -- [--quick]``,
  best of 2 (quick) or 3 interleaved runs.)
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


def ring_figures(quick: bool) -> dict[str, float]:
    """Build and run the ``ring`` benchmark binary; its JSON figures."""
    cmd = ["cargo", "run", "--release", "-q", "-p", "kmm-bench", "--bin", "ring", "--"]
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


def collect(quick: bool) -> dict[str, float]:
    """All figures of this module (``benches/run.py`` merges them)."""
    r = ring_figures(quick)
    r["ring_vs_arrayqueue"] = r["ring_mpsc_mops"] / r["peer_crossbeam_arrayqueue_mops"]
    r["burst32_vs_single"] = r["ring_mpsc_burst32_mops"] / r["ring_mpsc_mops"]
    r.update(xmit_ratio(quick))
    return r


if __name__ == "__main__":
    import sys

    print(json.dumps(collect("--quick" in sys.argv), indent=2))
