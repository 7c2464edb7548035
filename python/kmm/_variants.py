"""Running a benchmark's variants on one generated load: one process per
variant (up to the cores), one progress bar fed by all of them.

``fn(name, cfg, loaddir, tick, *extra)`` runs one variant (a module-level
function, so it pickles); ``tick`` is None or a callable a variant calls once
per unit of progress. Results come back in the order of ``names``, whatever
the number of processes.

:func:`check_config` is the validation the benchmarks' config classes share.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from . import gfp as _gfp
from ._args import float_arg, int_arg
from .errors import BenchmarkError


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


def check_config(
    cfg: Any,
    *,
    layouts: Collection[str],
    variants: Collection[str],
    ints: Mapping[str, tuple[int, int | None]] = {},
    floats: Mapping[str, tuple[float, float]] = {},
    bools: Sequence[str] = (),
) -> int:
    """Check the fields every benchmark config has: ``layout`` one of ``layouts``,
    ``mem`` a memory size, ``variants`` a non-empty list of names in
    ``variants``, ``gfp`` (when the config has one) a GFP mask; then each field
    of ``ints`` / ``floats`` in its (low, high) range (a field that is None is
    left out: None means "the default") and each of ``bools`` a bool. Raises
    :class:`kmm.BenchmarkError` naming the first bad field; returns the memory
    size in bytes."""
    from .machine import parse_mem

    if cfg.layout not in layouts:
        raise BenchmarkError(f"layout {cfg.layout!r} must be {' or '.join(layouts)}")
    try:
        mem = parse_mem(cfg.mem)
    except Exception as e:
        raise BenchmarkError(f"mem {cfg.mem!r}: {e}") from None
    for name, (lo, hi) in ints.items():
        if getattr(cfg, name) is not None:
            int_arg(name, getattr(cfg, name), lo, hi, error=BenchmarkError)
    for name, (flo, fhi) in floats.items():
        if getattr(cfg, name) is not None:
            float_arg(name, getattr(cfg, name), flo, fhi, error=BenchmarkError)
    for name in bools:
        if not isinstance(getattr(cfg, name), bool):
            raise BenchmarkError(f"{name} must be a bool, got {getattr(cfg, name)!r}")
    unknown = [v for v in cfg.variants if v not in variants]
    if unknown or not cfg.variants:
        raise BenchmarkError(f"unknown variants {unknown}; choose from {', '.join(variants)}")
    if hasattr(cfg, "gfp"):
        try:
            _gfp.parse(cfg.gfp)
        except Exception as e:
            raise BenchmarkError(f"gfp {cfg.gfp!r}: {e}") from None
    return mem
