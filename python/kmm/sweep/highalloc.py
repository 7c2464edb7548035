"""The cell of ``kmm sweep highalloc``: one :func:`kmm.highalloc.run` for a config and a seed.

A config holds keyword arguments of :class:`kmm.highalloc.HighallocConfig`
(``mem``, ``layout``, ``order``, ``attempts``, ``warmup_s``, ``builds``,
``jobs``, ``updatedb``, ``gfp``, ``interval_s``, ``variants``, and ``preset``
where highalloc has presets) plus ``quick`` (start from
:meth:`HighallocConfig.quick`). The seed is the load's. Every variant runs in
the cell's own process, one after the other, on the same load trace.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from .. import highalloc as _ha
from ..errors import BenchmarkError, SweepError
from .engine import Record

PHASES = ("under_load", "at_rest")
#: per-pass figures of a highalloc result that become columns
PASS_COLUMNS = ("attempted", "success", "failed", "percent", "ceiling", "limit")


def parameters() -> list[str]:
    """The keyword arguments a config may hold (``quick`` included)."""
    names = [n for n in inspect.signature(_ha.HighallocConfig).parameters if n != "seed"]
    return ["quick", *names]


def make_config(config: dict[str, Any], seed: int) -> _ha.HighallocConfig:
    """The :class:`HighallocConfig` of a cell, validated; :class:`kmm.SweepError` names a
    parameter highalloc does not take, and highalloc's own error a bad value."""
    kw = dict(config)
    quick = kw.pop("quick", False)
    if not isinstance(quick, bool):
        raise SweepError(f"quick must be true or false, got {quick!r}")
    known = parameters()
    unknown = [k for k in kw if k not in known]
    if "preset" in unknown:
        raise SweepError("this kmm's highalloc has no presets (HighallocConfig takes no preset=): leave out --preset")
    if unknown:
        raise SweepError(f"highalloc has no parameter {unknown[0]!r} (parameters: {', '.join(known)})")
    if "variants" in kw and isinstance(kw["variants"], str):
        kw["variants"] = [v.strip() for v in kw["variants"].split(",") if v.strip()]
    try:
        cfg = _ha.HighallocConfig.quick(seed=seed, **kw) if quick else _ha.HighallocConfig(seed=seed, **kw)
        cfg.validate()
    except (TypeError, BenchmarkError) as e:
        raise SweepError(f"highalloc {_describe(config)}: {e}") from None
    return cfg


def _describe(config: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items()) or "(defaults)"


def validate(config: dict[str, Any]) -> None:
    """Check a config before any cell runs."""
    make_config(config, 0)


def run_cell(config: dict[str, Any], seed: int) -> Record:
    """Run highalloc for ``config`` and ``seed``; a pure function of the two (but the timings)."""
    cfg = make_config(config, seed)
    # the page maps stay in this process (no temporary files a killed cell
    # would leave behind)
    maps: dict[str, Any] = {}
    res = _ha.run(cfg, processes=1, page_maps=maps)
    arrays = {}
    for name in cfg.variants:
        for when, stem in (("before", "before"), ("after", "under_load")):
            if f"{name}-{stem}" in maps:
                arrays[f"page_map|{name}|{when}"] = maps[f"{name}-{stem}"]
    return record_of(res, arrays)


def record_of(res: dict[str, Any], arrays: dict[str, Any] | None = None) -> Record:
    """A highalloc result (:func:`kmm.highalloc.run`) as a sweep record: one row per
    (variant, phase), the resolved config, and per variant and phase the successes of
    every attempt and the buddyinfo before and after the pass."""
    cfg = dict(res["config"])
    cfg.pop("variants", None)
    cfg.pop("seed", None)
    rows = []
    extra: dict[str, Any] = {}
    for name, v in res["variants"].items():
        extra[name] = {}
        for phase in PHASES:
            p = v[phase]
            row: dict[str, Any] = {"variant": name, "phase": phase}
            row.update({k: p[k] for k in PASS_COLUMNS})
            row["pass_s"] = p["seconds"]
            row.update(v["counters"])
            row["pages_reclaimed_per_active_success"] = v["pages_reclaimed_per_active_success"]
            row["warmup_ops"] = v["warmup_ops"]
            row["variant_s"] = v["seconds"]
            row["load_ops"] = res["load_ops"]
            row["generate_s"] = res["generate_s"]
            rows.append(row)
            extra[name][phase] = {
                "attempt_success": list(p.get("attempt_success", [])),
                "buddyinfo_before": p["buddyinfo_before"],
                "buddyinfo_after": p["buddyinfo_after"],
            }
    cfg_plain = {k: v for k, v in cfg.items() if not dataclasses.is_dataclass(v)}
    return Record(rows, config=cfg_plain, extra=extra, arrays=arrays or {})
