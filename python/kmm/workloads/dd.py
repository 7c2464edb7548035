"""mmtests' flush of the buffer caches before its pass at rest: ``dd`` of a file
the size of RAM, ``cat`` of it, ``rm`` (``vmr/bin/bench-stresshighalloc.sh``,
"DDing large file and deleting to flush buffer caches").

It runs after the load is gone (:meth:`Load.stop`), so it is emitted here as
trace records, not through a :class:`Load`: the file's pages take fresh object
ids from ``first_id`` on (one past the load's highest, ``Load.peak_objects``).
"""

from __future__ import annotations

import numpy as np

from .._args import float_arg, int_arg
from ..trace import OP_ALLOC, OP_FREE, OP_TICK, OP_TOUCH, TRACE_DTYPE
from .kinds import KIND_GFP
from .params import PAGE

#: the pid of dd and cat (below the load's, which start at 1000)
DD_PID = 999


def dd_cat_rm(pages: int, first_id: int, *, rate_mb_s: float = 35.0, pid: int = DD_PID) -> np.ndarray:
    """The trace of ``dd if=/dev/zero of=largefile``, ``pages`` pages long, then
    ``cat largefile > /dev/null`` and ``rm largefile``.

    dd writes the file's pages in order, each a page-cache allocation
    (``pagecache_write``'s mask), at ``rate_mb_s`` (the model's disk, which
    dirty-page writeback throttles a writer to); cat reads them back in order at
    the same rate, a touch of each page (a page reclaim took meanwhile is read
    again: the engine faults it back in); rm frees every page (one reclaim took
    is a no-op). Time advances in ticks of 1 ms (``OP_TICK``), the pages of each
    millisecond before its tick, as a :class:`Load` emits them."""
    pages = int_arg("pages", pages, 1, 1 << 32)
    first_id = int_arg("first_id", first_id, 0, (1 << 32) - pages)
    rate_mb_s = float_arg("rate_mb_s", rate_mb_s, 0.01, 1e6)
    ids = np.arange(first_id, first_id + pages, dtype=np.uint32)
    # the millisecond each page's write (and read) falls in
    ms = (np.arange(pages, dtype=np.int64) * PAGE * 1000) // round(rate_mb_s * 1e6)
    span = int(ms[-1]) + 1
    out = np.zeros(3 * pages + 2 * span, dtype=TRACE_DTYPE)
    pos = 0
    for op in (OP_ALLOC, OP_TOUCH):
        # each page of millisecond k, then the tick ending k
        rec = np.zeros(pages + span, dtype=TRACE_DTYPE)
        at = ms + np.arange(pages)  # the records before page i: its pages and ticks
        rec["op"][at] = op
        rec["obj"][at] = ids
        rec["pid"][at] = pid
        rec["tgid"][at] = pid
        if op == OP_ALLOC:
            rec["gfp"][at] = KIND_GFP["pagecache_write"]
        tick = np.ones(pages + span, dtype=bool)
        tick[at] = False
        rec["op"][tick] = OP_TICK
        rec["obj"][tick] = 1000
        out[pos : pos + pages + span] = rec
        pos += pages + span
    out["op"][pos:] = OP_FREE
    out["obj"][pos:] = ids
    out["pid"][pos:] = pid
    out["tgid"][pos:] = pid
    return out
