"""GFP flags with the kernel's names (2.6.11, plus Mel Gorman's 2005 flags).

Composite masks keep their kernel names (``GFP_KERNEL``, ``GFP_HIGHUSER``...).
The ``__GFP_*`` modifiers are exported twice: under their kernel names
(``kmm.gfp.__GFP_HIGH``, usable with ``getattr`` or ``from kmm.gfp import``),
and, because Python mangles ``__names`` inside class bodies, under a plain name
without the leading underscores (``kmm.gfp.HIGH``, ``kmm.gfp.USERRCLM``...).
Masks are also accepted as strings, e.g. ``"GFP_KERNEL|__GFP_HIGH"``.
"""

from __future__ import annotations

import operator

from . import _kmm
from .errors import GfpError

#: name -> value for every flag kmm knows, as the Rust core defines them.
GFP_FLAGS: dict[str, int] = dict(_kmm.GFP_FLAGS)

# The same values spelled out (include/linux/gfp.h of 2.6.11 plus Mel Gorman's
# 2005 flags and their 2.6.24 names), so that editors, stubs and type checkers
# see them; tests/test_gfp.py checks them against GFP_FLAGS.

# zone modifiers
__GFP_DMA: int = 0x01
__GFP_HIGHMEM: int = 0x02
__GFP_DMA32: int = 0x04

# action modifiers
__GFP_WAIT: int = 0x10  # can wait and reschedule
__GFP_HIGH: int = 0x20  # may use emergency pools
__GFP_IO: int = 0x40  # can start physical IO
__GFP_FS: int = 0x80  # can call down to low-level FS
__GFP_COLD: int = 0x100  # cache-cold page wanted
__GFP_NOWARN: int = 0x200  # suppress page allocation failure warning
__GFP_REPEAT: int = 0x400  # retry the allocation, might fail
__GFP_NOFAIL: int = 0x800  # retry for ever, cannot fail
__GFP_NORETRY: int = 0x1000  # do not retry, might fail
__GFP_NO_GROW: int = 0x2000  # slab internal usage
__GFP_COMP: int = 0x4000  # add compound page metadata
__GFP_ZERO: int = 0x8000  # return zeroed page on success

# reclaimability (Mel Gorman's 2005 anti-fragmentation flags; 2.6.24 names)
__GFP_KERNRCLM: int = 0x10000  # kernel allocation that can be reclaimed
__GFP_USERRCLM: int = 0x20000  # user allocation that can be reclaimed
__GFP_RECLAIMABLE: int = __GFP_KERNRCLM
__GFP_MOVABLE: int = __GFP_USERRCLM
__GFP_NO_KSWAPD: int = 0x400000  # do not wake kswapd (2.6.38, for THP)

# the same modifiers without their leading underscores, for class bodies
DMA: int = __GFP_DMA
HIGHMEM: int = __GFP_HIGHMEM
DMA32: int = __GFP_DMA32
WAIT: int = __GFP_WAIT
HIGH: int = __GFP_HIGH
IO: int = __GFP_IO
FS: int = __GFP_FS
COLD: int = __GFP_COLD
NOWARN: int = __GFP_NOWARN
REPEAT: int = __GFP_REPEAT
NOFAIL: int = __GFP_NOFAIL
NORETRY: int = __GFP_NORETRY
NO_GROW: int = __GFP_NO_GROW
COMP: int = __GFP_COMP
ZERO: int = __GFP_ZERO
KERNRCLM: int = __GFP_KERNRCLM
USERRCLM: int = __GFP_USERRCLM
RECLAIMABLE: int = __GFP_RECLAIMABLE
MOVABLE: int = __GFP_MOVABLE
NO_KSWAPD: int = __GFP_NO_KSWAPD

# composite masks
GFP_NOWAIT: int = 0
GFP_ATOMIC: int = __GFP_HIGH
GFP_NOIO: int = __GFP_WAIT
GFP_NOFS: int = __GFP_WAIT | __GFP_IO
GFP_KERNEL: int = __GFP_WAIT | __GFP_IO | __GFP_FS
GFP_USER: int = __GFP_WAIT | __GFP_IO | __GFP_FS | __GFP_USERRCLM
GFP_HIGHUSER: int = __GFP_WAIT | __GFP_IO | __GFP_FS | __GFP_USERRCLM | __GFP_HIGHMEM
GFP_DMA: int = __GFP_DMA
GFP_DMA32: int = __GFP_DMA32
# a THP fault (today's default defrag=madvise) and khugepaged's collapse
GFP_TRANSHUGE_LIGHT: int = (GFP_HIGHUSER | __GFP_COMP | __GFP_NOWARN | __GFP_NO_KSWAPD) & ~__GFP_WAIT
GFP_TRANSHUGE: int = GFP_TRANSHUGE_LIGHT | __GFP_WAIT

def parse(gfp: int | str) -> int:
    """Turn a mask (int) or a string like ``"GFP_KERNEL|__GFP_HIGH"`` into a checked int.

    Raises :class:`kmm.GfpError` for unknown bits or names and for combinations
    the kernel forbids (two zone modifiers; both reclaimability bits).
    """
    if isinstance(gfp, str):
        return _kmm.parse_gfp(gfp)
    if not isinstance(gfp, (bool, int)) and hasattr(gfp, "__index__"):
        gfp = operator.index(gfp)  # numpy integers, as `order` takes them
    if isinstance(gfp, bool) or not isinstance(gfp, int):
        raise GfpError(f"GFP mask must be an int or a string, not {type(gfp).__name__}")
    if gfp < 0 or gfp > 0xFFFFFFFF:
        raise GfpError(f"GFP mask {gfp:#x} is out of range")
    _kmm.validate_gfp(gfp)
    return gfp


def names(gfp: int) -> str:
    """The kernel's ``%pGg`` rendering of a mask, e.g. ``GFP_HIGHUSER|__GFP_ZERO``."""
    return _kmm.gfp_names(gfp)
