"""NIC receive rings: buffers a network driver keeps allocated, and so
pinned, for as long as the device is up.

Each of ``rings`` rx rings holds :data:`RX_RING_BUFFERS` buffers of
:data:`RX_BUFFER_BYTES`; two buffers share one order-0 page
(:data:`BUFFERS_PER_PAGE`), as today's drivers split a page into fragments
(``page_pool`` fragments, ``include/net/page_pool/helpers.h``; igb's and
ixgbe's half-page buffers) and as e1000 did by 2006 by keeping its standard
receive buffer small enough for the ``size-2048`` slab (``e1000_change_mtu``:
"RXBUFFER_2048 --> size-4096 slab" otherwise). So a ring pins 512 pages.
They are allocated with GFP_ATOMIC (NAPI refill runs in softirq context), so
they are unmovable for every allocator and stay where they land.

All rings are filled at ``start``. Then packets arrive at ``rx_pps`` per
ring; once both buffers of a page have been handed to the stack the driver
refills the slot with a fresh page and the stack's free of the old one
follows: an allocation of a new page, then the free of the old one, every
``2 / rx_pps`` seconds per ring, walking each ring in order (the driver's
``next_to_clean``). The pages are held by the device, not by a process, so
:meth:`kmm.workloads.Load.stop` leaves them allocated; refills stop with the
load. See ``docs/nic.md``, "NIC receive rings and the allocator".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._args import float_arg, int_arg
from ..trace import OP_ALLOC, OP_FREE
from .context import Ctx
from .events import EV, WIN_US, events
from .kinds import K
from .load import Load
from .params import PAGE
from .source import Source, stream_of

#: Buffers of one rx ring (a common default ring size, ``ethtool -g``).
RX_RING_BUFFERS = 1024
#: Bytes of one rx buffer (a 1518-byte frame rounded up to a power of two).
RX_BUFFER_BYTES = 2048
#: rx buffers in one 4 KiB page.
BUFFERS_PER_PAGE = PAGE // RX_BUFFER_BYTES
#: Pages one ring pins.
PAGES_PER_RING = RX_RING_BUFFERS // BUFFERS_PER_PAGE
#: Default packets per second per ring (a ring's worth of buffers each second).
DEFAULT_RX_PPS = 1000.0
#: The pid the refills are accounted to (softirq context: no task of the load).
SOFTIRQ_PID = 0


class NicRxSource(Source):
    """The pages of ``rings`` rx rings: filled at ``start_us``, refilled in ring
    order at ``rings * rx_pps / BUFFERS_PER_PAGE`` pages per second."""

    def __init__(self, *, rings: int, rx_pps: float, start_us: int, seed: int, stream: int) -> None:
        self.rings = rings
        self.rx_pps = rx_pps
        self.start_us = start_us
        self.seed = seed
        self.stream = stream
        self.pages = rings * PAGES_PER_RING
        # one page refilled every `interval_us` across all rings
        self.interval_us = 1e6 * BUFFERS_PER_PAGE / (rings * rx_pps)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "nic_rx",
            "rings": self.rings,
            "buffers_per_ring": RX_RING_BUFFERS,
            "buffer_bytes": RX_BUFFER_BYTES,
            "pages": self.pages,
            "rx_pps_per_ring": self.rx_pps,
            "start_s": self.start_us / 1e6,
        }

    def bind(self, ctx: Ctx) -> None:
        # two ids per slot: the page in the ring and its replacement alternate
        self.base = ctx.ids.permanent(2 * self.pages)

    def _slot(self, j: np.ndarray) -> np.ndarray:
        """The page slot of refill ``j``: the rings take turns, each in ring order."""
        ring = j % self.rings
        return ring * PAGES_PER_RING + (j // self.rings) % PAGES_PER_RING

    def generate(self, ctx: Ctx, w: int) -> list[np.ndarray]:
        lo, hi = w * WIN_US, (w + 1) * WIN_US
        out: list[np.ndarray] = []
        if lo <= self.start_us < hi:
            t = np.full(self.pages, self.start_us, dtype=np.int64)
            ids = self.base + 2 * np.arange(self.pages)
            out.append(events(t, OP_ALLOC, ids, SOFTIRQ_PID, K["nic_rx"], proc=2))
        # refill j (0, 1, ...) happens at start + (j + 1) * interval
        first = max(0, int(np.ceil((lo - self.start_us) / self.interval_us)) - 2)
        last = int(np.ceil((hi - self.start_us) / self.interval_us)) + 1
        j = np.arange(first, max(first, last), dtype=np.int64)
        t = self.start_us + np.round((j + 1) * self.interval_us).astype(np.int64)
        keep = (t >= lo) & (t < hi)
        j, t = j[keep], t[keep]
        if j.shape[0]:
            slot = self._slot(j)
            lap = j // self.pages  # how often this slot was refilled before
            old = self.base + 2 * slot + lap % 2
            new = self.base + 2 * slot + (lap + 1) % 2
            ev = np.empty(2 * j.shape[0], dtype=EV)
            # the fresh page first (the driver refills in its poll), then the
            # stack's free of the page it was given
            ev[0::2] = events(t, OP_ALLOC, new, SOFTIRQ_PID, K["nic_rx"], proc=2)
            ev[1::2] = events(t, OP_FREE, old, SOFTIRQ_PID, K["nic_rx"], proc=2)
            out.append(ev)
        return out


def rx_rings(
    rings: int,
    *,
    rx_pps: float = DEFAULT_RX_PPS,
    start: float = 0.0,
    seed: int = 0,
    stacks: Mapping[str, int] | None = None,
) -> Load:
    """``rings`` NIC rx rings of :data:`RX_RING_BUFFERS` 2 KiB buffers, two to a
    page, allocated at ``start`` and refilled at ``rx_pps`` packets per second per
    ring while the load runs (a :class:`kmm.workloads.Load`; combine it with
    another load with :func:`kmm.workloads.combine`)."""
    src = NicRxSource(
        rings=int_arg("rings", rings, 1, 64),
        rx_pps=float_arg("rx_pps", rx_pps, 1.0, 1e6),
        start_us=round(float_arg("start", start, 0.0, 1e6) * 1e6),
        seed=int_arg("seed", seed, 0, None),
        stream=stream_of("nic_rx", ""),
    )
    return Load([src], stacks)
