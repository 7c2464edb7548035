"""The distinct records of a page_owner dump: :class:`OwnerGroup` and :class:`OwnerReport`.

Groups are made in Rust, from dump text (:func:`kmm.page_owner.read`) or from
a live machine (:meth:`kmm.page_owner.PageOwnerView.groups`); this module turns
the rows the binding returns into dataclasses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["OwnerGroup", "OwnerReport", "groups_from_rows"]


@dataclass
class OwnerGroup:
    """A distinct page_owner record and how many times it occurs.

    ``header`` is the record's first line without the per-record ``ts``
    fields; ``stack`` its stack lines as printed (and the kept optional lines).
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


@dataclass
class OwnerReport:
    """What :func:`kmm.page_owner.read` found: the distinct records and counters."""

    groups: list[OwnerGroup]
    stats: dict[str, int]
    errors: list[str]

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


def groups_from_rows(rows: Iterable[tuple]) -> list[OwnerGroup]:
    """Groups from the binding's rows: (text, header_len, order, mask, pid,
    tgid, comm, allocator, nr_frames, count, pages, first_ts)."""
    out = []
    for text, header_len, order, mask, pid, tgid, comm, allocator, _nf, count, pages, first_ts in rows:
        header = text[: header_len - 1]
        stack: list[str] = []
        extra: list[str] = []
        for line in text[header_len:].splitlines():
            (stack if line[:1] in (" ", "\t", "[") else extra).append(line)
        out.append(
            OwnerGroup(header=header, stack=stack, order=order, count=count, pages=pages, mask=mask,
                       pid=pid, tgid=tgid, comm=comm, allocator=allocator, first_ts=first_ts,
                       extra=extra)
        )
    return out
