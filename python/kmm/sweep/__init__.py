"""Sweeps: many runs of one pure function of (config, seed) on Dask distributed.

``kmm.sweep.run(fn, grid, scheduler=None)`` runs ``fn(config, seed)`` for every
combination of ``grid`` (parameter -> list of values; ``"seed"`` holds the
seeds) on a Dask LocalCluster sized to the machine, or on the scheduler at
``scheduler`` (``tcp://HOST:8786``), and returns a tidy pandas DataFrame;
``out=DIR`` keeps every finished cell as it completes (a rerun skips them) and
the table as ``DIR/results.parquet``. ``kmm.sweep.load(DIR)`` reads it back.
``kmm.sweep.summarize`` and ``format_compare`` give the mmtests compare-style
summary. The cell functions of ``kmm sweep highalloc`` and ``kmm sweep xmit``
are :func:`kmm.sweep.highalloc.run_cell` and :func:`kmm.sweep.xmit.run_cell`.

Dask, pandas and pyarrow are imported only when a function here runs.
See ``docs/sweep.md``.
"""

from __future__ import annotations

from .engine import Record, run
from .grid import Cell, expand, parse_floats, parse_ints, parse_strs
from .stats import describe, format_compare, summarize, t_quantile
from .store import load, load_record

__all__ = [
    "Cell",
    "Record",
    "describe",
    "expand",
    "format_compare",
    "load",
    "load_record",
    "parse_floats",
    "parse_ints",
    "parse_strs",
    "run",
    "summarize",
    "t_quantile",
]
