"""The distinct records of a page_owner dump: :class:`OwnerGroup` and
:class:`OwnerReport`, and printing them.

Groups are made in Rust, from dump text (:func:`kmm.page_owner.read`) or from
a live machine (:meth:`kmm.page_owner.PageOwnerView.groups`), and stay there:
each :class:`OwnerGroup` is a row of a Rust ``OwnerTable`` (the table the
CLI renders), with its fields copied out for Python. Every text of groups
(``page_owner_sort`` output, the 2005 output, folded stacks, JSON) is
rendered by that table, in Rust (``page_owner/output.rs``): the functions
here only pick the rows.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _kmm
from ..errors import PageOwnerError

__all__ = [
    "OwnerGroup",
    "OwnerReport",
    "format_classic",
    "format_folded",
    "format_sort",
    "groups_of",
    "table_ids",
    "to_json",
]


@dataclass
class OwnerGroup:
    """A distinct page_owner record and how many times it occurs.

    ``header`` is the record's first line without the per-record ``ts``
    fields; ``stack`` its stack lines as printed (and the kept optional lines).
    The group is row ``id`` of ``table``, the Rust table it was read from.
    """

    header: str
    stack: list[str]
    order: int
    count: int
    pages: int
    mask: int | None = None
    pid: int | None = None
    tgid: int | None = None
    comm: str | None = None
    allocator: str = "OTHERS"
    first_ts: int | None = None
    extra: list[str] = field(default_factory=list)
    table: _kmm.OwnerTable | None = field(default=None, repr=False, compare=False)
    id: int = field(default=-1, repr=False, compare=False)

    @property
    def text(self) -> str:
        """The record as printed (header, stack lines; each line ends in a newline)."""
        return "".join(line + "\n" for line in [self.header, *self.stack, *self.extra])

    @property
    def stack_text(self) -> str:
        return "".join(line + "\n" for line in self.stack)

    def symbols(self) -> list[str]:
        """Function names of the stack, leaf first."""
        return [_frame_symbol(s) for s in self.stack]


class OwnerReport:
    """What :func:`kmm.page_owner.read` found: the table of distinct records
    (``table``), its counters (``stats``) and the skipped records' messages
    (``errors``); ``groups`` are its rows, made on first use."""

    def __init__(self, table: _kmm.OwnerTable) -> None:
        self.table = table
        self.stats: dict[str, int] = dict(table.stats())
        self.errors: list[str] = list(table.errors())
        self._groups: list[OwnerGroup] | None = None

    @property
    def groups(self) -> list[OwnerGroup]:
        """The groups, in order of first appearance."""
        if self._groups is None:
            self._groups = groups_of(self.table)
        return self._groups

    @property
    def records(self) -> int:
        return self.stats["records"]


def _frame_symbol(line: str) -> str:
    s = line.strip()
    if s.startswith("["):
        end = s.find("]")
        if end >= 0:
            s = s[end + 1 :].strip()
    if " [" in s:  # module suffix
        s = s[: s.index(" [")]
    plus = s.find("+")
    return s[:plus] if plus > 0 else s


def groups_of(table: _kmm.OwnerTable, ids: list[int] | None = None) -> list[OwnerGroup]:
    """The groups ``ids`` of a Rust table (all, in order of first appearance, by default)."""
    rows = table.groups(ids)
    out = []
    for i, (text, header_len, order, mask, pid, tgid, comm, allocator, _nf, count, pages, first_ts) in zip(
        range(len(table)) if ids is None else ids, rows
    ):
        header = text[: header_len - 1] if header_len else ""
        stack: list[str] = []
        extra: list[str] = []
        # "\n" only, the kernel's separator: str.splitlines() would also
        # split a frame at U+2028, U+0085, \x1c or \f inside a symbol
        for line in text[header_len:].split("\n"):
            if line:
                (stack if line[:1] in (" ", "\t", "[") else extra).append(line)
        out.append(
            OwnerGroup(header=header, stack=stack, order=order, count=count, pages=pages, mask=mask,
                       pid=pid, tgid=tgid, comm=comm, allocator=allocator, first_ts=first_ts,
                       extra=extra, table=table, id=i)
        )
    return out


def table_ids(groups: Iterable[OwnerGroup]) -> tuple[_kmm.OwnerTable | None, list[int]]:
    """The one table ``groups`` are rows of, and their ids in order (None for no groups)."""
    table = None
    ids = []
    for g in groups:
        if not isinstance(g, OwnerGroup) or g.table is None:
            raise PageOwnerError(
                f"not a group of a page_owner table: {g!r} (groups come from read() or PageOwnerView.groups())"
            )
        if table is None:
            table = g.table
        elif g.table is not table:
            raise PageOwnerError("these groups come from different tables (read() or groups() calls)")
        ids.append(g.id)
    return table, ids


def _render(groups: Iterable[OwnerGroup], format: str) -> str:
    table, ids = table_ids(groups)
    if table is None:
        return ""
    buf = io.BytesIO()
    table.render(buf, format, ids)
    return buf.getvalue().decode("utf-8", "replace")


def format_classic(groups: Iterable[OwnerGroup]) -> str:
    """``Documentation/page_owner.c`` output: ``N times:``, the record, a blank line."""
    return _render(groups, "classic")


def format_sort(groups: Iterable[OwnerGroup]) -> str:
    """page_owner_sort output of the groups as given: ``N times, P pages,
    allocated by A :``, the record and a blank line; for culled groups
    (:func:`kmm.page_owner.cull_groups` or ``read(cull=...)``) the culled and
    filtered fields (``, PID x``, ``, TGID y``, ``, task_comm_name: z``,
    ``, allocated by A``) and the stack when culled by stacktrace."""
    return _render(groups, "sort")


def format_folded(groups: Iterable[OwnerGroup]) -> str:
    """Folded stacks for flame graphs: frames root first joined by ';', a
    space, the pages; identical stacks merged, most pages first."""
    return _render(groups, "folded")


def to_json(groups: Iterable[OwnerGroup], stats: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A JSON-ready dict: the groups (count, pages, order, mask, pid, tgid,
    comm, allocator, first_ts, header, stack, symbols, extra) and the read
    counters (their table's, or ``stats``), as ``--json`` prints them."""
    gs = list(groups)
    if not gs:
        return {"groups": [], "stats": dict(stats or {})}
    out: dict[str, Any] = json.loads(_render(gs, "json"))
    if stats is not None:
        out["stats"] = dict(stats)
    return out
