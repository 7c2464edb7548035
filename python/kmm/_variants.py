"""Running a benchmark's variants on one generated load: one process per
variant (up to the cores), one progress bar fed by all of them.

``fn(name, cfg, loaddir, tick, *extra)`` runs one variant (a module-level
function, so it pickles); ``tick`` is None or a callable a variant calls once
per unit of progress. Results come back in the order of ``names``, whatever
the number of processes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from typing import Any


def _worker(args: tuple[Callable[..., Any], str, Any, str, Any, tuple[Any, ...]]) -> tuple[str, Any]:
    fn, name, cfg, loaddir, q, extra = args
    return name, fn(name, cfg, loaddir, (lambda: q.put(1)) if q is not None else None, *extra)


def run_variants(
    fn: Callable[..., Any],
    names: Sequence[str],
    cfg: Any,
    loaddir: str,
    *extra: Any,
    processes: int | None = None,
    bar: Any = None,
) -> dict[str, Any]:
    """``{name: fn(name, cfg, loaddir, tick, *extra)}`` for every variant."""
    nproc = max(1, min(processes or os.cpu_count() or 1, len(names)))
    if nproc == 1:
        return {n: fn(n, cfg, loaddir, (lambda: bar.update(1)) if bar else None, *extra) for n in names}
    results: dict[str, Any] = {}
    ctx = mp.get_context("spawn" if os.name != "posix" else "fork")
    with ctx.Manager() as mgr:
        q = mgr.Queue() if bar else None
        with ctx.Pool(nproc) as pool:
            pending = pool.map_async(_worker, [(fn, n, cfg, loaddir, q, extra) for n in names])
            while not pending.ready():
                pending.wait(0.2)
                if bar is not None:
                    while not q.empty():
                        bar.update(q.get())
            for name, r in pending.get():
                results[name] = r
    return results
