"""What the readers of the /proc memory files share: limits, the zone-row
record, line splitting and checking, the zone-axis inference (see
:mod:`kmm.procfs`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._args import int_arg
from ..errors import ParseError

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


def _check_max_order(max_order: int | None) -> None:
    if max_order is not None:
        int_arg("max_order", max_order, 1, MAX_ORDERS, error=ParseError)
