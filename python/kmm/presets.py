"""Presets of ``kmm highalloc``: the setup of each of Mel Gorman's 2005 posts.

Each preset sets only what its post's setup says (the kernel builds and
copies, make -jN, the warm-up, the attempts under load and at rest, the OOM
killer on or off, ``min_free_kbytes``, the CPUs where the post names them, and the patch's fallback
reserve); every model parameter
stays shared by all presets. ``published`` holds the post's figures (% of the
attempts) for ``docs/fidelity.md`` and the comparison table; they are never
read by the run itself. Sources (linux-mm / LKML, 2005): "Avoiding external
fragmentation with a placement policy" Version 7 (31 Jan), 8 (27 Feb), 10
(May), 12, 14 (Oct), 19 and Mel's reply to Linus in the V19 thread (4 Nov),
and 20 (mm2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import BenchmarkError


@dataclass(frozen=True)
class Preset:
    name: str
    post: str
    #: HighallocConfig fields this post's setup fixes (the rest keep v7's)
    config: dict[str, Any]
    #: published % success: (vanilla, patched) under load and at rest; None
    #: where the post gives no figure
    under_load: tuple[float | None, float | None]
    at_rest: tuple[float | None, float | None] = (None, None)
    #: what the post ran that kmm does not model, said in the report
    notes: tuple[str, ...] = field(default_factory=tuple)


_V8_RESERVE = 0.10  # V8 "adds a 10% fallback reserve" kept by the later versions

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "v7", "V7, 31 Jan 2005, 2.6.11-rc1/-rc2",
            {"builds": 7, "jobs": 4, "warmup_s": 180.0, "attempts": 160},
            under_load=(3 / 160 * 100, 81 / 160 * 100),
        ),
        Preset(
            "v8", "V8, 27 Feb 2005, 2.6.11-rc1/-rc4 (adds a 10% fallback reserve)",
            {"builds": 7, "jobs": 4, "warmup_s": 180.0, "attempts": 160, "fallback_reserve": _V8_RESERVE},
            under_load=(3 / 160 * 100, 107 / 160 * 100),
        ),
        Preset(
            "v10", "V10, May 2005, 2.6.12-rc3",
            {"builds": 7, "jobs": 4, "warmup_s": 180.0, "attempts": 160, "fallback_reserve": _V8_RESERVE},
            under_load=(24 / 160 * 100, 136 / 160 * 100),
            notes=("the vanilla run had the OOM killer on and it killed almost all processes",),
        ),
        Preset(
            "v12", "V12, 2.6.12-rc5 / rc4, load average 25",
            {"builds": 7, "jobs": 4, "warmup_s": 180.0, "attempts": 160, "fallback_reserve": _V8_RESERVE},
            under_load=(3 / 160 * 100, 63 / 160 * 100),
        ),
        Preset(
            "v14", "V14, Oct 2005, 2.6.14-rc3, load 18 (vanilla's OOM killer disabled)",
            {"builds": 4, "jobs": 4, "warmup_s": 180.0, "attempts": 160, "oom": False,
             "fallback_reserve": _V8_RESERVE},
            under_load=(46 / 160 * 100, 97 / 160 * 100),
            at_rest=(54 / 160 * 100, 159 / 160 * 100),
        ),
        Preset(
            "v19", "V19, 2.6.14-rc5-mm1, load 18 (OOM killer disabled)",
            {"builds": 6, "jobs": 2, "warmup_s": 60.0, "attempts": 160, "oom": False,
             "fallback_reserve": _V8_RESERVE},
            under_load=(30 / 160 * 100, 76 / 160 * 100),
            at_rest=(45 / 160 * 100, 159 / 160 * 100),
        ),
        Preset(
            "v19-reply", "V19 reply to Linus, 4 Nov 2005, quad Xeon 1.5 GiB, min_free_kbytes = RAM/8",
            {"builds": 7, "jobs": 2, "warmup_s": 180.0, "attempts": 160, "attempts_rest": 300,
             "min_free_kbytes": 1536 * 1024 // 8, "fallback_reserve": _V8_RESERVE, "cpus": 4},
            under_load=(24 / 160 * 100, 24 / 160 * 100),
            at_rest=(159 / 300 * 100, 212 / 300 * 100),
            notes=("the post asked for 50% of RAM under load and gives 24 (15%) for both kernels, "
                   "so the preset makes 160 attempts under load; 300 at rest as posted",),
        ),
        Preset(
            "v20", "V20, 2.6.14-mm2, load 12",
            {"builds": 4, "jobs": 2, "warmup_s": 60.0, "attempts": 160, "fallback_reserve": _V8_RESERVE},
            under_load=(73 / 160 * 100, 96 / 160 * 100),
            at_rest=(78 / 160 * 100, 102 / 160 * 100),
        ),
    )
}

#: the preset a plain ``kmm highalloc`` runs
DEFAULT_PRESET = "v7"


def get(name: str) -> Preset:
    """The preset called ``name``; raises :class:`kmm.BenchmarkError` naming the choices."""
    if not isinstance(name, str) or name not in PRESETS:
        raise BenchmarkError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]
