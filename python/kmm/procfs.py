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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._args import int_arg, order_arg
from .errors import ParseError

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

#: The kernel's ``enum zone_type`` order, with the names ``zone->name`` prints.
KERNEL_ZONE_ORDER: tuple[str, ...] = ("DMA", "DMA32", "Normal", "HighMem", "Movable", "Device")

#: Zone types of kmm's layouts, in the order of :attr:`kmm.Machine.zone_names`.
LAYOUT_ZONES: dict[str, tuple[str, ...]] = {
    "x86_32": ("DMA", "Normal", "HighMem"),
    "x86_64": ("DMA", "DMA32", "Normal"),
}

#: Highest node id accepted (the kernel's NODES_SHIFT is at most 10).
MAX_NUMNODES = 1024
#: Most orders a line may carry.
MAX_ORDERS = 64
#: Longest line accepted: a /proc/pagetypeinfo line of MAX_ORDERS counts of
#: 19 digits and a ">" each, with its node, zone and type, is under 1,500
#: characters; a longer line is refused before it is split into fields.
MAX_LINE = 4096
#: pagetypeinfo stops counting a free list at this many entries and prints ">".
PAGETYPEINFO_CAP = 100000

_INT64_MAX = 2**63 - 1
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_BUDDY_RE = re.compile(r"Node\s+(\d+)\s*,\s*zone\s+(\S+)(.*)\Z")
_PTI_FREE_RE = re.compile(r"Node\s+(\d+)\s*,\s*zone\s+([^,\s]+)\s*,\s*type\s+(\S+)(.*)\Z")
_FREE_HEADER = "Free pages count per migrate type at order"
_BLOCKS_HEADER = "Number of blocks type"
_MIXED_HEADER = "Number of mixed blocks"


# ---------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class ZoneRow:
    """One zone line of a /proc file, as it appeared (``line`` is 1-based)."""

    node: int
    zone: str
    counts: tuple[int, ...]
    line: int


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


# ---------------------------------------------------------------------------
# parsing helpers


def _err(lineno: int, msg: str) -> ParseError:
    return ParseError(f"line {lineno}: {msg}")


def _lines(text: Any, what: str) -> list[str]:
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ParseError(f"{what} is not text: {e}") from None
    if not isinstance(text, str):
        raise ParseError(f"{what} must be str or bytes, not {type(text).__name__}")
    if "\x00" in text:
        raise ParseError(f"{what} contains NUL bytes (not a /proc text file)")
    lines = text.splitlines()
    if len(text) > MAX_LINE:
        for lineno, line in enumerate(lines, 1):
            if len(line) > MAX_LINE:
                raise _err(lineno, f"{len(line)} characters is longer than any /proc line (at most {MAX_LINE})")
    return lines


def _show(line: str, limit: int = 60) -> str:
    return repr(line if len(line) <= limit else line[:limit] + "...")


def _parse_counts(
    fields: list[str], lineno: int, what: str, *, allow_cap: bool = False
) -> tuple[list[int], list[bool]]:
    values: list[int] = []
    capped: list[bool] = []
    for i, tok in enumerate(fields):
        cap = False
        if allow_cap and tok.startswith(">"):
            cap, tok = True, tok[1:]
        if not tok.isdigit() or not tok.isascii():
            raise _err(lineno, f"{what} {i} is not a non-negative integer: {_short(fields[i])!r}")
        # length first: int() of a huge digit string is slow, and refused past 4300 digits
        if len(tok.lstrip("0")) > 19 or int(tok) > _INT64_MAX:
            raise _err(lineno, f"{what} {i} is too large: {_short(tok)}")
        v = int(tok)
        values.append(v)
        capped.append(cap)
    return values, capped


def _short(text: str, keep: int = 40) -> str:
    """``text``, cut to ``keep`` characters for a message (inputs may be huge)."""
    return text if len(text) <= keep else f"{text[:keep]}... ({len(text)} characters)"


def _check_node(node_s: str, lineno: int) -> int:
    if len(node_s) > 6:
        raise _err(lineno, f"node {_short(node_s)} is out of range (at most {MAX_NUMNODES - 1})")
    node = int(node_s)
    if node >= MAX_NUMNODES:
        raise _err(lineno, f"node {node} is out of range (at most {MAX_NUMNODES - 1})")
    return node


def _check_zone(zone: str, lineno: int) -> str:
    if not _NAME_RE.match(zone):
        raise _err(lineno, f"bad zone name {zone!r}")
    return zone


def _infer_layout(names: Sequence[str], layout: str | None) -> tuple[str, tuple[str, ...]]:
    """(layout, zone axis) for the zone names seen, in order of first appearance."""
    seen = set(names)
    if layout is not None:
        if layout not in LAYOUT_ZONES:
            raise ParseError(
                f"unknown layout {layout!r} (expected one of {', '.join(LAYOUT_ZONES)} or None)"
            )
        base = LAYOUT_ZONES[layout]
        extra = ("Movable",) if "Movable" in seen else ()
        bad = sorted(seen - set(base) - set(extra))
        if bad:
            raise ParseError(f"zone(s) {', '.join(bad)} do not exist in layout {layout}")
        return layout, base + extra
    movable = ("Movable",) if "Movable" in seen else ()
    rest = seen - {"Movable"}
    if "DMA32" in rest and rest <= set(LAYOUT_ZONES["x86_64"]):
        return "x86_64", LAYOUT_ZONES["x86_64"] + movable
    if rest <= set(LAYOUT_ZONES["x86_32"]):
        return "x86_32", LAYOUT_ZONES["x86_32"] + movable
    known = tuple(z for z in KERNEL_ZONE_ORDER if z in seen)
    unknown: list[str] = []
    for z in names:
        if z not in KERNEL_ZONE_ORDER and z not in unknown:
            unknown.append(z)
    return "generic", known + tuple(unknown)


def _check_orders(nr_orders: int, max_order: int | None, lineno: int) -> None:
    if nr_orders > MAX_ORDERS:
        raise _err(
            lineno, f"{nr_orders} orders is more than any kernel prints (at most {MAX_ORDERS})"
        )
    if max_order is not None and nr_orders != max_order:
        raise _err(
            lineno,
            f"{nr_orders} orders, expected MAX_ORDER = {max_order} (orders 0..{max_order - 1})",
        )


def is_pagetypeinfo(text: str) -> bool:
    """True when ``text`` looks like /proc/pagetypeinfo rather than /proc/buddyinfo."""
    for line in text.splitlines():
        s = line.strip()
        if s:
            return s.startswith(("Page block order", _FREE_HEADER))
    return False


# ---------------------------------------------------------------------------
# /proc/buddyinfo


def _check_max_order(max_order: int | None) -> None:
    if max_order is not None:
        int_arg("max_order", max_order, 1, MAX_ORDERS, error=ParseError)


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


def parse(
    text: str | bytes, *, layout: str | None = None, max_order: int | None = None
) -> BuddyInfo | PageTypeInfo:
    """Parse /proc/buddyinfo or /proc/pagetypeinfo, whichever ``text`` is."""
    lines = _lines(text, "text")
    joined = "\n".join(lines)
    if is_pagetypeinfo(joined):
        return parse_pagetypeinfo(joined, layout=layout, max_order=max_order)
    return parse_buddyinfo(joined, layout=layout, max_order=max_order)


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
