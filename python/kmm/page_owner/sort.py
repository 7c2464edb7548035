"""Sorting, filtering and culling groups with ``tools/mm/page_owner_sort`` semantics."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from ..errors import PageOwnerError
from .group import OwnerGroup

__all__ = ["CULL_FIELDS", "SORT_KEYS", "cull_groups", "filter_groups", "parse_sort", "sort_groups"]

#: ``--sort`` keys and their short names (page_owner_sort's, plus times and pages).
SORT_KEYS: dict[str, str] = {
    "p": "pid", "pid": "pid",
    "tg": "tgid", "tgid": "tgid",
    "n": "name", "name": "name",
    "st": "stacktrace", "stacktrace": "stacktrace",
    "T": "txt", "txt": "txt",
    "at": "alloc_ts", "alloc_ts": "alloc_ts",
    "ator": "allocator", "allocator": "allocator",
    "t": "times", "times": "times",
    "m": "pages", "pages": "pages",
}
#: ``--cull`` fields.
CULL_FIELDS = ("pid", "tgid", "name", "stacktrace", "allocator")


def _key_value(g: OwnerGroup, key: str) -> Any:
    if key == "pid":
        return -1 if g.pid is None else g.pid
    if key == "tgid":
        return -1 if g.tgid is None else g.tgid
    if key == "name":
        return g.comm or ""
    if key == "stacktrace":
        return g.stack_text
    if key == "txt":
        return g.text
    if key == "alloc_ts":
        return -1 if g.first_ts is None else g.first_ts
    if key == "allocator":
        return g.allocator
    if key == "times":
        return g.count
    if key == "pages":
        return g.pages
    raise PageOwnerError(f"unknown sort key {key!r} (expected one of {', '.join(sorted(set(SORT_KEYS)))})")


def parse_sort(spec: str) -> list[tuple[str, bool]]:
    """``"n,+pid,-tgid"`` -> [(key, descending)]: ascending unless prefixed with '-'."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        desc = part.startswith("-")
        name = part.lstrip("+-")
        if name not in SORT_KEYS:
            raise PageOwnerError(
                f"unknown sort key {name!r} in {spec!r} (expected one of {', '.join(sorted(SORT_KEYS))})"
            )
        out.append((SORT_KEYS[name], desc))
    if not out:
        raise PageOwnerError("empty --sort specification")
    return out


def sort_groups(groups: Sequence[OwnerGroup], keys: Sequence[tuple[str, bool]] | str = "-times") -> list[OwnerGroup]:
    """Sort by keys (first key most significant); ties keep input order."""
    if isinstance(keys, str):
        keys = parse_sort(keys)
    out = list(groups)
    for key, desc in reversed(list(keys)):
        out.sort(key=lambda g: _key_value(g, key), reverse=desc)
    return out


def filter_groups(
    groups: Iterable[OwnerGroup],
    *,
    pids: Iterable[int] | None = None,
    tgids: Iterable[int] | None = None,
    names: Iterable[str] | None = None,
) -> list[OwnerGroup]:
    """Keep the groups whose pid, tgid and comm are in the given lists (None: any)."""
    p = None if pids is None else set(pids)
    t = None if tgids is None else set(tgids)
    n = None if names is None else set(names)
    return [
        g for g in groups
        if (p is None or g.pid in p) and (t is None or g.tgid in t) and (n is None or g.comm in n)
    ]


def cull_groups(groups: Iterable[OwnerGroup], fields: Iterable[str]) -> list[OwnerGroup]:
    """Merge groups that agree on ``fields`` (page_owner_sort ``--cull``)."""
    fs = list(fields)
    for f in fs:
        if f not in CULL_FIELDS:
            raise PageOwnerError(f"unknown cull field {f!r} (expected some of {', '.join(CULL_FIELDS)})")
    merged: dict[tuple, OwnerGroup] = {}
    for g in groups:
        key = tuple(
            {"pid": g.pid, "tgid": g.tgid, "name": g.comm, "stacktrace": g.stack_text,
             "allocator": g.allocator}[f]
            for f in fs
        )
        m = merged.get(key)
        if m is None:
            merged[key] = replace(g, stack=list(g.stack), extra=list(g.extra))
        else:
            m.count += g.count
            m.pages += g.pages
            if g.first_ts is not None:
                m.first_ts = g.first_ts if m.first_ts is None else min(m.first_ts, g.first_ts)
    return list(merged.values())
