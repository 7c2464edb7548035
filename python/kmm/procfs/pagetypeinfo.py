"""``/proc/pagetypeinfo`` (``pagetypeinfo_show`` in mm/vmstat.c): free blocks per
zone, migrate type and order, and pageblocks per type."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ParseError
from ._common import (
    _BLOCKS_HEADER,
    _BUDDY_RE,
    _FREE_HEADER,
    _MIXED_HEADER,
    _NAME_RE,
    _PTI_FREE_RE,
    MAX_ORDERS,
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
from .buddyinfo import BuddyInfo


@dataclass(frozen=True, eq=False)
class PageTypeInfo:
    """A parsed ``/proc/pagetypeinfo``.

    ``nr_free[node, zone, type, order]`` counts free blocks per migrate type
    (kmm's antifrag prints its 2005 lists KernNoRclm, KernRclm, UserRclm and the
    free_area_global list as type ``Global``; vanilla prints one type ``Any``);
    ``capped`` marks the counts the kernel printed with ``>`` (it stops counting
    at 100000, so the true count is larger).  ``nr_blocks[node, zone, type]``:
    pageblocks per type; ``mixed_blocks``: the page_owner "Number of mixed
    blocks" section when the text had it, else None.
    """

    pageblock_order: int
    pages_per_block: int
    nr_free: np.ndarray
    capped: np.ndarray
    nr_blocks: np.ndarray
    mixed_blocks: np.ndarray | None
    type_names: tuple[str, ...]
    zone_names: tuple[str, ...]
    layout: str
    present: np.ndarray
    rows: tuple[tuple[int, str], ...] = field(default=())

    @property
    def nr_nodes(self) -> int:
        return int(self.nr_free.shape[0])

    @property
    def nr_orders(self) -> int:
        return int(self.nr_free.shape[-1])

    @property
    def any_capped(self) -> bool:
        """True when some count was printed with ``>`` (totals are then lower bounds)."""
        return bool(self.capped.any())

    def buddyinfo(self) -> BuddyInfo:
        """The per-order totals over all types, as a :class:`BuddyInfo` (what buddyinfo prints).

        Capped counts enter the sum as 100000, so the totals are lower bounds
        when :attr:`any_capped`.
        """
        total = self.nr_free.sum(axis=2)
        rows = tuple(
            ZoneRow(node, zone, tuple(int(c) for c in total[node, self.zone_names.index(zone)]), 0)
            for node, zone in self.rows
        )
        return BuddyInfo(total, self.zone_names, self.layout, self.present.copy(), rows)

    def text(self) -> str:
        """The ``/proc/pagetypeinfo`` text again, one header per node as the kernel prints it."""
        out: list[str] = []
        order_hdr = "".join(f"{o:6d} " for o in range(self.nr_orders))
        type_hdr = "".join(f"{t:>12} " for t in self.type_names)
        for node in range(self.nr_nodes):
            zones = [z for n, z in self.rows if n == node]
            if not zones:
                continue
            out.append(f"Page block order: {self.pageblock_order}\n")
            out.append(f"Pages per block:  {self.pages_per_block}\n\n")
            out.append(f"{_FREE_HEADER:<43} {order_hdr}\n")
            for zone in zones:
                zt = self.zone_names.index(zone)
                for t, tname in enumerate(self.type_names):
                    cells = "".join(
                        (">" if self.capped[node, zt, t, o] else "") + f"{int(c):6d} "
                        for o, c in enumerate(self.nr_free[node, zt, t])
                    )
                    out.append(f"Node {node:4d}, zone {zone:>8}, type {tname:>12} {cells}\n")
            sections = [(_BLOCKS_HEADER + " ", self.nr_blocks)]
            if self.mixed_blocks is not None:
                sections.append((_MIXED_HEADER + " ", self.mixed_blocks))
            for title, arr in sections:
                out.append(f"\n{title:<23}{type_hdr}\n")
                for zone in zones:
                    zt = self.zone_names.index(zone)
                    cells = "".join(f"{int(c):12d} " for c in arr[node, zt])
                    out.append(f"Node {node}, zone {zone:>8} {cells}\n")
        return "".join(out)



def is_pagetypeinfo(text: str) -> bool:
    """True when ``text`` looks like /proc/pagetypeinfo rather than /proc/buddyinfo."""
    for line in text.splitlines():
        s = line.strip()
        if s:
            return s.startswith(("Page block order", _FREE_HEADER))
    return False



# ---------------------------------------------------------------------------
# /proc/pagetypeinfo


def parse_pagetypeinfo(
    text: str | bytes, *, layout: str | None = None, max_order: int | None = None
) -> PageTypeInfo:
    """Parse a ``/proc/pagetypeinfo`` text (real or simulated) into a :class:`PageTypeInfo`.

    Accepts the kernel's per-node repetition of the whole file (one "Page block
    order" header per node with memory) as well as one header for all nodes;
    the free-pages section, the blocks section and the optional page_owner
    "Number of mixed blocks" section; any type names (Unmovable, Movable,
    Reclaimable, HighAtomic, CMA, Isolate, Reserve, kmm's KernNoRclm, KernRclm,
    UserRclm, Global, Any); counts printed as ``>100000``.  Raises
    :class:`kmm.ParseError` naming the line and the problem.
    """
    lines = _lines(text, "pagetypeinfo")
    _check_max_order(max_order)
    pb_order: int | None = None
    per_block: int | None = None
    nr_orders: int | None = None
    types: list[str] = []
    free_rows: dict[tuple[int, str, str], tuple[list[int], list[bool], int]] = {}
    block_rows: dict[str, dict[tuple[int, str], tuple[dict[str, int], int]]] = {
        "blocks": {},
        "mixed": {},
    }
    zone_order: list[tuple[int, str]] = []
    state = "start"  # start, per_block, blank, free_hdr, free, blocks, mixed
    section_types: list[str] = []
    saw_blocks = False

    def add_zone(node: int, zone: str) -> None:
        if (node, zone) not in zone_order:
            zone_order.append((node, zone))

    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if line.startswith("Page block order:"):
            if state not in ("start", "blocks", "mixed"):
                raise _err(lineno, "'Page block order' header in the middle of a section")
            v = line[len("Page block order:") :].strip()
            if not v.isdigit() or not v.isascii() or int(v) >= MAX_ORDERS:
                raise _err(lineno, f"bad pageblock order {v!r}")
            if pb_order is not None and int(v) != pb_order:
                raise _err(
                    lineno, f"pageblock order {v} differs from the first header's {pb_order}"
                )
            pb_order = int(v)
            state = "per_block"
            continue
        if state == "start":
            if not line:
                continue
            raise _err(lineno, f"expected 'Page block order: <n>', got {_show(line)}")
        if state == "per_block":
            if not line.startswith("Pages per block:"):
                raise _err(lineno, f"expected 'Pages per block: <n>', got {_show(line)}")
            v = line[len("Pages per block:") :].strip()
            if not v.isdigit() or not v.isascii():
                raise _err(lineno, f"bad pages-per-block count {v!r}")
            assert pb_order is not None
            if int(v) != 1 << pb_order:
                raise _err(
                    lineno,
                    f"{v} pages per block does not match pageblock order {pb_order} "
                    f"({1 << pb_order})",
                )
            per_block = int(v)
            state = "free_hdr"
            continue
        if not line:
            continue
        if line.startswith(_FREE_HEADER):
            if state != "free_hdr":
                raise _err(
                    lineno, "free-pages header without a preceding 'Page block order' header"
                )
            hdr = line[len(_FREE_HEADER) :].split()
            if not hdr or hdr != [str(o) for o in range(len(hdr))]:
                raise _err(
                    lineno, f"expected the orders 0, 1, 2, ... after {_FREE_HEADER!r}, got {hdr!r}"
                )
            if nr_orders is None:
                _check_orders(len(hdr), max_order, lineno)
                nr_orders = len(hdr)
            elif len(hdr) != nr_orders:
                raise _err(lineno, f"{len(hdr)} orders, but the first header has {nr_orders}")
            state = "free"
            continue
        if state == "free_hdr":
            raise _err(lineno, f"expected {_FREE_HEADER!r} and the orders, got {_show(line)}")
        if line.startswith((_BLOCKS_HEADER, _MIXED_HEADER)):
            is_mixed = line.startswith(_MIXED_HEADER)
            if is_mixed and state not in ("blocks",):
                raise _err(lineno, "'Number of mixed blocks' section before the blocks section")
            if not is_mixed and state != "free":
                raise _err(lineno, "blocks section without a free-pages section before it")
            hdr_len = len(_MIXED_HEADER if is_mixed else _BLOCKS_HEADER)
            section_types = line[hdr_len:].split()
            if not section_types:
                raise _err(lineno, "no type names in the blocks header")
            for t in section_types:
                if not _NAME_RE.match(t):
                    raise _err(lineno, f"bad migrate type name {t!r}")
                if t not in types:
                    types.append(t)
            if len(set(section_types)) != len(section_types):
                raise _err(lineno, "a migrate type is named twice in the blocks header")
            state = "mixed" if is_mixed else "blocks"
            saw_blocks = True
            continue
        if state == "free":
            mt = _PTI_FREE_RE.match(line)
            if not mt:
                raise _err(
                    lineno,
                    f"expected 'Node <n>, zone <name>, type <type> <counts...>', got {_show(line)}",
                )
            node = _check_node(mt.group(1), lineno)
            zone = _check_zone(mt.group(2), lineno)
            tname = mt.group(3)
            if not _NAME_RE.match(tname):
                raise _err(lineno, f"bad migrate type name {tname!r}")
            fields = mt.group(4).split()
            assert nr_orders is not None
            if len(fields) != nr_orders:
                raise _err(lineno, f"{len(fields)} counts, expected one per order ({nr_orders})")
            vals, caps = _parse_counts(fields, lineno, "free count of order", allow_cap=True)
            key = (node, zone, tname)
            if key in free_rows:
                raise _err(
                    lineno,
                    f"node {node} zone {zone} type {tname} appears twice "
                    f"(first on line {free_rows[key][2]})",
                )
            free_rows[key] = (vals, caps, lineno)
            if tname not in types:
                types.append(tname)
            add_zone(node, zone)
            continue
        # blocks or mixed rows
        mt = _BUDDY_RE.match(line)
        if not mt:
            raise _err(
                lineno, f"expected 'Node <n>, zone <name> <blocks per type...>', got {_show(line)}"
            )
        node = _check_node(mt.group(1), lineno)
        zone = _check_zone(mt.group(2), lineno)
        fields = mt.group(3).split()
        if len(fields) != len(section_types):
            raise _err(
                lineno, f"{len(fields)} block counts, expected one per type ({len(section_types)})"
            )
        vals, _ = _parse_counts(fields, lineno, "block count of type")
        table = block_rows[state]
        if (node, zone) in table:
            raise _err(
                lineno,
                f"node {node} zone {zone} appears twice in this section "
                f"(first on line {table[(node, zone)][1]})",
            )
        table[(node, zone)] = (dict(zip(section_types, vals)), lineno)
        add_zone(node, zone)
    if pb_order is None or per_block is None:
        raise ParseError("no 'Page block order' header: the text is empty, not /proc/pagetypeinfo")
    if nr_orders is None or not free_rows:
        raise ParseError("no free-pages rows: truncated /proc/pagetypeinfo")
    if not saw_blocks:
        raise ParseError("no 'Number of blocks type' section: truncated /proc/pagetypeinfo")
    lay, zone_names = _infer_layout([z for _, z in zone_order], layout)
    nodes = max(n for n, _ in zone_order) + 1
    shape = (nodes, len(zone_names), len(types))
    nr_free = np.zeros(shape + (nr_orders,), dtype=np.int64)
    capped = np.zeros(shape + (nr_orders,), dtype=bool)
    present = np.zeros((nodes, len(zone_names)), dtype=bool)
    for (node, zone, tname), (vals, caps, _) in free_rows.items():
        zt, t = zone_names.index(zone), types.index(tname)
        nr_free[node, zt, t] = vals
        capped[node, zt, t] = caps
    arrays = {}
    for name, table in block_rows.items():
        arr = np.zeros(shape, dtype=np.int64)
        for (node, zone), (counts, _) in table.items():
            for tname, v in counts.items():
                arr[node, zone_names.index(zone), types.index(tname)] = v
        arrays[name] = arr
    for node, zone in zone_order:
        present[node, zone_names.index(zone)] = True
    return PageTypeInfo(
        pageblock_order=pb_order,
        pages_per_block=per_block,
        nr_free=nr_free,
        capped=capped,
        nr_blocks=arrays["blocks"],
        mixed_blocks=arrays["mixed"] if block_rows["mixed"] else None,
        type_names=tuple(types),
        zone_names=zone_names,
        layout=lay,
        present=present,
        rows=tuple(sorted(zone_order, key=lambda nz: (nz[0], zone_order.index(nz)))),
    )
