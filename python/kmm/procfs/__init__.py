"""Read /proc/buddyinfo and /proc/pagetypeinfo, and compute the kernel's fragmentation indices.

The parsers accept real kernel output (any number of NUMA nodes, any of the
kernel's zone names, any number of orders as long as every line agrees) and
kmm's own simulated output alike, and return numpy arrays shaped like
:meth:`kmm.Machine.free_area`: ``(nodes, zone types, orders)``.

Zone axis (``layout``)
    The zone axis is inferred from the zone names, like a kernel engineer would:

    * ``DMA32`` present (and no ``HighMem``): ``"x86_64"``, zones DMA, DMA32, Normal;
    * ``HighMem`` present (and no ``DMA32``): ``"x86_32"``, zones DMA, Normal, HighMem;
    * only ``DMA`` and/or ``Normal``: ``"x86_32"`` (a 32-bit box below 896 MiB, the
      2005 machine kmm models; pass ``layout="x86_64"`` to say otherwise);
    * ``Movable`` (ZONE_MOVABLE, from ``kernelcore=``/``movablecore=``) exists on both
      families: it is appended as an extra zone type after the layout's three, so
      the zone axis has four entries;
    * anything else (``Device``, both DMA32 and HighMem, a name the kernel never
      printed): ``"generic"``, zone axis = the names present in the kernel's
      ``enum zone_type`` order (DMA, DMA32, Normal, HighMem, Movable, Device),
      unknown names after them in order of first appearance.

    Absent zones are rows of zeros; ``present[node, zone]`` says which rows the
    text had.  Node ids may be sparse: the node axis runs to the highest id.

Orders
    2.6.11 and x86 today print 11 orders (0..10).  Other architectures print more
    (e.g. 13 or 14 with 16/64 KiB pages).  The parsers accept any count from 1 to
    64 as long as every line of the text agrees; ``nr_orders`` reports it and
    the last axis has that length.  Pass ``max_order=11`` to insist on 11.

Fragmentation indices (mm/vmstat.c, debugfs ``extfrag/``)
    For one zone and a requested order j, with T = free blocks, P = free pages and
    S = free blocks of order >= j counted in units of 2^j:

    * ``unusable_index = (P - S*2^j) * 1000 / P`` (1000 when P = 0), printed ``%d.%03d``;
    * ``fragmentation_index``: 0 when T = 0, -1000 when S > 0 (the allocation would
      succeed), else ``1000 - (1000 + P*1000/2^j) / T``, printed ``%2d.%03d``.

    All in thousandths with the kernel's unsigned integer division.  The
    printing uses C's truncating ``/`` and ``%`` on the int, so a negative index
    other than -1000 prints the way the kernel prints it (e.g. -500 as `` 0.-500``:
    one free order-0 page and an order-1 request).

The readers, one module per kernel file: :mod:`.buddyinfo`,
:mod:`.pagetypeinfo` and :mod:`.extfrag` (debugfs ``extfrag/``); this module
re-exports them and reads either /proc file (:func:`parse`).
"""

from __future__ import annotations

from ._common import (
    KERNEL_ZONE_ORDER,
    LAYOUT_ZONES,
    MAX_LINE,
    MAX_NUMNODES,
    MAX_ORDERS,
    PAGETYPEINFO_CAP,
    ZoneRow,
    _lines,
)
from .buddyinfo import BuddyInfo, parse_buddyinfo
from .extfrag import (
    _as_nr_free,
    contig_page_info,
    extfrag_text,
    format_fragmentation,
    format_unusable,
    fragmentation_index,
    fragmentation_indices,
    free_area_of,
    unusable_index,
    unusable_indices,
    unusable_text,
)
from .pagetypeinfo import PageTypeInfo, is_pagetypeinfo, parse_pagetypeinfo

__all__ = [
    "KERNEL_ZONE_ORDER",
    "LAYOUT_ZONES",
    "BuddyInfo",
    "PageTypeInfo",
    "ZoneRow",
    "contig_page_info",
    "extfrag_text",
    "format_fragmentation",
    "format_unusable",
    "fragmentation_index",
    "fragmentation_indices",
    "free_area_of",
    "is_pagetypeinfo",
    "parse",
    "parse_buddyinfo",
    "parse_pagetypeinfo",
    "unusable_index",
    "unusable_indices",
    "unusable_text",
]

__all__ += ["MAX_LINE", "MAX_NUMNODES", "MAX_ORDERS", "PAGETYPEINFO_CAP", "_as_nr_free"]


def parse(
    text: str | bytes, *, layout: str | None = None, max_order: int | None = None
) -> BuddyInfo | PageTypeInfo:
    """Parse /proc/buddyinfo or /proc/pagetypeinfo, whichever ``text`` is."""
    lines = _lines(text, "text")
    joined = "\n".join(lines)
    if is_pagetypeinfo(joined):
        return parse_pagetypeinfo(joined, layout=layout, max_order=max_order)
    return parse_buddyinfo(joined, layout=layout, max_order=max_order)
