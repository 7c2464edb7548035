"""kmm: Linux physical memory management and NIC transmit, simulated fast and faithfully.

The three systems of a 2005 LWN kernel page: the buddy allocator and Mel
Gorman's anti-fragmentation allocator (and today's grouping by mobility),
page_owner, and the NETIF_F_LLTX transmit race.
"""

from __future__ import annotations

from . import gfp, nic, procfs, workloads
from .errors import (
    BenchmarkError,
    ConfigError,
    DoubleFreeError,
    GfpError,
    InvariantError,
    KmmError,
    NicError,
    NicWorkerError,
    OrderError,
    PageOwnerError,
    ParseError,
    PfnError,
    TraceError,
)
from .gfp import (
    GFP_ATOMIC,
    GFP_DMA,
    GFP_DMA32,
    GFP_FLAGS,
    GFP_HIGHUSER,
    GFP_KERNEL,
    GFP_NOFS,
    GFP_NOIO,
    GFP_USER,
)
from .machine import (
    MAX_ORDER,
    OP_ALLOC,
    OP_FREE,
    OP_TICK,
    OP_TOUCH,
    PAGE_MAP_NAMES,
    PAGE_SIZE,
    PM_FREE,
    PM_KERNNORCLM,
    PM_KERNRCLM,
    PM_PCP,
    PM_RESERVED,
    PM_USERRCLM,
    TRACE_DTYPE,
    Machine,
    ZoneStats,
    empty_trace,
    parse_mem,
)

# the kernel's modifier names, usable as kmm.__GFP_HIGH outside class bodies
globals().update({k: v for k, v in GFP_FLAGS.items() if k.startswith("__GFP_")})

__version__ = "0.1.0"

__all__ = [
    "Machine",
    "ZoneStats",
    "TRACE_DTYPE",
    "empty_trace",
    "parse_mem",
    "MAX_ORDER",
    "PAGE_SIZE",
    "OP_ALLOC",
    "OP_FREE",
    "OP_TOUCH",
    "OP_TICK",
    "PM_FREE",
    "PM_PCP",
    "PM_RESERVED",
    "PM_KERNNORCLM",
    "PM_KERNRCLM",
    "PM_USERRCLM",
    "PAGE_MAP_NAMES",
    "gfp",
    "nic",
    "procfs",
    "workloads",
    "GFP_FLAGS",
    "GFP_KERNEL",
    "GFP_USER",
    "GFP_HIGHUSER",
    "GFP_ATOMIC",
    "GFP_DMA",
    "GFP_DMA32",
    "GFP_NOFS",
    "GFP_NOIO",
    "KmmError",
    "ConfigError",
    "GfpError",
    "OrderError",
    "PfnError",
    "DoubleFreeError",
    "TraceError",
    "ParseError",
    "InvariantError",
    "PageOwnerError",
    "NicError",
    "NicWorkerError",
    "BenchmarkError",
]
