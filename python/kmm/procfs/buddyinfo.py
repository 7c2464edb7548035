"""``/proc/buddyinfo`` (the kernel's ``frag_show`` in mm/vmstat.c): free blocks per zone and order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParseError
from ._common import (
    _BUDDY_RE,
    _FREE_HEADER,
    ZoneRow,
    _check_max_order,
    _check_node,
    _check_orders,
    _check_zone,
    _err,
    _infer_layout,
    _lines,
    _parse_counts,
    _show,
)


@dataclass(frozen=True, eq=False)
class BuddyInfo:
    """A parsed ``/proc/buddyinfo``.

    ``nr_free[node, zone, order]`` (int64) has the shape of
    :meth:`kmm.Machine.free_area` when the layout is x86_32 or x86_64 and the
    kernel has 11 orders; ``present[node, zone]`` marks the rows the text had;
    ``rows`` keeps the zone lines in file order (for printing).
    """

    nr_free: np.ndarray
    zone_names: tuple[str, ...]
    layout: str
    present: np.ndarray
    rows: tuple[ZoneRow, ...]

    @property
    def nr_nodes(self) -> int:
        return int(self.nr_free.shape[0])

    @property
    def nr_orders(self) -> int:
        return int(self.nr_free.shape[-1])

    def free_pages(self) -> np.ndarray:
        """Free pages per (node, zone): sum of nr_free[order] * 2**order."""
        return (self.nr_free << np.arange(self.nr_orders, dtype=np.int64)).sum(axis=-1)

    def zones(self) -> list[tuple[int, str, np.ndarray]]:
        """``(node, zone name, nr_free per order)`` for every zone line, in file order."""
        return [
            (r.node, r.zone, self.nr_free[r.node, self.zone_names.index(r.zone)]) for r in self.rows
        ]

    def text(self) -> str:
        """The ``/proc/buddyinfo`` text again (``"Node %d, zone %8s "`` + ``"%6lu "`` per order)."""
        out = []
        for node, zone, counts in self.zones():
            out.append(f"Node {node}, zone {zone:>8} " + "".join(f"{int(c):6d} " for c in counts))
        return "".join(line + "\n" for line in out)



def parse_buddyinfo(
    text: str | bytes, *, layout: str | None = None, max_order: int | None = None
) -> BuddyInfo:
    """Parse a ``/proc/buddyinfo`` text (real or simulated) into a :class:`BuddyInfo`.

    ``layout`` forces the zone axis ("x86_32" or "x86_64") instead of inferring
    it from the zone names; ``max_order`` insists on that many orders per line.
    Blank lines and trailing whitespace are ignored.  Raises
    :class:`kmm.ParseError` naming the line and the problem.
    """
    lines = _lines(text, "buddyinfo")
    _check_max_order(max_order)
    rows: list[ZoneRow] = []
    first: dict[tuple[int, str], int] = {}
    nr_orders: int | None = None
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(("Page block order", _FREE_HEADER)):
            raise _err(
                lineno,
                "this is /proc/pagetypeinfo, not /proc/buddyinfo (use parse_pagetypeinfo or parse)",
            )
        mt = _BUDDY_RE.match(line)
        if not mt:
            raise _err(
                lineno,
                f"expected 'Node <n>, zone <name> <nr_free per order...>', got {_show(line)}",
            )
        node = _check_node(mt.group(1), lineno)
        zone = _check_zone(mt.group(2), lineno)
        fields = mt.group(3).split()
        if not fields:
            raise _err(lineno, f"no free-block counts after 'zone {zone}'")
        # the field count first, before any conversion
        if nr_orders is None:
            _check_orders(len(fields), max_order, lineno)
            nr_orders = len(fields)
        elif len(fields) != nr_orders:
            raise _err(lineno, f"{len(fields)} orders, but the first zone line has {nr_orders}")
        counts, _ = _parse_counts(fields, lineno, "nr_free of order")
        key = (node, zone)
        if key in first:
            raise _err(
                lineno, f"node {node} zone {zone} appears twice (first on line {first[key]})"
            )
        first[key] = lineno
        rows.append(ZoneRow(node, zone, tuple(counts), lineno))
    if not rows or nr_orders is None:
        raise ParseError("no zone lines: the text is empty, not /proc/buddyinfo")
    lay, zone_names = _infer_layout([r.zone for r in rows], layout)
    nodes = max(r.node for r in rows) + 1
    nr_free = np.zeros((nodes, len(zone_names), nr_orders), dtype=np.int64)
    present = np.zeros((nodes, len(zone_names)), dtype=bool)
    for r in rows:
        zt = zone_names.index(r.zone)
        nr_free[r.node, zt] = r.counts
        present[r.node, zt] = True
    return BuddyInfo(nr_free, zone_names, lay, present, tuple(rows))
