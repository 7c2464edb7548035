"""Sorting, filtering and culling groups with ``tools/mm/page_owner_sort`` semantics.

The work is the Rust table's (``page_owner/table``): one ordering rule for
the CLI and the Python API (by the keys, ties as page_owner_sort leaves them:
by the cull fields, or by the record text without a cull, then by first
appearance), and culling or filtering folds the groups into a new table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import PageOwnerError
from .group import OwnerGroup, groups_of, table_ids

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
    """Sort by keys (first key most significant), ties as page_owner_sort
    leaves them (by the cull fields, or by the record text), then by first
    appearance: the order ``kmm page-owner sort`` prints."""
    if isinstance(keys, str):
        keys = parse_sort(keys)
    keys = [(str(k), bool(d)) for k, d in keys]
    table, ids = table_ids(groups)
    if table is None:
        parse_sort(",".join(("-" if d else "") + k for k, d in keys))  # still reject bad keys
        return []
    by_id = {g.id: g for g in groups}
    return [by_id[i] for i in table.order(keys, ids)]


def filter_groups(
    groups: Iterable[OwnerGroup],
    *,
    pids: Iterable[int] | None = None,
    tgids: Iterable[int] | None = None,
    names: Iterable[str] | None = None,
) -> list[OwnerGroup]:
    """Keep the groups whose pid, tgid and comm are in the given lists (None:
    any), as ``--pid/--tgid/--name`` do; a record without a pid or tgid has -1."""
    table, ids = table_ids(groups)
    if table is None:
        return []
    t = table.refold(
        ids,
        pids=None if pids is None else [int(p) for p in pids],
        tgids=None if tgids is None else [int(t) for t in tgids],
        names=None if names is None else [str(n) for n in names],
    )
    return groups_of(t)


def cull_groups(groups: Iterable[OwnerGroup], fields: Iterable[str]) -> list[OwnerGroup]:
    """Merge groups that agree on ``fields`` (page_owner_sort ``--cull``)."""
    fs = list(fields)
    for f in fs:
        if f not in CULL_FIELDS:
            raise PageOwnerError(f"unknown cull field {f!r} (expected some of {', '.join(CULL_FIELDS)})")
    table, ids = table_ids(groups)
    if table is None:
        return []
    return groups_of(table.refold(ids, cull=fs))
