"""Printing groups: ``Documentation/page_owner.c`` and ``page_owner_sort``
output, folded stacks for flame graphs, and JSON."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .group import OwnerGroup

__all__ = ["format_classic", "format_folded", "format_sort", "to_json"]


def format_classic(groups: Iterable[OwnerGroup]) -> str:
    """``Documentation/page_owner.c`` output: ``N times:``, the record, a blank line."""
    return "".join(f"{g.count} times:\n{g.text}\n" for g in groups)


def format_sort(
    groups: Iterable[OwnerGroup],
    *,
    cull: Iterable[str] = (),
    filtered: Iterable[str] = (),
) -> str:
    """page_owner_sort output. Without ``cull``: ``N times, P pages, allocated
    by ALLOCATOR:`` then the record and a blank line. With ``cull`` (and for
    the fields in ``filtered``: "pid", "tgid", "name"): ``N times, P pages``
    then ``, PID x``, ``, TGID y``, ``, task_comm_name: z``, ``, allocated by
    A`` as culled or filtered, and the stack when culled by stacktrace."""
    c = set(cull)
    f = set(filtered)
    out = []
    for g in groups:
        if not c:
            out.append(f"{g.count} times, {g.pages} pages, allocated by {g.allocator} :\n{g.text}\n")
            continue
        s = f"{g.count} times, {g.pages} pages"
        if "pid" in c or "pid" in f:
            s += f", PID {-1 if g.pid is None else g.pid}"
        if "tgid" in c or "tgid" in f:
            s += f", TGID {-1 if g.tgid is None else g.tgid}"
        if "name" in c or "name" in f:
            s += f", task_comm_name: {g.comm or ''}"
        if "allocator" in c:
            s += f", allocated by {g.allocator} "
        if "stacktrace" in c:
            s += ":\n" + g.stack_text
        out.append(s + "\n")
    return "".join(out)


def format_folded(groups: Iterable[OwnerGroup]) -> str:
    """Folded stacks for flame graphs: frames root first joined by ';', a
    space, the pages; identical stacks merged, most pages first."""
    acc: dict[str, int] = {}
    for g in groups:
        syms = g.symbols()
        if not syms:
            syms = ["[no stack]"]
        key = ";".join(reversed(syms))
        acc[key] = acc.get(key, 0) + g.pages
    return "".join(f"{k} {v}\n" for k, v in sorted(acc.items(), key=lambda kv: (-kv[1], kv[0])))


def to_json(groups: Iterable[OwnerGroup], stats: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A JSON-ready dict: the groups (count, pages, order, mask, pid, tgid,
    comm, allocator, first_ts, header, stack) and the read counters."""
    gl = [
        {
            "count": g.count, "pages": g.pages, "order": g.order, "mask": g.mask, "pid": g.pid,
            "tgid": g.tgid, "comm": g.comm, "allocator": g.allocator, "first_ts": g.first_ts,
            "header": g.header, "stack": [s.strip() for s in g.stack], "symbols": g.symbols(),
            "extra": g.extra,
        }
        for g in groups
    ]
    return {"groups": gl, "stats": dict(stats or {})}
