"""A sweep's grid: parameter values from the command line, and the cells they make.

A grid maps each parameter to its list of values; the cells are every
combination, in the grid's key order, with the seeds innermost. A cell is a
config (plain values only: str, int, float, bool, None, or a list of those)
and a seed; its key is a hash of what it computes, so a rerun finds it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import SweepError

_PLAIN = (str, int, float, bool, type(None))
_RANGE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*(?::\s*(\d+)\s*)?$")


@dataclass(frozen=True)
class Cell:
    """One combination of the grid: ``config`` (no seed in it) and ``seed``."""

    index: int
    config: dict[str, Any]
    seed: int
    key: str


def parse_ints(name: str, text: str) -> list[int]:
    """``"0-9"``, ``"0-9:2"`` (a step), ``"1,2,5"`` or a mix (``"0-3,8"``) as a list of ints."""
    out: list[int] = []
    for part in _parts(name, text):
        m = _RANGE.match(part)
        if m:
            lo, hi, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
            if step < 1:
                raise SweepError(f"--{name}: step must be at least 1 in {part!r}")
            if hi < lo:
                raise SweepError(f"--{name}: empty range {part!r} ({hi} < {lo})")
            out.extend(range(lo, hi + 1, step))
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise SweepError(f"--{name}: {part!r} is not an integer or a range A-B") from None
    return out


def parse_floats(name: str, text: str) -> list[float]:
    """A comma list of numbers."""
    out = []
    for part in _parts(name, text):
        try:
            v = float(part)
        except ValueError:
            raise SweepError(f"--{name}: {part!r} is not a number") from None
        if not math.isfinite(v):
            raise SweepError(f"--{name}: {part!r} is not a finite number")
        out.append(v)
    return out


def parse_strs(name: str, text: str) -> list[str]:
    """A comma list of names."""
    return _parts(name, text)


def _parts(name: str, text: str) -> list[str]:
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise SweepError(f"--{name}: empty value in {text!r}")
    return parts


def _check_plain(name: str, v: Any) -> None:
    if isinstance(v, list):
        for x in v:
            if not isinstance(x, _PLAIN):
                raise SweepError(f"grid parameter {name!r}: {x!r} is not a plain value (str, int, float, bool, None)")
    elif not isinstance(v, _PLAIN):
        raise SweepError(f"grid parameter {name!r}: {v!r} is not a plain value (str, int, float, bool, None, or a list of them)")
    if isinstance(v, float) and not math.isfinite(v):
        raise SweepError(f"grid parameter {name!r}: {v!r} is not finite")


def fn_name(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a cell function (part of every cell's key)."""
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def cell_key(fn: str, config: Mapping[str, Any], seed: int) -> str:
    text = json.dumps({"fn": fn, "config": dict(config), "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def expand(grid: Mapping[str, Any] | Iterable[Mapping[str, Any]], fn: str) -> list[Cell]:
    """The cells of ``grid``.

    ``grid`` is a mapping of parameter -> list of values (a single value is a
    list of one; ``"seed"`` holds the seeds, default ``[0]``), or a list of
    configs, each with an optional ``"seed"``. Raises :class:`kmm.SweepError`
    for an empty list of values, a value that is not plain, or a seed that is
    not a non-negative int.
    """
    combos: list[tuple[dict[str, Any], int]] = []
    if isinstance(grid, Mapping):
        axes: dict[str, list[Any]] = {}
        for name, values in grid.items():
            if not isinstance(name, str) or not name:
                raise SweepError(f"grid parameter names are strings, got {name!r}")
            vals = list(values) if isinstance(values, (list, tuple, range)) else [values]
            if not vals:
                raise SweepError(f"grid parameter {name!r} has no values (an empty range?)")
            for v in vals:
                _check_plain(name, v)
            axes[name] = vals
        seeds = axes.pop("seed", [0])
        names = list(axes)
        for values in itertools.product(*(axes[n] for n in names)):
            for s in seeds:
                combos.append((dict(zip(names, values)), s))
    else:
        for i, c in enumerate(grid):
            if not isinstance(c, Mapping):
                raise SweepError(f"grid entry {i} is not a mapping: {c!r}")
            c = dict(c)
            s = c.pop("seed", 0)
            for k, v in c.items():
                _check_plain(k, v)
            combos.append((c, s))
        if not combos:
            raise SweepError("the grid has no cells")
    cells = []
    for i, (config, seed) in enumerate(combos):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SweepError(f"seed must be an integer >= 0, got {seed!r}")
        cells.append(Cell(i, config, seed, cell_key(fn, config, seed)))
    return cells
