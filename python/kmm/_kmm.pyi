"""Type stubs for the Rust extension ``kmm._kmm`` (the thin PyO3 binding)."""

from collections.abc import Callable
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "parse_gfp",
    "validate_gfp",
    "gfp_names",
    "parse_mem",
    "GFP_FLAGS",
    "MAX_ORDER",
    "PAGE_SIZE",
    "OP_ALLOC",
    "OP_FREE",
    "OP_TOUCH",
    "OP_TICK",
    "TRACE_RECORD_SIZE",
    "LAYOUTS",
    "ALLOCATORS",
    "Machine",
    "nic_run",
    "NIC_MODES",
    "NIC_DRIVERS",
    "NIC_FAULTS",
    "NETDEV_TX_OK",
    "NETDEV_TX_BUSY",
    "NETDEV_TX_LOCKED",
    "BUG_TX_RING_FULL",
    "PageOwner",
    "OwnerTextAggregator",
    "OwnerTable",
    "OP_SLAB_ALLOC",
    "OP_SLAB_FREE",
    "OP_SLAB_PIN",
    "TF_TASK",
    "TF_UNEVICTABLE",
    "SLAB_CACHES",
    "KernelTraceImporter",
    "KERNEL_EVENTS",
    "machine_from_snapshot",
    "REPLAY_DIVERGENCES",
    "REPLAY_STATES",
    "RealReplay",
    "TraceEmitter",
    "anon_times",
    "pcg64_seeded",
    "jobserver",
    "_pcg_random",
    "_pcg_poisson",
    "_pcg_advance",
]

GFP_FLAGS: dict[str, int]
MAX_ORDER: int
PAGE_SIZE: int
OP_ALLOC: int
OP_FREE: int
OP_TOUCH: int
OP_TICK: int
TRACE_RECORD_SIZE: int
OP_SLAB_ALLOC: int
OP_SLAB_FREE: int
OP_SLAB_PIN: int
TF_TASK: int
TF_UNEVICTABLE: int
#: (name, object size, reclaimable, objects per slab page), by cache index
SLAB_CACHES: list[tuple[str, int, bool, int]]

def parse_gfp(text: str) -> int: ...
def validate_gfp(gfp: int) -> None: ...
def gfp_names(gfp: int) -> str: ...
def parse_mem(text: str) -> int: ...

LAYOUTS: list[str]
ALLOCATORS: list[str]

@final
class Machine:
    """An argument left as None keeps the engine's default (``MachineConfig::new``)."""

    def __new__(
        cls,
        layout: str,
        mem_bytes: int,
        *,
        nodes: int | None = None,
        node_sizes: list[int] | None = None,
        distance: list[list[int]] | None = None,
        allocator: str | None = None,
        kernel_image_bytes: int | None = None,
        pcp: bool | None = None,
        pcp_batch: int | None = None,
        pcp_high: int | None = None,
        nr_cpus: int | None = None,
        pageblock_order: int | None = None,
        fallback_reserve: float | None = None,
        min_free_kbytes: int | None = None,
        reclaim: bool | None = None,
        kswapd_pages_per_ms: int | None = None,
        swap: bool | None = None,
        swappiness: int | None = None,
        mapped_rule: bool | None = None,
        active_freeing: bool | None = None,
        oom_kill: bool | None = None,
        max_objects: int | None = None,
        page_owner: bool | None = None,
        page_owner_free_stacks: bool | None = None,
        compaction: bool | None = None,
        extfrag_threshold: int | None = None,
        compaction_proactiveness: int | None = None,
        watermark_boost_factor: int | None = None,
        defrag_mode: bool | None = None,
        freelist_hygiene: bool | None = None,
        trace_extfrag: bool | None = None,
    ) -> Machine: ...
    def alloc(
        self, order: int, gfp: int, node: int | None = None, stack: int = 0, pid: int = 0, tgid: int = 0
    ) -> int | None: ...
    def free(self, pfn: int, stack: int = 0) -> None: ...
    def check(self) -> None: ...
    def slabinfo(self) -> list[tuple[str, int, int, int, int, int]]: ...
    def extfrag_trace(self) -> str | None: ...
    def buddyinfo(self) -> str: ...
    def pagetypeinfo(self) -> str: ...
    def free_area(self) -> npt.NDArray[np.uint64]: ...
    def free_area_by_type(self) -> npt.NDArray[np.uint64]: ...
    def type_names(self) -> list[str]: ...
    def page_map(self) -> npt.NDArray[np.uint8]: ...
    def zone_stats(self) -> list[dict[str, Any]]: ...
    def zone_names(self) -> list[str]: ...
    def replay(
        self, trace: npt.NDArray[np.uint8], outcomes: bool = True
    ) -> tuple[npt.NDArray[np.int64] | None, dict[str, int]]: ...
    def drain_pcp(self) -> int: ...
    def compact(self, order: int = ...) -> int: ...
    def advance(self, ns: int) -> None: ...
    def highorder_ceiling(self, order: int, gfp: int) -> int: ...
    def highorder_limit(self, order: int, gfp: int) -> int: ...
    def counters(self) -> dict[str, int]: ...
    def allocated_blocks(
        self,
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]: ...
    def object_block(self, obj: int) -> tuple[int, int] | None: ...
    @property
    def nr_pages(self) -> int: ...
    @property
    def nr_nodes(self) -> int: ...
    @property
    def layout(self) -> str: ...
    @property
    def allocator(self) -> str: ...
    @property
    def pageblock_order(self) -> int: ...
    @property
    def now_ns(self) -> int: ...
    @property
    def max_objects(self) -> int: ...
    @property
    def active_freeing(self) -> bool: ...
    @property
    def compaction(self) -> bool: ...
    @property
    def pcp_enabled(self) -> bool: ...

# ---- page_owner (see kmm.page_owner) ---------------------------------------

_Frame = tuple[int, str, int, int, str | None]  # (address, symbol, offset, size, module)

#: A group row: (text, header_len, order, mask, pid, tgid, comm, allocator,
#: nr_frames, count, pages, first_ts).
_GroupRow = tuple[str, int, int, int | None, int | None, int | None, str | None, str, int, int, int, int | None]

@final
class PageOwner:
    def __new__(cls, machine: Machine) -> PageOwner: ...
    def intern(self, frames: list[_Frame]) -> int: ...
    def set_comm(self, pid: int, comm: str) -> None: ...
    def comm(self, pid: int, tgid: int) -> str: ...
    def dump(self, file: Any, format: str) -> int: ...
    def stacks(self) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint64]]: ...
    def show_stacks(self, threshold: int) -> str: ...
    def show_handles(self, threshold: int) -> str: ...
    def show_stacks_handles(self, threshold: int) -> str: ...
    def depot_stats(self) -> dict[str, int]: ...
    def memory(self) -> dict[str, int]: ...
    def aggregate(self) -> dict[str, Any]: ...
    def groups(self, format: str) -> OwnerTable: ...
    def frames(self, handle: int) -> list[_Frame]: ...
    def record(self, pfn: int) -> tuple[int, int, int, int, int, int, int, str | None]: ...

@final
class OwnerTextAggregator:
    def __new__(
        cls,
        lenient: bool = False,
        *,
        cull: list[str] | None = None,
        pids: list[int] | None = None,
        tgids: list[int] | None = None,
        names: list[str] | None = None,
    ) -> OwnerTextAggregator: ...
    def feed(self, data: bytes) -> None: ...
    def feed_fd(self, fd: int, threads: int = 2, progress: Callable[[int], object] | None = None) -> None: ...
    def finish(self) -> None: ...
    def table(self) -> OwnerTable: ...
    def stats(self) -> dict[str, int]: ...
    def errors(self) -> list[str]: ...

# the NIC transmit path (see kmm.nic)
NIC_MODES: list[str]
NIC_DRIVERS: list[str]
NIC_FAULTS: list[str]
NETDEV_TX_OK: int
NETDEV_TX_BUSY: int
NETDEV_TX_LOCKED: int
BUG_TX_RING_FULL: str

def nic_run(
    mode: str,
    driver: str,
    producers: int = 2,
    packets: int = 100_000,
    ring: int = 256,
    max_descs: int = 4,
    stop_thresh: int | None = None,
    wake_thresh: int | None = None,
    race_window_ns: int = 0,
    tx_batch: int = 16,
    tx_rate: int = 0,
    watchdog_ms: int = 20,
    timeout_ms: int = 120_000,
    seed: int = 0,
    fault: str | None = None,
    tx_bulk: int = 8,
    napi_budget: int = 64,
    coalesce_frames: int = 16,
    coalesce_usecs: int = 8,
    bql_hold_ms: int = 1000,
) -> dict[str, Any]: ...

KERNEL_EVENTS: list[str]


@final
class OwnerTable:
    def __len__(self) -> int: ...
    def groups(self, ids: list[int] | None = None) -> list[_GroupRow]: ...
    def order(self, keys: list[tuple[str, bool]], ids: list[int] | None = None) -> list[int]: ...
    def refold(
        self,
        ids: list[int],
        cull: list[str] | None = None,
        pids: list[int] | None = None,
        tgids: list[int] | None = None,
        names: list[str] | None = None,
    ) -> OwnerTable: ...
    def render(self, file: Any, format: str, ids: list[int] | None = None, top: int | None = None) -> None: ...
    def diff(self, old: OwnerTable, file: Any, format: str, top: int | None = None) -> None: ...
    def stats(self) -> dict[str, int]: ...
    def errors(self) -> list[str]: ...

@final
class KernelTraceImporter:
    def __new__(cls) -> KernelTraceImporter: ...
    def feed(self, data: bytes) -> None: ...
    def finish(self) -> None: ...
    def take_records(self) -> bytes: ...
    def live_objects(self) -> int: ...
    def stats(self) -> dict[str, Any]: ...

def machine_from_snapshot(
    allocator: str,
    zones: list[
        tuple[int, str, int, int, int, int, tuple[int, int, int] | None, list[int] | None]
    ],
    kpageflags: npt.NDArray[np.uint64],
    compaction: bool | None = None,
    active_freeing: bool | None = None,
    defrag_mode: bool | None = None,
    freelist_hygiene: bool | None = None,
) -> tuple[Machine, list[list[int]]]: ...

REPLAY_DIVERGENCES: list[str]
REPLAY_STATES: list[str]

@final
class RealReplay:
    def __new__(
        cls,
        start_label: str | None,
        end_label: str | None,
        kpageflags: npt.NDArray[np.uint64] | None,
        zones: list[tuple[int, int]],
        policy: bool,
    ) -> RealReplay: ...
    def feed(self, data: bytes) -> None: ...
    def finish(self) -> None: ...
    def take_records(self) -> bytes: ...
    def stats(self) -> dict[str, Any]: ...
    def states(self) -> npt.NDArray[np.uint8] | None: ...
    def end_kpageflags(self, start: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64] | None: ...

@final
class TraceEmitter:
    def __new__(
        cls, cache: list[int], gfp: list[int], stack: list[int], flags: list[int] | None = None
    ) -> TraceEmitter: ...
    def push(self, g: int, parts: list[npt.NDArray[np.uint8]]) -> None: ...
    def push_touches(
        self,
        g: int,
        u: npt.NDArray[np.float64],
        n: npt.NDArray[np.int64],
        t0: npt.NDArray[np.int64],
        t1: npt.NDArray[np.int64],
        obj: npt.NDArray[np.uint32],
        pid: npt.NDArray[np.uint32],
        kind: int,
        proc_: int,
    ) -> None: ...
    def push_procs(
        self,
        g: int,
        start: npt.NDArray[np.int64],
        end: npt.NDArray[np.int64],
        base: npt.NDArray[np.int64],
        pid: npt.NDArray[np.uint32],
        n_pte: npt.NDArray[np.int64],
        anon: npt.NDArray[np.int64],
        u_pte: npt.NDArray[np.float64],
        slab_kinds: npt.NDArray[np.uint8],
        text: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32], npt.NDArray[np.float64]]],
        t_alloc: npt.NDArray[np.int64],
        t_free: npt.NDArray[np.int64],
        touch_n: npt.NDArray[np.int64],
        touch_state: int,
        touch_inc: int,
        k_task: int,
        k_pt: int,
        k_anon: int,
        k_text: int,
        own: int,
        exits: bool,
    ) -> None: ...
    def set_end(self, end_us: int) -> None: ...
    def reserve_until(self, t_us: int) -> None: ...
    def ready(self, w: int) -> None: ...
    def emit(self, seg_end_us: int) -> None: ...
    def stop(self) -> None: ...
    def drop_caches(self) -> None: ...
    def take(self) -> npt.NDArray[np.uint8]: ...
    def live_process_objects(self) -> int: ...
    def cache_objects(self) -> int: ...
    def held(self) -> tuple[int, int, int]: ...

def anon_times(
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    anon: npt.NDArray[np.int64],
    u_alloc: npt.NDArray[np.float64],
    u_short: npt.NDArray[np.float64],
    short_frac: float,
    exp: npt.NDArray[np.float64],
    touch_interval_us: float,
    state: int,
    inc: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], int, int]: ...
def pcg64_seeded(entropy: list[int]) -> tuple[int, int]: ...
def jobserver(
    cpu_us: npt.NDArray[np.float64], t0: int, jobs: int, share_from: list[float], share_cpus: list[float]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def _pcg_random(state: int, inc: int, n: int) -> tuple[npt.NDArray[np.float64], int]: ...
def _pcg_poisson(state: int, inc: int, lam: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.int64], int]: ...
def _pcg_advance(state: int, inc: int, n: int) -> int: ...
