"""The simulated machine: ``kmm.Machine``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _kmm
from . import gfp as _gfp
from ._args import U32_MAX, U64_MAX, float_arg, int_arg
from .errors import ConfigError, OrderError, PfnError, TraceError, busy_guard
from .trace import OP_ALLOC, OP_FREE, OP_TICK, OP_TOUCH, TRACE_DTYPE, as_trace, empty_trace  # noqa: F401 (re-exported)

MAX_ORDER: int = _kmm.MAX_ORDER
PAGE_SIZE: int = _kmm.PAGE_SIZE

#: ``page_map()`` codes.
PM_FREE, PM_PCP, PM_RESERVED = 0, 1, 2
PM_KERNNORCLM, PM_KERNRCLM, PM_USERRCLM = 3, 4, 5
PAGE_MAP_NAMES = ["free", "pcp", "reserved", "KernNoRclm", "KernRclm", "UserRclm"]

#: The engine's allocator policies and address layouts, by name.
ALLOCATORS: tuple[str, ...] = tuple(_kmm.ALLOCATORS)
LAYOUTS: tuple[str, ...] = tuple(_kmm.LAYOUTS)


def parse_mem(mem: int | str) -> int:
    """Bytes from an int or a string such as ``"1536MiB"`` / ``"1TiB"``."""
    if isinstance(mem, str):
        return _kmm.parse_mem(mem)
    if isinstance(mem, bool) or not isinstance(mem, (int, np.integer)):
        raise ConfigError(f"mem must be bytes or a size string like '1536MiB', not {type(mem).__name__}")
    return int_arg("mem", mem, 0, U64_MAX)


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
    #: pages on the zone's active and inactive LRU lists (2.6.11's two lists)
    nr_active: int
    nr_inactive: int
    #: inactive-list pages reclaim scanned since boot
    pgscan: int
    #: mapped (anonymous: owned by a task) pages, and 2.6.11's prev_priority
    nr_mapped: int
    prev_priority: int


def _flag(name: str, value: object) -> bool:
    """A boolean argument: True/False (or numpy's), not a string such as "False"."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ConfigError(f"{name} must be True or False, got {type(value).__name__}")


@busy_guard
class Machine:
    """A simulated machine: physical memory in nodes and zones, run by an allocator.

    >>> m = Machine(layout="x86_32", mem="1536MiB", allocator="antifrag")
    >>> pfn = m.alloc(0, "GFP_KERNEL")
    >>> m.free(pfn)

    Parameters mirror the kernel's: ``layout`` ("x86_32": DMA/Normal/HighMem,
    "x86_64": DMA/DMA32/Normal), ``mem`` (bytes or "1536MiB"), ``nodes`` (default
    1, or one per ``node_sizes`` entry, in bytes or size strings) and ``distance``
    (default 10 local / 20 remote), ``allocator`` ("vanilla", "antifrag" = Mel
    Gorman 2005 v7, "mobility" = grouping by mobility, 2.6.24+). Tunables:
    ``pcp`` (per-cpu order-0 lists, with ``pcp_batch``/``pcp_high``; ``nr_cpus``
    CPUs (1..16), each with its own lists, a trace record running on the CPU
    of its pid),
    ``pageblock_order`` (mobility), ``fallback_reserve`` (antifrag v8, a fraction
    of each zone), ``min_free_kbytes`` (0: the boot-time rule), ``reclaim``, ``kswapd_pages_per_ms`` (background reclaim speed
    in simulated time), ``swap`` (swap space: on, as the 2005 test
    machines had it; off, anonymous pages are never reclaimed) and ``swappiness`` (0..100, 2.6.11's
    ``reclaim_mapped`` rule; ``mapped_rule=False`` leaves the rule out, as
    today's kernel has it), ``active_freeing``, ``oom_kill`` (the OOM killer, on as
    in the kernel; off, the allocation fails and counts ``oom_fail``),
    ``max_objects`` (trace object ids),
    ``page_owner`` and ``page_owner_free_stacks``; ``compaction`` (today's
    direct compaction and kcompactd, vanilla and mobility only) with
    ``extfrag_threshold`` (0..1000), ``compaction_proactiveness`` (0..100),
    ``watermark_boost_factor`` (0..100000) and ``defrag_mode`` (mobility, 6.15;
    needs ``freelist_hygiene``); ``freelist_hygiene`` (mobility, 6.10: a free
    page always on its pageblock's list). ``trace_extfrag`` keeps every
    ``mm_page_alloc_extfrag`` event for :meth:`extfrag_trace`.

    One thread at a time: a machine serves one call at a time. A call made from
    another thread while a long one runs (a replay, a compaction, a page_owner
    dump, all of which release the GIL) is refused with
    :class:`kmm.MachineBusyError` and changes nothing; it is not queued. Give
    each thread its own machine, or hold your own lock around the calls.

    The engine checks every value (:class:`kmm.ConfigError` names the bad one);
    this class only converts them. It takes no seed: the engine makes no random
    choice, the workloads that drive it do.
    """

    def __init__(
        self,
        layout: str = "x86_32",
        mem: int | str = "1536MiB",
        nodes: int | None = None,
        allocator: str = "vanilla",
        *,
        node_sizes: Sequence[int | str] | None = None,
        distance: Sequence[Sequence[int]] | None = None,
        kernel_image: int | str = "4MiB",
        pcp: bool = True,
        pcp_batch: int = 0,
        pcp_high: int = 0,
        nr_cpus: int = 1,
        pageblock_order: int | None = None,
        fallback_reserve: float = 0.0,
        min_free_kbytes: int = 0,
        reclaim: bool = True,
        kswapd_pages_per_ms: int = 32,
        swap: bool = True,
        swappiness: int = 60,
        mapped_rule: bool = True,
        active_freeing: bool = False,
        oom_kill: bool = True,
        max_objects: int = 1 << 26,
        page_owner: bool = False,
        page_owner_free_stacks: bool = False,
        compaction: bool = False,
        extfrag_threshold: int = 500,
        compaction_proactiveness: int = 20,
        watermark_boost_factor: int = 15000,
        defrag_mode: bool = False,
        freelist_hygiene: bool = False,
        trace_extfrag: bool = False,
    ) -> None:
        self._m = _kmm.Machine(
            _str("layout", layout),
            parse_mem(mem),
            nodes=None if nodes is None else int_arg("nodes", nodes, 0, U64_MAX),
            node_sizes=None if node_sizes is None else [parse_mem(s) for s in node_sizes],
            distance=None
            if distance is None
            else [[int_arg("distance", d, 0, U32_MAX) for d in row] for row in distance],
            allocator=_str("allocator", allocator),
            kernel_image_bytes=parse_mem(kernel_image),
            pcp=_flag("pcp", pcp),
            pcp_batch=int_arg("pcp_batch", pcp_batch, 0, U32_MAX),
            pcp_high=int_arg("pcp_high", pcp_high, 0, U32_MAX),
            nr_cpus=int_arg("nr_cpus", nr_cpus, 0, U32_MAX),
            pageblock_order=None
            if pageblock_order is None
            else int_arg("pageblock_order", pageblock_order, 0, U32_MAX),
            fallback_reserve=float(fallback_reserve),
            min_free_kbytes=int_arg("min_free_kbytes", min_free_kbytes, 0, U64_MAX),
            reclaim=_flag("reclaim", reclaim),
            kswapd_pages_per_ms=int_arg("kswapd_pages_per_ms", kswapd_pages_per_ms, 0, U64_MAX),
            swap=_flag("swap", swap),
            swappiness=int_arg("swappiness", swappiness, 0, U32_MAX),
            mapped_rule=_flag("mapped_rule", mapped_rule),
            active_freeing=_flag("active_freeing", active_freeing),
            oom_kill=_flag("oom_kill", oom_kill),
            max_objects=int_arg("max_objects", max_objects, 0, U32_MAX),
            page_owner=_flag("page_owner", page_owner),
            page_owner_free_stacks=_flag("page_owner_free_stacks", page_owner_free_stacks),
            compaction=_flag("compaction", compaction),
            extfrag_threshold=int_arg("extfrag_threshold", extfrag_threshold, 0, U32_MAX),
            compaction_proactiveness=int_arg(
                "compaction_proactiveness", compaction_proactiveness, 0, U32_MAX
            ),
            watermark_boost_factor=int_arg("watermark_boost_factor", watermark_boost_factor, 0, U32_MAX),
            defrag_mode=_flag("defrag_mode", defrag_mode),
            freelist_hygiene=_flag("freelist_hygiene", freelist_hygiene),
            trace_extfrag=_flag("trace_extfrag", trace_extfrag),
        )

    #: Set by :meth:`from_snapshot`: the snapshot and its pages per class per zone.
    snapshot: Any = None
    snapshot_classes: dict[tuple[int, str], dict[str, int]] | None = None

    @classmethod
    def from_snapshot(
        cls,
        path: Any,
        allocator: str = "mobility",
        *,
        compaction: bool | None = None,
        active_freeing: bool | None = None,
        defrag_mode: bool | None = None,
        freelist_hygiene: bool | None = None,
        kpageflags: np.ndarray | None = None,
    ) -> Machine:
        """A machine whose zones, free blocks and allocated pages are a real
        machine's (a :mod:`kmm.snapshot` file or directory; see ``docs/real.md``).

        ``snapshot`` holds the loaded snapshot, ``snapshot_classes`` the pages
        per class per zone (free, reserved, movable, slab, unmovable).
        ``compaction``, ``active_freeing``, ``defrag_mode``, ``freelist_hygiene``: as for
        :class:`Machine` (None: kmm's default). ``kpageflags`` replaces the
        snapshot's page flags (a recorded replay's end state).
        """
        from . import snapshot as _snapshot

        snap = _snapshot.load(path)
        counts = _snapshot.parse_block_counts(snap.texts["pagetypeinfo"])
        real = sorted(snap.zones(), key=lambda z: z.start_pfn)
        zones = []
        for z in real:
            c = counts.get((z.node, z.name))
            bc = None if c is None else [c.get(t, 0) for t in ("Unmovable", "Movable", "Reclaimable", "HighAtomic")]
            zones.append((z.node, z.name, z.start_pfn, z.spanned, z.present, z.managed, z.watermarks, bc))
        flags = np.ascontiguousarray(snap.kpageflags if kpageflags is None else kpageflags, dtype=np.uint64)
        inner, classes = _kmm.machine_from_snapshot(
            _str("allocator", allocator), zones, flags, compaction, active_freeing, defrag_mode,
            freelist_hygiene,
        )
        m = cls.__new__(cls)
        m._m = inner
        m.snapshot = snap
        names = ("free", "reserved", "zero", "movable", "slab", "unmovable")
        m.snapshot_classes = {(z.node, z.name): dict(zip(names, c)) for z, c in zip(real, classes)}
        return m

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
            int_arg("order", order, 0, U32_MAX, error=OrderError),
            _gfp.parse(gfp),
            None if node is None else int_arg("node", node, 0, U64_MAX),
            int_arg("stack", stack, 0, U32_MAX),
            int_arg("pid", pid, 0, U32_MAX),
            int_arg("tgid", pid if tgid is None else tgid, 0, U32_MAX),
        )

    def free(self, pfn: int, *, stack: int = 0) -> None:
        """Free the block whose head is ``pfn`` (allocated with :meth:`alloc`).

        ``stack``: the freeing call chain, recorded with ``page_owner_free_stacks``.
        """
        self._m.free(int_arg("pfn", pfn, 0, U64_MAX, error=PfnError), int_arg("stack", stack, 0, U32_MAX))

    def replay(self, trace: np.ndarray, *, outcomes: bool = True) -> tuple[np.ndarray | None, dict[str, int]]:
        """Run a whole trace in the engine with the GIL released.

        Returns ``(outcomes, counters)``: per operation the pfn allocated, freed or
        touched (-1 when none: a failed allocation, a no-op free, a tick), and the
        counter increments of this replay (alloc, alloc_fail, free, free_noop,
        refaults, pgscan, pgsteal, allocstall...). The whole trace is validated
        first; a bad trace raises :class:`kmm.TraceError` and changes nothing.

        Ctrl-C (SIGINT) stops a replay within a fraction of a second and raises
        ``KeyboardInterrupt``: while the trace is still being validated nothing
        has changed; once it runs, the first ``counters["ops"]`` records have
        run, exactly as a trace of those records alone would have, and the rest
        have not. Their ``(outcomes, counters)`` are the exception's ``replay``
        attribute, so what the run computed is kept.
        """
        t = as_trace(trace)
        out, counters = self._m.replay(t.view(np.uint8), outcomes)
        return out, counters

    def drain_pcp(self) -> int:
        """Return every per-cpu page to the buddy lists (drain_all_pages); returns pages moved."""
        return self._m.drain_pcp()

    def compact(self, order: int = -1) -> int:
        """Compact memory; returns the pages migrated.

        ``order`` -1 compacts every zone whole, as writing
        ``/proc/sys/vm/compact_memory``; 0..10 compacts each zone until it has
        a free block of that order. Movable trace objects move (same order and
        flags; their page_owner record follows); pinned blocks stay.
        """
        return self._m.compact(int_arg("order", order, -1, 2**31 - 1, error=OrderError))

    def advance(self, seconds: float) -> None:
        """Advance simulated time (at most an hour at a time); kswapd reclaims meanwhile."""
        ns = float_arg("seconds", seconds, 0.0, 2**64 / 1e9) * 1e9
        if not 0 <= ns < 2**64:
            raise ConfigError(f"cannot advance time by {seconds} s")
        self._m.advance(round(ns))

    def check(self) -> None:
        """Verify every allocator invariant; raises :class:`kmm.InvariantError`."""
        self._m.check()

    # -- views ----------------------------------------------------------------

    def slabinfo(self) -> list[dict[str, int | str]]:
        """Per slab cache: ``name``, ``active_objs``, ``num_objs``, ``objsize``,
        ``objperslab``, ``num_slabs`` (the columns of ``/proc/slabinfo``)."""
        keys = ("name", "active_objs", "num_objs", "objsize", "objperslab", "num_slabs")
        return [dict(zip(keys, row)) for row in self._m.slabinfo()]

    def extfrag_trace(self) -> str:
        """Every ``mm_page_alloc_extfrag`` event so far as the kernel's ftrace
        ``trace`` text (raises :class:`kmm.ConfigError` unless the machine was
        built with ``trace_extfrag=True``; the count is always in
        ``counters()["mm_page_alloc_extfrag"]``)."""
        text = self._m.extfrag_trace()
        if text is None:
            raise ConfigError("extfrag_trace() needs Machine(..., trace_extfrag=True)")
        return text

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
        return self._m.highorder_ceiling(int_arg("order", order, 0, U32_MAX, error=OrderError), _gfp.parse(gfp))

    def highorder_limit(self, order: int, gfp: int | str = _gfp.GFP_HIGHUSER) -> int:
        """Perfect-packing limit: per zone, blocks - ceil(non-reclaimable pages / block size)."""
        return self._m.highorder_limit(int_arg("order", order, 0, U32_MAX, error=OrderError), _gfp.parse(gfp))

    def allocated_blocks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(head pfns, orders, types) of every allocated block, in pfn order."""
        return self._m.allocated_blocks()

    def object_block(self, obj: int) -> tuple[int, int] | None:
        """(pfn, order) the trace object holds now, or None."""
        return self._m.object_block(int_arg("obj", obj, 0, U32_MAX, error=TraceError))

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

    def __repr__(self) -> str:
        return (
            f"Machine(layout={self.layout!r}, mem={self.nr_pages * PAGE_SIZE}, "
            f"nodes={self.nr_nodes}, allocator={self.allocator!r})"
        )


def _str(name: str, v: Any) -> str:
    """``v`` as a name for the engine (which checks it is one it knows)."""
    if not isinstance(v, str):
        raise ConfigError(f"{name} must be a str, not {type(v).__name__}")
    return v

