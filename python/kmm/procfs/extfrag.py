"""The kernel's fragmentation indices (mm/vmstat.c) and the debugfs ``extfrag/``
files that print them (``unusable_index``, ``extfrag_index``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._args import order_arg
from ..errors import ParseError
from ._common import MAX_ORDERS
from .buddyinfo import BuddyInfo
from .pagetypeinfo import PageTypeInfo

# ---------------------------------------------------------------------------
# fragmentation indices


def _as_nr_free(nr_free: Any, *, min_ndim: int = 1) -> np.ndarray:
    """Validate per-order free-block counts (last axis = orders) as an int64 array."""
    if isinstance(nr_free, (str, bytes)):
        raise ParseError(
            "nr_free must be counts per order, not text (parse it with kmm.procfs.parse)"
        )
    try:
        arr = np.asarray(nr_free)
    except (ValueError, TypeError) as e:
        raise ParseError(f"nr_free is not an array of counts: {e}") from None
    if arr.dtype == bool or arr.dtype.kind not in "iu":
        raise ParseError(f"nr_free must hold integer counts, got dtype {arr.dtype}")
    if arr.ndim < min_ndim:
        raise ParseError(
            f"nr_free must have at least {min_ndim} dimension(s) (last = orders), "
            f"got shape {arr.shape}"
        )
    if arr.shape[-1] < 1 or arr.shape[-1] > MAX_ORDERS:
        raise ParseError(
            f"nr_free needs 1..{MAX_ORDERS} orders on its last axis, got shape {arr.shape}"
        )
    if arr.size and arr.min() < 0:
        raise ParseError("nr_free holds a negative count")
    if arr.size:
        approx_pages = (arr.astype(np.float64) * np.exp2(np.arange(arr.shape[-1]))).sum(axis=-1)
        if approx_pages.max() > 2.0**50:
            raise ParseError(
                "nr_free adds up to too many free pages (more than 2**50) for an index"
            )
    return arr.astype(np.int64)


def contig_page_info(nr_free: Sequence[int] | np.ndarray, order: int) -> tuple[int, int, int]:
    """``(free_pages, free_blocks_total, free_blocks_suitable)`` of one zone, for ``order``.

    What the kernel's fill_contig_page_info() gathers: P, T and S (blocks of
    order >= ``order``, counted in units of 2**order).
    """
    arr = _as_nr_free(nr_free)
    if arr.ndim != 1:
        raise ParseError(f"nr_free of one zone must be one-dimensional, got shape {arr.shape}")
    j = order_arg(order, arr.shape[0])
    counts = [int(c) for c in arr]
    free_pages = sum(c << o for o, c in enumerate(counts))
    total = sum(counts)
    suitable = sum(c << (o - j) for o, c in enumerate(counts) if o >= j)
    return free_pages, total, suitable


def unusable_index(nr_free: Sequence[int] | np.ndarray, order: int) -> int:
    """The kernel's unusable free space index in thousandths (0..1000) for one zone.

    The share of free pages that cannot serve a request of ``order``:
    ``(P - S * 2**order) * 1000 // P``, 1000 when nothing is free.
    """
    pages, _, suitable = contig_page_info(nr_free, order)
    if pages == 0:
        return 1000
    return (pages - (suitable << order)) * 1000 // pages


def fragmentation_index(nr_free: Sequence[int] | np.ndarray, order: int) -> int:
    """The kernel's fragmentation index in thousandths for one zone and ``order``.

    0 when there are no free blocks; -1000 when a block of ``order`` is free (the
    allocation would succeed); else ``1000 - (1000 + P*1000 // 2**order) // T``:
    near 0 the failure is from lack of memory, near 1000 from fragmentation.
    """
    pages, total, suitable = contig_page_info(nr_free, order)
    if total == 0:
        return 0
    if suitable:
        return -1000
    return 1000 - (1000 + pages * 1000 // (1 << order)) // total


def _suffix_pages(arr: np.ndarray) -> np.ndarray:
    """sum over o >= j of nr_free[o] * 2**o, for every j (last axis)."""
    pages = arr << np.arange(arr.shape[-1], dtype=np.int64)
    return np.flip(np.cumsum(np.flip(pages, axis=-1), axis=-1), axis=-1)


def unusable_indices(nr_free: Any) -> np.ndarray:
    """:func:`unusable_index` for every order of every zone: an int64 array shaped like ``nr_free``.

    ``nr_free`` is any array whose last axis is the orders, e.g.
    ``m.free_area()`` (nodes, zones, orders) or a :class:`BuddyInfo`'s ``nr_free``.
    """
    arr = _as_nr_free(nr_free)
    suffix = _suffix_pages(arr)
    pages = suffix[..., :1]
    safe = np.where(pages == 0, 1, pages)
    out = (pages - suffix) * 1000 // safe
    return np.where(pages == 0, 1000, out).astype(np.int64)


def fragmentation_indices(nr_free: Any) -> np.ndarray:
    """:func:`fragmentation_index` for every order of every zone: int64 thousandths."""
    arr = _as_nr_free(nr_free)
    n = arr.shape[-1]
    shifts = np.arange(n, dtype=np.int64)
    suffix = _suffix_pages(arr)
    suitable = suffix >> shifts
    pages = suffix[..., :1]
    total = arr.sum(axis=-1, keepdims=True)
    safe_total = np.where(total == 0, 1, total)
    raw = 1000 - (1000 + (pages * 1000 >> shifts)) // safe_total
    out = np.where(suitable > 0, -1000, raw)
    return np.where(total == 0, 0, out).astype(np.int64)


def _c_divmod(a: int, b: int) -> tuple[int, int]:
    """C's truncating integer division and remainder."""
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    return q, a - b * q


def format_unusable(index: int) -> str:
    """An unusable index (thousandths) as debugfs prints it: ``%d.%03d``."""
    q, r = _c_divmod(int(index), 1000)
    return f"{q}.{r:03d}"


def format_fragmentation(index: int) -> str:
    """Fragmentation index (thousandths) as debugfs prints it: ``%2d.%03d``, -1000 as ``-1.000``."""
    q, r = _c_divmod(int(index), 1000)
    return f"{q:2d}.{r:03d}"


# ---------------------------------------------------------------------------
# debugfs extfrag/ texts


def free_area_of(
    source: Any,
    *,
    zone_names: Sequence[str] | None = None,
    present: Any = None,
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """``(nr_free[node, zone, order], zone names, present[node, zone])`` from any source.

    ``source``: a :class:`kmm.Machine` (its free lists, zones from zone_stats;
    pages on per-cpu lists are not counted, as in the kernel), a
    :class:`BuddyInfo`, a :class:`PageTypeInfo` (summed over types), or an
    array (nodes, zones, orders) or by type (nodes, zones, types, orders),
    which needs ``zone_names``; without ``present`` an array's zones count
    as present when any of their counts is non-zero.
    """
    if isinstance(source, PageTypeInfo):
        source = source.buddyinfo()
    if isinstance(source, BuddyInfo):
        return source.nr_free, source.zone_names, source.present
    if hasattr(source, "zone_stats") and hasattr(source, "free_area"):
        arr = np.asarray(source.free_area()).astype(np.int64)
        names = tuple(source.zone_names)
        pres = np.zeros(arr.shape[:2], dtype=bool)
        for st in source.zone_stats():
            pres[st.node, names.index(st.zone)] = True
        return arr, names, pres
    arr = _as_nr_free(source, min_ndim=3)
    if arr.ndim == 4:
        arr = arr.sum(axis=2)
    if arr.ndim != 3:
        raise ParseError(
            f"expected free areas shaped (nodes, zones, orders) or (nodes, zones, types, orders), "
            f"got {arr.shape}"
        )
    if zone_names is None:
        raise ParseError("an array of free areas needs zone_names (e.g. m.zone_names)")
    names = tuple(str(z) for z in zone_names)
    if len(names) != arr.shape[1]:
        raise ParseError(f"{len(names)} zone names for {arr.shape[1]} zones")
    if present is None:
        pres = arr.sum(axis=-1) > 0
    else:
        pres = np.asarray(present, dtype=bool)
        if pres.shape != arr.shape[:2]:
            raise ParseError(f"present must have shape {arr.shape[:2]}, got {pres.shape}")
    return arr, names, pres


def _index_text(values: np.ndarray, names: tuple[str, ...], present: np.ndarray, fmt: Any) -> str:
    out = []
    for node in range(values.shape[0]):
        for zt, zone in enumerate(names):
            if present[node, zt]:
                cells = "".join(fmt(int(v)) + " " for v in values[node, zt])
                out.append(f"Node {node}, zone {zone:>8} {cells}\n")
    return "".join(out)


def unusable_text(
    source: Any, *, zone_names: Sequence[str] | None = None, present: Any = None
) -> str:
    """What debugfs ``extfrag/unusable_index`` prints for ``source`` (see :func:`free_area_of`).

    One line per populated zone: ``"Node %d, zone %8s "`` then ``"%d.%03d "`` per order.
    """
    arr, names, pres = free_area_of(source, zone_names=zone_names, present=present)
    return _index_text(unusable_indices(arr), names, pres, format_unusable)


def extfrag_text(
    source: Any, *, zone_names: Sequence[str] | None = None, present: Any = None
) -> str:
    """What debugfs ``extfrag/extfrag_index`` prints for ``source`` (see :func:`free_area_of`).

    One line per populated zone: ``"Node %d, zone %8s "`` then ``"%2d.%03d "`` per order.
    """
    arr, names, pres = free_area_of(source, zone_names=zone_names, present=present)
    return _index_text(fragmentation_indices(arr), names, pres, format_fragmentation)
