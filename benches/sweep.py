"""Sweep figures: 8 quick highalloc cells on a Dask LocalCluster (one worker per core) against
the same 8 cells run one after another in this process.

- ``sweep_parallel_over_serial``: wall time of ``kmm.sweep.run`` (cluster start included)
  over the serial wall time; the issue's target is <= 0.65 on 2 cores.
- ``sweep_serial_s``, ``sweep_parallel_s``: the two wall times.
- ``sweep_loadavg_1m_before``, ``sweep_loadavg_1m_after``: the machine's 1-minute load
  average around the measurement (a shared machine's other work shows here).
"""

from __future__ import annotations

import os
import tempfile
import time


def collect(quick: bool) -> dict[str, float]:
    from kmm import sweep
    from kmm.sweep import highalloc as cell

    seeds = list(range(8))
    config = {"quick": True}
    if quick:  # a lighter cell for a fast look; the target is for the quick cells
        config.update(warmup_s=10.0, attempts=10)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="kmm-bench-sweep-") as tmp:
        t0 = time.perf_counter()
        sweep.run(cell.run_cell, {**{k: [v] for k, v in config.items()}, "seed": seeds}, out=os.path.join(tmp, "o"), log=None)
        parallel = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in seeds:
        cell.run_cell(config, s)
    serial = time.perf_counter() - t0
    return {
        "sweep_parallel_over_serial": parallel / serial,
        "sweep_parallel_s": parallel,
        "sweep_serial_s": serial,
        "sweep_cores": float(os.cpu_count() or 1),
        "sweep_loadavg_1m_before": load_before,
        "sweep_loadavg_1m_after": os.getloadavg()[0],
    }
