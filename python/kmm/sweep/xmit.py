"""The cell of ``kmm sweep xmit``: one :func:`kmm.nic.run` (a mode, a driver) for a config and a seed.

A config holds keyword arguments of :func:`kmm.nic.run` (``mode``, ``driver``,
``producers``, ``packets``, ``ring``, ``race_window_ns``, ...). The seed is the
packet sizes'. Only ``verified`` is a pure function of (config, seed): the
counters and rates depend on how the threads ran.
"""

from __future__ import annotations

import inspect
from typing import Any

from .. import nic
from ..errors import SweepError

#: nic.run arguments a sweep does not take (the fault injector is for tests)
_EXCLUDED = ("seed", "fault")


def parameters() -> list[str]:
    return [n for n in inspect.signature(nic.run).parameters if n not in _EXCLUDED]


def validate(config: dict[str, Any]) -> None:
    """Check names and types before any cell runs (nic.run checks the ranges)."""
    known = parameters()
    for k, v in config.items():
        if k not in known:
            raise SweepError(f"xmit has no parameter {k!r} (parameters: {', '.join(known)})")
        if k == "mode" and v not in nic.MODES:
            raise SweepError(f"unknown mode {v!r} (known: {', '.join(nic.MODES)})")
        if k == "driver" and v not in nic.DRIVERS:
            raise SweepError(f"unknown driver {v!r} (known: {', '.join(nic.DRIVERS)})")
        if k not in ("mode", "driver") and v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise SweepError(f"{k} must be an integer, got {v!r}")


def run_cell(config: dict[str, Any], seed: int) -> dict[str, Any]:
    r = nic.run(seed=seed, **config)
    row = {k: r[k] for k in nic.COUNTERS}
    row.update({k: r[k] for k in ("verified", "pps", "doorbells_per_packet")})
    row["elapsed_s"] = r["elapsed_s"]
    return row
