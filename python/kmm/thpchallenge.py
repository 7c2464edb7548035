"""mmtests' ``thpchallenge``: how many huge pages a fragmented machine gives
to THP faults, and what compaction costs for them (``kmm thpchallenge``).

A fragmenter runs from the start: kernel builds (``kbuild``: the
stress-highalloc load, updatedb and concurrent ``make -j``) or four fio
threads writing 64 KiB files worth 150% of memory over the run (``fio``).
After a warm-up, worker threads fault 75% of memory as THP in 2 MiB regions,
round after round (each round faults its regions over 80% of the round and
unmaps them at its end). Every THP fault either gets a huge page
(``fault_huge``, the kernel's ``thp_fault_alloc``) or falls back to base pages
(``fault_base``, ``thp_fault_fallback``). The trace is generated once from the
seed and replayed identically on every variant (:data:`kmm.highalloc.VARIANTS`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._args import float_arg
from ._variants import Chunks, check_config, run_variants
from .errors import BenchmarkError
from .highalloc import LOAD_MAX_OBJECTS, VARIANTS
from .machine import Machine, parse_mem

DEFAULT_VARIANTS = ["mobility", "mobility+compaction", "mobility+compaction+defrag"]
FRAGMENTERS = ("kbuild", "fio")


@dataclass
class ThpChallengeConfig:
    """Everything that defines a run."""

    layout: str = "x86_64"
    mem: str = "2GiB"
    seed: int = 0
    fragmenter: str = "kbuild"
    warmup_s: float = 20.0
    duration_s: float = 120.0
    round_s: float = 5.0
    share: float = 0.75
    variants: list[str] = field(default_factory=lambda: list(DEFAULT_VARIANTS))
    #: swap space (``kmm.Machine(swap=)``; off, anonymous memory is never reclaimed)
    swap: bool = True

    @classmethod
    def quick(cls, **kw: Any) -> ThpChallengeConfig:
        """1 GiB for 40 simulated seconds: a fast look."""
        base: dict[str, Any] = dict(mem="1GiB", warmup_s=10.0, duration_s=40.0)
        base.update(kw)
        return cls(**base)

    def validate(self) -> None:
        mem = check_config(
            self,
            layouts=("x86_64",),  # transparent huge pages are x86_64's here
            variants=VARIANTS,
            ints={"seed": (0, None)},
            floats={"warmup_s": (0.0, 3600.0), "round_s": (0.1, 600.0), "share": (0.01, 1.0)},
            bools=("swap",),
        )
        if mem < 64 << 20:
            raise BenchmarkError(f"mem {self.mem!r}: thpchallenge needs at least 64 MiB")
        if self.fragmenter not in FRAGMENTERS:
            raise BenchmarkError(f"fragmenter {self.fragmenter!r} must be one of {', '.join(FRAGMENTERS)}")
        float_arg("duration_s", self.duration_s, self.warmup_s + self.round_s, 3600.0, error=BenchmarkError)

    def rounds(self) -> int:
        return int((self.duration_s - self.warmup_s) // self.round_s)


def build_load(cfg: ThpChallengeConfig):
    """The combined load: the fragmenter and the THP workers."""
    from . import workloads

    mem = parse_mem(cfg.mem)
    if cfg.fragmenter == "kbuild":
        frag = workloads.stress_highalloc_load(seed=cfg.seed)
    else:
        frag = workloads.combine(
            workloads.system(seed=cfg.seed), workloads.fio_writers(mem, duration=cfg.duration_s, seed=cfg.seed)
        )
    thp = workloads.thp_workers(
        mem, share=cfg.share, start=cfg.warmup_s, round_s=cfg.round_s, rounds=cfg.rounds(),
        seed=cfg.seed,
    )
    return workloads.combine(frag, thp)


def generate(cfg: ThpChallengeConfig, store: Any) -> dict[str, Any]:
    """The trace once, one chunk per simulated second, handed to ``store.put(name, chunk)``."""
    load = build_load(cfg)
    t0 = time.perf_counter()
    n = 0
    for k, chunk in enumerate(load.chunks(cfg.duration_s, chunk_s=1.0)):
        store.put(f"s{k:06d}", chunk)
        n += len(chunk)
    return {"ops": n, "generate_s": time.perf_counter() - t0}


def run_variant(name: str, cfg: ThpChallengeConfig, chunks: Chunks, progress: Callable[[], None] | None = None) -> dict[str, Any]:
    """Replay the generated trace on one variant; its results."""
    tick = progress or (lambda: None)
    # today's kernel: no 2.6.11 reclaim_mapped rule (the split LRU replaced it)
    m = Machine(layout=cfg.layout, mem=cfg.mem, swap=cfg.swap, mapped_rule=False, max_objects=LOAD_MAX_OBJECTS, **VARIANTS[name])
    t0 = time.perf_counter()
    over_time = []
    prev = m.counters()
    for k, chunk in enumerate(chunks.group("s")):
        m.replay(chunk, outcomes=False)
        c = m.counters()
        huge = c["thp_fault_alloc"] - prev["thp_fault_alloc"]
        base = c["thp_fault_fallback"] - prev["thp_fault_fallback"]
        if huge + base:
            over_time.append({"t": k + 1, "fault_huge": huge, "fault_base": base,
                              "success": round(100.0 * huge / (huge + base), 1)})
        prev = c
        tick()
    m.check()
    c = m.counters()
    huge, base = c["thp_fault_alloc"], c["thp_fault_fallback"]

    def per_huge(key: str) -> float | None:
        return round(c[key] / huge, 1) if huge else None

    return {
        "fault_huge": huge,
        "fault_base": base,
        "success": round(100.0 * huge / (huge + base), 1) if huge + base else None,
        "success_over_time": over_time,
        "per_huge_page": {k: per_huge(k) for k in ("compact_migrate_scanned", "compact_free_scanned", "pgmigrate_success")},
        "counters": c,
        "seconds": time.perf_counter() - t0,
    }


def run(cfg: ThpChallengeConfig, *, processes: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Every variant of ``cfg`` on the same trace (in parallel processes)."""
    cfg.validate()
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(cfg.variants) * int(np.ceil(cfg.duration_s)), desc="thpchallenge",
                   unit="s", leave=False)
    gen, results = run_variants(
        run_variant, cfg.variants, cfg, lambda store: generate(cfg, store), processes=processes, bar=bar
    )
    if bar is not None:
        bar.close()
    return {
        "seed": cfg.seed,
        "config": asdict(cfg),
        "rounds": cfg.rounds(),
        "load_ops": gen["ops"],
        "generate_s": gen["generate_s"],
        "variants": {n: results[n] for n in cfg.variants},
        "wall_s": time.perf_counter() - t0,
    }


def format_report(res: dict[str, Any]) -> str:
    """Fault-huge and fault-base per variant, the success rate per round, and
    the compaction work per huge page."""
    names = list(res["variants"])
    w = max(14, *(len(n) + 2 for n in names))
    cfg = res["config"]
    v = res["variants"]
    lines = [
        f"kmm thpchallenge: {cfg['layout']} {cfg['mem']}, fragmenter {cfg['fragmenter']}, "
        f"{res['rounds']} rounds of {cfg['share']:.0%} of memory as THP (GFP_TRANSHUGE_LIGHT) "
        f"every {cfg['round_s']:g} s after {cfg['warmup_s']:g} s, seed {res['seed']}"
        f"{'' if cfg.get('swap', True) else ', no swap'}",
        "",
        f"{'':<30}" + "".join(f"{n:>{w}}" for n in names),
    ]

    def row(label: str, vals: list[Any]) -> None:
        lines.append(f"{label:<30}" + "".join(f"{'-' if x is None else x:>{w}}" for x in vals))

    row("fault_huge", [v[n]["fault_huge"] for n in names])
    row("fault_base", [v[n]["fault_base"] for n in names])
    row("success %", [v[n]["success"] for n in names])
    for key in ("compact_migrate_scanned", "compact_free_scanned", "pgmigrate_success"):
        row(f"{key}/huge", [v[n]["per_huge_page"][key] for n in names])
    for key in ("compact_stall", "compact_success", "compact_daemon_wake", "pageblock_fallback",
                "type_mismatch", "pgsteal", "allocstall"):
        row(key, [v[n]["counters"][key] for n in names])
    lines.append("")
    lines.append("success % per round (THP faults that got a huge page)")
    per_round: dict[str, list[float | None]] = {}
    for n in names:
        rounds: dict[int, list[int]] = {}
        for s in v[n]["success_over_time"]:
            r = int((s["t"] - 1 - cfg["warmup_s"]) // cfg["round_s"])
            acc = rounds.setdefault(r, [0, 0])
            acc[0] += s["fault_huge"]
            acc[1] += s["fault_base"]
        per_round[n] = [round(100.0 * a / (a + b), 1) if a + b else None for _, (a, b) in sorted(rounds.items())]
    for r in range(max((len(x) for x in per_round.values()), default=0)):
        row(f"round {r + 1}", [per_round[n][r] if r < len(per_round[n]) else None for n in names])
    lines.append("")
    lines.append(f"load: {res['load_ops']:,} trace ops generated in {res['generate_s']:.1f} s; total wall time {res['wall_s']:.1f} s")
    return "\n".join(lines) + "\n"
