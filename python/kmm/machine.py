"""The simulated machine: ``kmm.Machine``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _kmm
from . import gfp as _gfp
from .errors import ConfigError
from .trace import OP_ALLOC, OP_FREE, OP_TICK, OP_TOUCH, TRACE_DTYPE, as_trace, empty_trace  # noqa: F401 (re-exported)

MAX_ORDER: int = _kmm.MAX_ORDER
PAGE_SIZE: int = _kmm.PAGE_SIZE

#: ``page_map()`` codes.
PM_FREE, PM_PCP, PM_RESERVED = 0, 1, 2
PM_KERNNORCLM, PM_KERNRCLM, PM_USERRCLM = 3, 4, 5
PAGE_MAP_NAMES = ["free", "pcp", "reserved", "KernNoRclm", "KernRclm", "UserRclm"]

ALLOCATORS = ("vanilla", "antifrag", "mobility")
LAYOUTS = ("x86_32", "x86_64")


def parse_mem(mem: int | str) -> int:
    """Bytes from an int or a string such as ``"1536MiB"`` / ``"1TiB"``."""
    if isinstance(mem, bool):
        raise ConfigError("mem must be bytes or a size string, not a bool")
    if isinstance(mem, (int, np.integer)):
        if mem <= 0:
            raise ConfigError(f"mem must be positive, got {mem}")
        return int(mem)
    if isinstance(mem, str):
        return _kmm.parse_mem(mem)
    raise ConfigError(f"mem must be bytes or a size string like '1536MiB', not {type(mem).__name__}")


@dataclass(frozen=True)
class ZoneStats:
    node: int
    zone: str
    start_pfn: int
    spanned: int
    present: int
    managed: int
    free: int
    pcp: int
    min: int
    low: int
    high: int
    lowmem_reserve: list[int]
    lru_pages: int


class Machine:
    """A simulated machine: physical memory in nodes and zones, run by an allocator.

    >>> m = Machine(layout="x86_32", mem="1536MiB", allocator="antifrag")
    >>> pfn = m.alloc(0, "GFP_KERNEL")
    >>> m.free(pfn)

    Parameters mirror the kernel's: ``layout`` ("x86_32": DMA/Normal/HighMem,
    "x86_64": DMA/DMA32/Normal), ``mem`` (bytes or "1536MiB"), ``nodes`` (or
    ``node_sizes`` in bytes) and ``distance`` (default 10 local / 20 remote),
    ``allocator`` ("vanilla", "antifrag" = Mel Gorman 2005 v7, "mobility" =
    grouping by mobility, 2.6.24+). Tunables: ``pcp`` (per-cpu order-0 lists,
    with ``pcp_batch``/``pcp_high``), ``pageblock_order`` (mobility),
    ``fallback_reserve`` (antifrag v8, a fraction of each zone), ``reclaim``,
    ``active_freeing``, ``max_objects`` (trace object ids), ``page_owner``,
    ``kswapd_pages_per_ms`` (background reclaim speed in simulated time).
    """

    def __init__(
        self,
        layout: str = "x86_32",
        mem: int | str = "1536MiB",
        nodes: int = 1,
        allocator: str = "vanilla",
        seed: int = 0,
        *,
        node_sizes: Sequence[int | str] | None = None,
        distance: Sequence[Sequence[int]] | None = None,
        kernel_image: int | str = "4MiB",
        pcp: bool = True,
        pcp_batch: int = 0,
        pcp_high: int = 0,
        pageblock_order: int | None = None,
        fallback_reserve: float = 0.0,
        reclaim: bool = True,
        active_freeing: bool = False,
        max_objects: int = 1 << 26,
        page_owner: bool = False,
        page_owner_free_stacks: bool = False,
        kswapd_pages_per_ms: int = 32,
    ) -> None:
        if layout not in LAYOUTS:
            raise ConfigError(f"unknown layout {layout!r} (expected one of {', '.join(LAYOUTS)})")
        if allocator not in ALLOCATORS:
            raise ConfigError(
                f"unknown allocator {allocator!r} (expected one of {', '.join(ALLOCATORS)})"
            )
        for name, v, hi in (
            ("nodes", nodes, 64),
            ("pcp_batch", pcp_batch, 4096),
            ("pcp_high", pcp_high, 65536),
            ("max_objects", max_objects, 2**32 - 2),
            ("kswapd_pages_per_ms", kswapd_pages_per_ms, 2**20),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= hi:
                raise ConfigError(f"{name} must be an int in 0..{hi}, got {v!r}")
        if not 0.0 <= float(fallback_reserve) <= 1.0:
            raise ConfigError(f"fallback_reserve must be a fraction in 0..1 (at most 100%), got {fallback_reserve}")
        sizes = None if node_sizes is None else [parse_mem(s) for s in node_sizes]
        if sizes is not None and nodes == 1 and len(sizes) > 1:
            nodes = len(sizes)
        self._seed = int(seed)
        self._m = _kmm.Machine(
            layout,
            parse_mem(mem),
            nodes=int(nodes),
            node_sizes=sizes,
            distance=None if distance is None else [list(map(int, r)) for r in distance],
            allocator=allocator,
            seed=self._seed,
            kernel_image_bytes=parse_mem(kernel_image),
            pcp=bool(pcp),
            pcp_batch=int(pcp_batch),
            pcp_high=int(pcp_high),
            pageblock_order=pageblock_order,
            fallback_reserve=float(fallback_reserve),
            reclaim=bool(reclaim),
            active_freeing=bool(active_freeing),
            max_objects=int(max_objects),
            page_owner=bool(page_owner),
            page_owner_free_stacks=bool(page_owner_free_stacks),
            kswapd_pages_per_ms=int(kswapd_pages_per_ms),
        )

    # -- allocation ---------------------------------------------------------

    def alloc(
        self,
        order: int,
        gfp: int | str = _gfp.GFP_KERNEL,
        *,
        node: int | None = None,
        stack: int = 0,
        pid: int = 0,
        tgid: int | None = None,
    ) -> int | None:
        """Allocate 2**order pages; the head pfn, or None when the allocator fails.

        ``stack`` (a handle from ``m.page_owner.intern``), ``pid`` and ``tgid``
        (default: pid) are recorded by page_owner when the machine has it.
        """
        return self._m.alloc(
            _order(order),
            _gfp.parse(gfp),
            _node(node, self.nr_nodes),
            _u32("stack", stack),
            _u32("pid", pid),
            _u32("tgid", pid if tgid is None else tgid),
        )

    def free(self, pfn: int, *, stack: int = 0) -> None:
        """Free the block whose head is ``pfn`` (allocated with :meth:`alloc`).

        ``stack``: the freeing call chain, recorded with ``page_owner_free_stacks``.
        """
        if isinstance(pfn, bool) or not isinstance(pfn, (int, np.integer)):
            from .errors import PfnError

            raise PfnError(f"pfn must be an int, not {type(pfn).__name__}")
        self._m.free(int(pfn), _u32("stack", stack))

    def replay(self, trace: np.ndarray, *, outcomes: bool = True) -> tuple[np.ndarray | None, dict[str, int]]:
        """Run a whole trace in the engine with the GIL released.

        Returns ``(outcomes, counters)``: per operation the pfn allocated, freed or
        touched (-1 when none: a failed allocation, a no-op free, a tick), and the
        counter increments of this replay (alloc, alloc_fail, free, free_noop,
        refaults, pgscan, pgsteal, allocstall...). The whole trace is validated
        first; a bad trace raises :class:`kmm.TraceError` and changes nothing.
        """
        t = as_trace(trace)
        out, counters = self._m.replay(t.view(np.uint8), outcomes)
        return out, counters

    def drain_pcp(self) -> int:
        """Return every per-cpu page to the buddy lists (drain_all_pages); returns pages moved."""
        return self._m.drain_pcp()

    def advance(self, seconds: float) -> None:
        """Advance simulated time; kswapd reclaims meanwhile."""
        if not 0 <= seconds <= 3600:
            raise ConfigError(f"cannot advance time by {seconds} s (0..3600)")
        self._m.advance(round(seconds * 1e9))

    def check(self) -> None:
        """Verify every allocator invariant; raises :class:`kmm.InvariantError`."""
        self._m.check()

    # -- views ----------------------------------------------------------------

    def buddyinfo(self) -> str:
        """``/proc/buddyinfo``, byte for byte (pages on per-cpu lists are not counted, as in the kernel)."""
        return self._m.buddyinfo()

    def pagetypeinfo(self) -> str:
        """``/proc/pagetypeinfo`` with the allocator's type names (per-cpu pages not counted)."""
        return self._m.pagetypeinfo()

    def free_area(self, by_type: bool = False) -> np.ndarray:
        """nr_free as (nodes, 3 zone types, MAX_ORDER); with ``by_type``, (nodes, 3, types, MAX_ORDER).

        Zone axis follows :attr:`zone_names`; absent zones are zero; the type
        axis follows :attr:`type_names`. Pages on per-cpu lists are not counted
        (call :meth:`drain_pcp` first to count them).
        """
        return self._m.free_area_by_type() if by_type else self._m.free_area()

    def page_map(self) -> np.ndarray:
        """One uint8 per pfn: PM_FREE, PM_PCP, PM_RESERVED, or 3 + the owner's type."""
        return self._m.page_map()

    def zone_stats(self) -> list[ZoneStats]:
        return [ZoneStats(**d) for d in self._m.zone_stats()]

    def counters(self) -> dict[str, int]:
        return self._m.counters()

    def highorder_ceiling(self, order: int, gfp: int | str = _gfp.GFP_HIGHUSER) -> int:
        """Aligned blocks of ``order`` holding no reserved or non-reclaimable page (held blocks count)."""
        return self._m.highorder_ceiling(_order(order), _gfp.parse(gfp))

    def highorder_limit(self, order: int, gfp: int | str = _gfp.GFP_HIGHUSER) -> int:
        """Perfect-packing limit: per zone, blocks - ceil(non-reclaimable pages / block size)."""
        return self._m.highorder_limit(_order(order), _gfp.parse(gfp))

    def allocated_blocks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(head pfns, orders, types) of every allocated block, in pfn order."""
        return self._m.allocated_blocks()

    def object_block(self, obj: int) -> tuple[int, int] | None:
        """(pfn, order) the trace object holds now, or None."""
        return self._m.object_block(int(obj))

    @property
    def page_owner(self) -> Any:
        """The page_owner view (:class:`kmm.page_owner.PageOwnerView`); raises
        :class:`kmm.PageOwnerError` unless the machine was built with ``page_owner=True``."""
        from .page_owner import PageOwnerView

        return PageOwnerView(self)

    @property
    def zone_names(self) -> list[str]:
        return self._m.zone_names()

    @property
    def type_names(self) -> list[str]:
        return self._m.type_names()

    @property
    def nr_pages(self) -> int:
        return self._m.nr_pages

    @property
    def nr_nodes(self) -> int:
        return self._m.nr_nodes

    @property
    def layout(self) -> str:
        return self._m.layout

    @property
    def allocator(self) -> str:
        return self._m.allocator

    @property
    def pageblock_order(self) -> int:
        return self._m.pageblock_order

    @property
    def now(self) -> float:
        """Simulated time in seconds."""
        return self._m.now_ns / 1e9

    @property
    def seed(self) -> int:
        return self._seed

    def __repr__(self) -> str:
        return (
            f"Machine(layout={self.layout!r}, mem={self.nr_pages * PAGE_SIZE}, "
            f"nodes={self.nr_nodes}, allocator={self.allocator!r})"
        )


def _order(order: Any) -> int:
    from .errors import OrderError

    if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
        raise OrderError(f"order must be an int, not {type(order).__name__}")
    if not 0 <= order < MAX_ORDER:
        raise OrderError(f"order {order} is out of range 0..{MAX_ORDER - 1}")
    return int(order)


def _u32(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < 2**32:
        raise ConfigError(f"{name} must be an int in 0..2**32-1, got {v!r}")
    return int(v)


def _node(node: Any, nr_nodes: int) -> int | None:
    if node is None:
        return None
    if isinstance(node, bool) or not isinstance(node, (int, np.integer)) or not 0 <= node < nr_nodes:
        raise ConfigError(f"node {node!r} does not exist (machine has {nr_nodes} nodes)")
    return int(node)
