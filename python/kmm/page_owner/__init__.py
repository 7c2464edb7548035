"""page_owner: who allocated every page, and the tools that boil it down.

Recording lives in the engine (``Machine(page_owner=True)``); this package is
its Python face, ``m.page_owner`` (a :class:`PageOwnerView`):

>>> import kmm
>>> m = kmm.Machine(mem="64MiB", page_owner=True)
>>> h = m.page_owner.intern(kmm.symbols.chain(("kmem_getpages", 49), ("cache_grow", 173)))
>>> pfn = m.alloc(0, "GFP_KERNEL", stack=h, pid=1)
>>> print(m.page_owner.dumps("2005"), end="")
Page allocated via order 0, mask 0xd0
[0xc0146f01] kmem_getpages+49
[0xc014846d] cache_grow+173
<BLANKLINE>

and the aggregator of dump text (``Documentation/page_owner.c`` of 2005 and
today's ``tools/mm/page_owner_sort``), :func:`read`, which streams a file, a
pipe or stdin through a Rust hot loop in memory proportional to the number of
distinct records, never stat()ing its input. :func:`format_classic`,
:func:`format_sort`, :func:`format_folded` and :func:`to_json` print the
result; :meth:`PageOwnerView.groups` gives the same groups straight from a live
machine, without a text round trip.

The package by concept: :mod:`.view` (the live view), :mod:`.reader` (dump
text in), :mod:`.group` (the groups, rows of a Rust ``OwnerTable``, and
their text and JSON out) and :mod:`.sort` (``page_owner_sort``'s sorting,
filtering and culling, done by that table). All page_owner text is rendered
in Rust, by the renderer ``kmm page-owner sort`` uses.
"""

from __future__ import annotations

from .group import OwnerGroup, OwnerReport, format_classic, format_folded, format_sort, to_json
from .reader import Source as Source
from .reader import aggregate, aggregator, read
from .sort import CULL_FIELDS, SORT_KEYS, cull_groups, filter_groups, parse_sort, sort_groups
from .view import FORMATS, WORKLOAD_KINDS, PageOwnerView, StackCounts, workload_stacks
from .view import Frame as Frame

__all__ = [
    "CULL_FIELDS",
    "FORMATS",
    "SORT_KEYS",
    "WORKLOAD_KINDS",
    "OwnerGroup",
    "OwnerReport",
    "PageOwnerView",
    "StackCounts",
    "aggregate",
    "aggregator",
    "cull_groups",
    "filter_groups",
    "format_classic",
    "format_folded",
    "format_sort",
    "parse_sort",
    "read",
    "sort_groups",
    "to_json",
    "workload_stacks",
]
