"""Argument checks shared by every Python module of kmm.

Python converts and checks types here; the rules of the model (what a
machine, a zone or a trace allows) live in the Rust core. Each checker
returns the plain Python value and raises the caller's error class (a
:class:`kmm.KmmError` subclass), so one wording serves every module:

* :func:`int_arg` -- an int (numpy ints included, bools refused) in a range;
* :func:`float_arg` -- a finite number in a range;
* :func:`order_arg` -- an allocation order below ``MAX_ORDER``;
* :func:`node_arg` -- a NUMA node of a machine, or ``None``;
* :func:`int_list_arg` -- a comma separated list of ints given on the command line.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _kmm
from .errors import ConfigError, KmmError, OrderError

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1


def int_arg(
    name: str, v: Any, lo: int, hi: int | None, *, error: type[KmmError] = ConfigError
) -> int:
    """``v`` as an int in ``lo..hi`` (``hi`` None: no upper bound), else ``error``."""
    if (
        isinstance(v, bool)
        or not isinstance(v, (int, np.integer))
        or v < lo
        or (hi is not None and v > hi)
    ):
        bounds = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise error(f"{name} must be an integer {bounds}, got {v!r}")
    return int(v)


def float_arg(
    name: str, v: Any, lo: float, hi: float, *, error: type[KmmError] = ConfigError
) -> float:
    """``v`` as a finite float in ``lo..hi``, else ``error``."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise error(f"{name} must be a number, got {v!r}")
    f = float(v)
    if not (math.isfinite(f) and lo <= f <= hi):
        raise error(f"{name} must be in {lo}..{hi}, got {v!r}")
    return f


def order_arg(order: Any, nr_orders: int = _kmm.MAX_ORDER) -> int:
    """An allocation order ``0..nr_orders-1`` (default: the kernel's MAX_ORDER), else
    :class:`kmm.OrderError`."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
        raise OrderError(f"order must be an integer, not {type(order).__name__}")
    if not 0 <= order < nr_orders:
        raise OrderError(f"order {order} is out of range 0..{nr_orders - 1}")
    return int(order)


def node_arg(node: Any, nr_nodes: int) -> int | None:
    """A node id of a machine with ``nr_nodes`` nodes, or None (the allocator picks),
    else :class:`kmm.ConfigError`."""
    if node is None:
        return None
    if (
        isinstance(node, bool)
        or not isinstance(node, (int, np.integer))
        or not 0 <= node < nr_nodes
    ):
        raise ConfigError(f"node {node!r} does not exist (machine has {nr_nodes} nodes)")
    return int(node)


def int_list_arg(option: str, text: str | None) -> list[int] | None:
    """The ints of a command-line option such as ``--pid 1,2,3`` (None when not given),
    else :class:`kmm.ConfigError`."""
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            f"--{option} takes a comma separated list of integers, got {text!r}"
        ) from None
