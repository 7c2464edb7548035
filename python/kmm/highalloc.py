"""The high-order allocation benchmark: Mel Gorman's ``bench-stresshighalloc`` (2005).

A machine is loaded with ``updatedb`` and concurrent kernel builds for a warm-up
period; then, with the load still running, ``attempts`` allocations of
``order`` (default 10: 4 MiB) are made with GFP_HIGHUSER, one every HZ/10 of
simulated time, and every success is held until the pass ends. Then the load
stops (the builds exit and release their memory; caches stay), the held blocks
are freed, and a second pass runs at rest. Each pass reports, in Mel's terms,
attempted / success / failed / % success, beside the ceiling (aligned blocks
holding no reserved or unreclaimable page at the end of the pass: nothing acting
on that state could hold more) and the perfect-packing limit.

The load trace is generated once, from the seed, and replayed identically on
every variant, so the variants differ only in the allocator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import gfp as _gfp
from ._args import int_arg
from ._variants import Chunks, check_config, run_variants
from .errors import BenchmarkError, InvariantError
from .machine import MAX_ORDER, Machine, parse_mem

#: variant name -> Machine keyword arguments
VARIANTS: dict[str, dict[str, Any]] = {
    "vanilla": {"allocator": "vanilla"},
    "antifrag": {"allocator": "antifrag"},
    "mobility": {"allocator": "mobility"},
    "antifrag+active": {"allocator": "antifrag", "active_freeing": True},
    # today's kernel (docs/model.md, "Compaction"); not run unless asked for
    "vanilla+compaction": {"allocator": "vanilla", "compaction": True},
    "mobility+compaction": {"allocator": "mobility", "compaction": True, "freelist_hygiene": True},
    "mobility+compaction+defrag": {
        "allocator": "mobility", "compaction": True, "freelist_hygiene": True, "defrag_mode": True,
    },
}

#: the variants a run has by default: the 2005 experiment's
DEFAULT_VARIANTS = ["vanilla", "antifrag", "mobility", "antifrag+active"]


#: The object ids a generated load may name: all of a trace id's 32 bits
#: (``Machine(max_objects=)``; its default, 2^26, is less than the 85.5 M ids
#: a 64 GiB machine's 405 trees number: ``docs/workloads.md``).
LOAD_MAX_OBJECTS = 2**32 - 2


@dataclass
class HighallocConfig:
    """Everything that defines a run (the defaults are the 2005 experiment)."""

    layout: str = "x86_32"
    mem: str = "1536MiB"
    order: int = 10
    attempts: int = 160
    interval_s: float = 0.1  # HZ/10
    #: the script's sleep before the attempts; it starts when the copy loop
    #: ends (``attempts_start_s``), as in both scripts (docs/workloads.md)
    warmup_s: float = 180.0
    #: concurrent kernel builds (None: the load that fits the machine,
    #: ``workloads.load_for_memory``; presets and --quick set it)
    builds: int | None = None
    jobs: int = 4
    updatedb: bool = True
    seed: int = 0
    gfp: str = "GFP_HIGHUSER"
    variants: list[str] = field(default_factory=lambda: list(DEFAULT_VARIANTS))
    nic_rings: int = 0  # NIC rx rings pinned from the start (kmm.workloads.nic)
    nic_rx_pps: float = 1000.0  # packets per second per ring while the load runs
    #: attempts of the pass at rest (None: as many as under load)
    attempts_rest: int | None = None
    #: the OOM killer (on as in the kernel); off, an allocation that may not
    #: fail and finds nothing to reclaim fails and is counted (``oom_fail``)
    oom: bool = True
    #: swap space on every variant (``kmm.Machine(swap=)``; on, as the 2005
    #: machines had it, ``docs/model.md`` "Mapped pages and swap"); off,
    #: anonymous memory is never reclaimed
    swap: bool = True
    #: ``vm.min_free_kbytes`` of every variant (0: the kernel's boot-time rule)
    min_free_kbytes: int = 0
    #: CPUs of the machine, each with its own per-cpu page lists (the posts
    #: name the CPUs only for the reply to Linus: a quad Xeon)
    cpus: int = 1
    #: the antifrag patch's fallback reserve (v8 and later: 0.10; v7: none),
    #: given to the antifrag variants only
    fallback_reserve: float = 0.0
    #: files updatedb walks (None: the files of the trees when ``builds`` is
    #: scaled to the machine, else updatedb's default)
    updatedb_files: int | None = None
    #: the preset (``kmm.presets``) the run was made from, None if none
    preset: str | None = None

    @classmethod
    def from_preset(cls, name: str, **kw: Any) -> HighallocConfig:
        """The setup of one of Mel Gorman's 2005 posts (``kmm.presets``), with
        ``kw`` overriding any field."""
        from . import presets

        base: dict[str, Any] = dict(presets.get(name).config)
        base["preset"] = name
        base.update(kw)
        return cls(**base)

    def resolved(self) -> HighallocConfig:
        """This config with the load sized: ``builds`` None becomes the trees
        that fit the machine and updatedb walks their files."""
        if self.builds is not None:
            return self
        from .workloads import load_for_memory

        trees, files = load_for_memory(parse_mem(self.mem), seed=self.seed)
        return replace(self, builds=trees, updatedb_files=self.updatedb_files or files)

    def copies_done_s(self) -> float:
        """When the load's copy loop ends (``workloads.copies_done_s``): the
        main tree's ``make`` starts and the script's sleep begins."""
        from .workloads import copies_done_s

        return copies_done_s(self.resolved().builds or 0, seed=self.seed)

    def attempts_start_s(self) -> float:
        """When the attempts under load begin: the copy loop's end plus the
        script's sleep, ``warmup_s`` (the first attempt is one interval later)."""
        return self.copies_done_s() + self.warmup_s

    def rest_attempts(self) -> int:
        return self.attempts if self.attempts_rest is None else self.attempts_rest

    def machine_kwargs(self, variant: str) -> dict[str, Any]:
        """Keyword arguments of :class:`kmm.Machine` for ``variant`` under this config."""
        kw = dict(
            VARIANTS[variant], layout=self.layout, mem=self.mem, min_free_kbytes=self.min_free_kbytes, oom_kill=self.oom,
            nr_cpus=self.cpus, swap=self.swap, max_objects=LOAD_MAX_OBJECTS,
        )
        if kw["allocator"] == "antifrag" and self.fallback_reserve:
            kw["fallback_reserve"] = self.fallback_reserve
        return kw

    @classmethod
    def quick(cls, **kw: Any) -> HighallocConfig:
        """A small machine for a fast look: 1 GiB (a 128 MiB HighMem), the same 7 builds,
        30 s warm-up (long enough for the load to fill memory), 40 attempts."""
        base = dict(mem="1GiB", builds=7, warmup_s=30.0, attempts=40)
        base.update(kw)
        return cls(**base)

    def validate(self) -> None:
        """Check every field; raises :class:`kmm.BenchmarkError` naming the first bad one."""
        check_config(
            self,
            layouts=("x86_32", "x86_64"),
            variants=VARIANTS,
            ints={
                "order": (0, MAX_ORDER - 1),
                "attempts": (1, 100_000),
                "attempts_rest": (1, 100_000),
                "min_free_kbytes": (0, 1 << 40),
                "cpus": (1, 16),
                "builds": (0, 64),
                "updatedb_files": (1, 100_000_000),
                "jobs": (1, 64),
                "nic_rings": (0, 64),
            },
            floats={
                "fallback_reserve": (0.0, 1.0),
                "interval_s": (0.001, 60),
                "warmup_s": (0, 3600),
                "nic_rx_pps": (1.0, 1e6),
            },
            bools=("oom", "updatedb", "swap"),
        )
        if self.preset is not None:
            from . import presets

            presets.get(self.preset)


def generate_load(cfg: HighallocConfig, store: Any) -> dict[str, Any]:
    """Generate the load once, handing its chunks to ``store.put(name, chunk)``:
    ``warmup*`` (10 s each), ``step*`` (one per attempt interval), ``stop``."""
    from . import workloads

    load = workloads.stress_highalloc_load(
        builds=cfg.builds, jobs=cfg.jobs, updatedb=cfg.updatedb, seed=cfg.seed, updatedb_files=cfg.updatedb_files
    )
    if cfg.nic_rings:
        from .workloads import nic

        load = workloads.combine(load, nic.rx_rings(cfg.nic_rings, rx_pps=cfg.nic_rx_pps, seed=cfg.seed))
    # the script's sleep starts when its copy loop ends
    start = cfg.attempts_start_s()
    # the run ends with the last attempt under load: what the load's
    # processes would do after it is never replayed
    load.end_at(start + cfg.attempts * cfg.interval_s)
    t0 = time.perf_counter()
    n = 0
    nwarm = 0
    for nwarm, chunk in enumerate(load.chunks(start, chunk_s=10.0), 1):
        store.put(f"warmup{nwarm - 1:06d}", chunk)
        n += len(chunk)
    for i in range(cfg.attempts):
        t = start + (i + 1) * cfg.interval_s
        chunk = load.run_until(t)
        store.put(f"step{i:06d}", chunk)
        n += len(chunk)
    stop = load.stop()
    store.put("stop", stop)
    n += len(stop)
    return {"ops": n, "generate_s": time.perf_counter() - t0, "warmup_chunks": nwarm}


def _pass(
    m: Machine, cfg: HighallocConfig, attempts: int, chunks: Callable[[int], np.ndarray | None], gfp: int, progress
) -> dict[str, Any]:
    held: list[int] = []
    hits: list[int] = []
    before = m.buddyinfo()
    t0 = time.perf_counter()
    for i in range(attempts):
        chunk = chunks(i)
        if chunk is None:
            m.advance(cfg.interval_s)
        else:
            m.replay(chunk, outcomes=False)
        p = m.alloc(cfg.order, gfp)
        if p is not None:
            held.append(p)
        hits.append(0 if p is None else 1)
        progress()
    after = m.buddyinfo()
    ceiling = m.highorder_ceiling(cfg.order, gfp)
    limit = m.highorder_limit(cfg.order, gfp)
    if len(held) > ceiling:
        raise InvariantError(f"{len(held)} order-{cfg.order} blocks held but the ceiling counted {ceiling}")
    for p in held:
        m.free(p)
    return {
        "order": cfg.order,
        "attempted": attempts,
        "success": len(held),
        "failed": attempts - len(held),
        "percent": round(100.0 * len(held) / attempts, 1),
        "ceiling": ceiling,
        "limit": limit,
        "buddyinfo_before": before,
        "buddyinfo_after": after,
        "attempt_success": hits,
        "seconds": time.perf_counter() - t0,
    }


def _keep_page_map(page_maps: str | dict[str, np.ndarray] | None, stem: str, m: Machine) -> None:
    """``m.page_map()`` saved as ``DIR/STEM.npy``, or put in the dict under ``STEM``
    (a dict works in this process only: ``run(..., processes=1)``)."""
    if isinstance(page_maps, dict):
        page_maps[stem] = m.page_map()
    elif page_maps:
        np.save(Path(page_maps) / f"{stem}.npy", m.page_map())


def run_variant(
    name: str, cfg: HighallocConfig, chunks: Chunks, progress=None, page_maps: str | dict[str, np.ndarray] | None = None
) -> dict[str, Any]:
    """Run one variant on the generated load (``generate_load``'s chunks); returns its results."""
    tick = progress or (lambda: None)
    m = Machine(**cfg.machine_kwargs(name))
    gfp = _gfp.parse(cfg.gfp)
    t0 = time.perf_counter()
    warm_ops = 0
    for chunk in chunks.group("warmup"):
        _, c = m.replay(chunk, outcomes=False)
        warm_ops += c["ops"]
    _keep_page_map(page_maps, f"{name}-before", m)
    load = _pass(m, cfg, cfg.attempts, lambda i: chunks.get(f"step{i:06d}"), gfp, tick)
    _keep_page_map(page_maps, f"{name}-under_load", m)
    m.replay(chunks.get("stop"), outcomes=False)
    rest = _pass(m, cfg, cfg.rest_attempts(), lambda i: None, gfp, tick)
    _keep_page_map(page_maps, f"{name}-at_rest", m)
    m.check()
    counters = m.counters()
    return {
        "under_load": load,
        "at_rest": rest,
        "counters": {
            k: counters[k]
            for k in (
                "alloc", "alloc_fail", "pgscan", "pgsteal", "pgsteal_kswapd", "pgsteal_direct",
                "allocstall", "refaults", "kswapd_wakeups", "fallbacks", "global_takes", "steals",
                "active_free_success", "active_free_pages",
                "compact_stall", "compact_fail", "compact_success", "compact_migrate_scanned",
                "compact_free_scanned", "compact_isolated", "compact_daemon_wake",
                "pgmigrate_success", "pageblock_fallback", "type_mismatch", "thp_fault_alloc",
                "thp_fault_fallback", "mm_page_alloc_extfrag",
                "pgactivate", "pgdeactivate", "oom_kill", "oom_kill_pages", "oom_dropped", "oom_fail",
            )
        },
        "pages_reclaimed_per_active_success": (
            counters["active_free_pages"] / counters["active_free_success"]
            if counters["active_free_success"]
            else None
        ),
        "warmup_ops": warm_ops,
        "seconds": time.perf_counter() - t0,
    }


def resolve_config(cfg: HighallocConfig | dict[str, Any] | None = None, preset: str | None = None) -> HighallocConfig:
    """The config a run uses: ``cfg`` (a config, or a dict of its fields), on
    top of ``preset``'s setup when one is named."""
    if isinstance(cfg, HighallocConfig):
        if preset is not None:
            raise BenchmarkError("a preset takes its overrides as a dict of config fields, not a HighallocConfig")
        return cfg
    if cfg is not None and not isinstance(cfg, dict):
        raise BenchmarkError(f"config must be a HighallocConfig or a dict, not {type(cfg).__name__}")
    kw = dict(cfg or {})
    unknown = sorted(set(kw) - set(HighallocConfig.__dataclass_fields__))
    if unknown:
        raise BenchmarkError(f"unknown highalloc config keys {unknown}")
    name = preset if preset is not None else kw.pop("preset", None)
    kw.pop("preset", None)
    try:
        return HighallocConfig.from_preset(name, **kw) if name is not None else HighallocConfig(**kw)
    except TypeError as e:
        raise BenchmarkError(str(e)) from None


def run(
    cfg: HighallocConfig | dict[str, Any] | None = None,
    *,
    preset: str | None = None,
    processes: int | None = None,
    progress: bool = False,
    page_maps: str | dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Run every variant of ``cfg`` (in parallel processes) and return the
    results as a dict. ``cfg`` is a :class:`HighallocConfig` or a dict of its
    fields; ``preset`` names a post's setup (``kmm.presets``) that ``cfg``'s
    fields then override; ``result["config"]`` is the full config run.
    ``page_maps`` keeps each variant's ``page_map()`` before the attempts,
    after those under load and after those at rest: as ``DIR/NAME-STAGE.npy``
    files, or in a dict under ``NAME-STAGE`` (which runs in this process)."""
    cfg = resolve_config(cfg, preset)
    cfg.validate()
    cfg = cfg.resolved()
    if isinstance(page_maps, dict):
        processes = 1  # the maps are put in this process's dict
    t0 = time.perf_counter()
    total = len(cfg.variants) * (cfg.attempts + cfg.rest_attempts())
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="highalloc", unit="attempt", leave=False)
    gen, results = run_variants(
        run_variant, cfg.variants, cfg, lambda store: generate_load(cfg, store), page_maps,
        processes=processes, bar=bar,
    )
    if bar is not None:
        bar.close()
    out = {
        "seed": cfg.seed,
        "config": asdict(cfg),
        "copies_done_s": cfg.copies_done_s(),
        "attempts_start_s": cfg.attempts_start_s(),
        "load_ops": gen["ops"],
        "generate_s": gen["generate_s"],
        "variants": {n: results[n] for n in cfg.variants},
        "wall_s": time.perf_counter() - t0,
    }
    return out


def seed_stats(values: list[float]) -> dict[str, float]:
    """mean, sample standard deviation (0 for one value), min and max."""
    n = len(values)
    mean = sum(values) / n
    sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "min": min(values), "max": max(values)}


def run_seeds(
    cfg: HighallocConfig | dict[str, Any] | None,
    seeds: int,
    *,
    preset: str | None = None,
    processes: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """``cfg`` (as :func:`run` takes it) run for seeds ``cfg.seed .. cfg.seed +
    seeds - 1`` in this process, one after the other; returns every run and,
    per variant and pass, the statistics of % success, ceiling and limit over
    the seeds."""
    cfg = resolve_config(cfg, preset)
    cfg.validate()
    seeds = int_arg("seeds", seeds, 1, 10_000, error=BenchmarkError)
    t0 = time.perf_counter()
    runs = [run(replace(cfg, seed=cfg.seed + k), processes=processes, progress=progress) for k in range(seeds)]
    summary = {
        name: {
            pas: {
                key: seed_stats([float(r["variants"][name][pas][key]) for r in runs])
                for key in ("percent", "success", "ceiling", "limit")
            }
            for pas in ("under_load", "at_rest")
        }
        for name in cfg.variants
    }
    return {
        "config": dict(runs[0]["config"], seed=cfg.seed),
        "seeds": [r["seed"] for r in runs],
        "copies_done_s": [r["copies_done_s"] for r in runs],
        "attempts_start_s": [r["attempts_start_s"] for r in runs],
        "summary": summary,
        "runs": runs,
        "wall_s": time.perf_counter() - t0,
    }


def _nic_note(cfg: dict[str, Any]) -> str:
    """The header's note on NIC rx rings ('' without them)."""
    n = cfg.get("nic_rings", 0)
    if not n:
        return ""
    from .workloads import nic

    return (
        f", {n} NIC rx ring{'s' if n > 1 else ''} ({n * nic.PAGES_PER_RING} pages pinned, "
        f"{cfg['nic_rx_pps']:g} packets/s each)"
    )


def _start_text(res: dict[str, Any]) -> str:
    """The header's note on when the warm-up started ('' in results from before it was recorded)."""
    if "attempts_start_s" not in res:
        return ""
    return f" after the copies (attempts from {res['attempts_start_s']:.1f} s)"


def _attempts_text(cfg: dict[str, Any]) -> str:
    rest = cfg.get("attempts_rest")
    return f"{cfg['attempts']}" if rest is None or rest == cfg["attempts"] else f"{cfg['attempts']} (at rest {rest})"


def _setup_text(cfg: dict[str, Any]) -> str:
    parts = []
    if cfg.get("preset"):
        parts.append(f"preset {cfg['preset']}")
    if cfg.get("oom") is False:
        parts.append("OOM killer off")
    if cfg.get("swap") is False:
        parts.append("no swap")
    if cfg.get("min_free_kbytes"):
        parts.append(f"min_free_kbytes {cfg['min_free_kbytes']}")
    if cfg.get("fallback_reserve"):
        parts.append(f"antifrag fallback reserve {cfg['fallback_reserve']:.0%}")
    if cfg.get("cpus", 1) > 1:
        parts.append(f"{cfg['cpus']} CPUs")
    return f"\n  ({', '.join(parts)})" if parts else ""


def format_seeds_report(res: dict[str, Any]) -> str:
    """Per pass and variant: % success as mean, sd, min and max over the seeds,
    with the mean ceiling and limit."""
    cfg = res["config"]
    seeds = res["seeds"]
    lines = [
        f"kmm highalloc: {cfg['layout']} {cfg['mem']}, {cfg['builds']} x make -j{cfg['jobs']}"
        f"{' + updatedb' if cfg['updatedb'] else ''}, warm-up {cfg['warmup_s']:g} s after the copies, "
        f"{_attempts_text(cfg)} order-{cfg['order']} {cfg['gfp']} attempts, seeds {seeds[0]}..{seeds[-1]} ({len(seeds)})"
        + _nic_note(cfg)
        + _setup_text(cfg)
    ]
    for pas, title in (("under_load", "Under load"), ("at_rest", "At rest")):
        lines.append("")
        lines.append(f"{title + ', % success':<28}{'mean':>8}{'sd':>8}{'min':>8}{'max':>8}{'ceiling':>10}{'limit':>8}")
        for name, v in res["summary"].items():
            p = v[pas]["percent"]
            lines.append(
                f"{name:<28}{p['mean']:>8.1f}{p['sd']:>8.1f}{p['min']:>8.1f}{p['max']:>8.1f}"
                f"{v[pas]['ceiling']['mean']:>10.1f}{v[pas]['limit']['mean']:>8.1f}"
            )
    lines.append("")
    lines.append(f"total wall time {res['wall_s']:.1f} s")
    return "\n".join(lines) + "\n"


def format_report(res: dict[str, Any], *, buddyinfo: bool = True) -> str:
    """Mel's table (per pass: Order, Attempted allocations, Success allocs, Failed allocs,
    % Success) with the ceiling and limit beside it, the variants side by side."""
    names = list(res["variants"])
    w = max(14, *(len(n) + 2 for n in names))
    lines = []
    cfg = res["config"]
    lines.append(
        f"kmm highalloc: {cfg['layout']} {cfg['mem']}, {cfg['builds']} x make -j{cfg['jobs']}"
        f"{' + updatedb' if cfg['updatedb'] else ''}, warm-up {cfg['warmup_s']:g} s{_start_text(res)}, "
        f"{_attempts_text(cfg)} order-{cfg['order']} {cfg['gfp']} attempts every {cfg['interval_s']:g} s, seed {res['seed']}"
        + _nic_note(cfg)
        + _setup_text(cfg)
    )
    for pas, title in (("under_load", "Under load"), ("at_rest", "At rest")):
        lines.append("")
        lines.append(f"{title:<24}" + "".join(f"{n:>{w}}" for n in names))
        rows = [
            ("Order", "order"),
            ("Attempted allocations", "attempted"),
            ("Success allocs", "success"),
            ("Failed allocs", "failed"),
            ("% Success", "percent"),
            ("Ceiling (now)", "ceiling"),
            ("Perfect-packing limit", "limit"),
        ]
        for label, key in rows:
            vals = [res["variants"][n][pas][key] for n in names]
            lines.append(f"{label:<24}" + "".join(f"{v:>{w}g}" if isinstance(v, float) else f"{v:>{w}}" for v in vals))
    lines.append("")
    lines.append(f"{'Reclaim':<24}" + "".join(f"{n:>{w}}" for n in names))
    for key in ("pgscan", "pgsteal", "allocstall", "refaults", "kswapd_wakeups", "active_free_success", "active_free_pages"):
        lines.append(f"{key:<24}" + "".join(f"{res['variants'][n]['counters'][key]:>{w}}" for n in names))
    if buddyinfo:
        for n in names:
            v = res["variants"][n]
            lines.append("")
            lines.append(f"== {n}: /proc/buddyinfo before and after the attempts under load")
            lines.append(v["under_load"]["buddyinfo_before"].rstrip("\n"))
            lines.append("-- after")
            lines.append(v["under_load"]["buddyinfo_after"].rstrip("\n"))
    lines.append("")
    lines.append(f"load: {res['load_ops']:,} trace ops generated in {res['generate_s']:.1f} s; total wall time {res['wall_s']:.1f} s")
    return "\n".join(lines) + "\n"
