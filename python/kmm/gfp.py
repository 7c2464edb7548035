"""GFP flags with the kernel's names (2.6.11, plus Mel Gorman's 2005 flags).

Composite masks keep their kernel names (``GFP_KERNEL``, ``GFP_HIGHUSER``...).
The ``__GFP_*`` modifiers are exported twice: under their kernel names
(``kmm.gfp.__GFP_HIGH``, usable with ``getattr`` or ``from kmm.gfp import``),
and, because Python mangles ``__names`` inside class bodies, under a plain name
without the leading underscores (``kmm.gfp.HIGH``, ``kmm.gfp.USERRCLM``...).
Masks are also accepted as strings, e.g. ``"GFP_KERNEL|__GFP_HIGH"``.
"""

from __future__ import annotations

from . import _kmm

#: name -> value for every flag kmm knows.
GFP_FLAGS: dict[str, int] = dict(_kmm.GFP_FLAGS)

_g = globals()
for _name, _value in GFP_FLAGS.items():
    _g[_name] = _value
    if _name.startswith("__GFP_"):
        _g[_name[len("__GFP_"):]] = _value
del _g, _name, _value

GFP_KERNEL: int = GFP_FLAGS["GFP_KERNEL"]
GFP_USER: int = GFP_FLAGS["GFP_USER"]
GFP_HIGHUSER: int = GFP_FLAGS["GFP_HIGHUSER"]
GFP_ATOMIC: int = GFP_FLAGS["GFP_ATOMIC"]
GFP_DMA: int = GFP_FLAGS["GFP_DMA"]
GFP_DMA32: int = GFP_FLAGS["GFP_DMA32"]
GFP_NOFS: int = GFP_FLAGS["GFP_NOFS"]
GFP_NOIO: int = GFP_FLAGS["GFP_NOIO"]


def parse(gfp: int | str) -> int:
    """Turn a mask (int) or a string like ``"GFP_KERNEL|__GFP_HIGH"`` into a checked int.

    Raises :class:`kmm.GfpError` for unknown bits or names and for combinations
    the kernel forbids (two zone modifiers; both reclaimability bits).
    """
    if isinstance(gfp, str):
        return _kmm.parse_gfp(gfp)
    if isinstance(gfp, bool) or not isinstance(gfp, int):
        from .errors import GfpError

        raise GfpError(f"GFP mask must be an int or a string, not {type(gfp).__name__}")
    if gfp < 0 or gfp > 0xFFFFFFFF:
        from .errors import GfpError

        raise GfpError(f"GFP mask {gfp:#x} is out of range")
    _kmm.validate_gfp(gfp)
    return gfp


def names(gfp: int) -> str:
    """The kernel's ``%pGg`` rendering of a mask, e.g. ``GFP_HIGHUSER|__GFP_ZERO``."""
    return _kmm.gfp_names(gfp)
