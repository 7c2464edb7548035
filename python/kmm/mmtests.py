"""mmtests' ``stress-highalloc``: the high-order allocation benchmark as mmtests
ran it from 2010 until its removal in 2019 (``kmm highalloc --mmtests``).

The machine is loaded with updatedb and concurrent kernel builds (the trees
copied one after another, each built as soon as it is copied, then the primary
tree); five minutes after the copy loop ends, with the load still running, huge
pages (order 9 on x86_64) are asked for at a fixed rate (16 MB/s, mmtests'
``HIGHALLOC_ALLOC_RATE``) until ``percent`` of memory (95 by default,
``HIGHALLOC_PERCENTAGE``) has been asked for, each success held to the end of
the pass: pass 1, then the held pages are freed, 5 s later pass 2 does the
same, and 5 + 180 s after it the load is killed, its trees are deleted, a file
the size of RAM is written with dd and read back with cat and deleted, the
caches dropped (``echo 3 > /proc/sys/vm/drop_caches``), and pass 3 asks again,
at rest. The schedule is ``vmr/bin/bench-stresshighalloc.sh``'s
(:meth:`MmtestsConfig.schedule`, ``docs/workloads.md``, "When the attempts start"). The
mask is ``GFP_HIGHUSER_MOVABLE`` (kmm's ``GFP_HIGHUSER`` carries the movable
bit, ``__GFP_USERRCLM`` = ``__GFP_MOVABLE``).

The load trace is generated once, from the seed, and replayed identically on
every variant (the variants of :data:`kmm.highalloc.VARIANTS`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import gfp as _gfp
from ._variants import Chunks, check_config, run_variants
from .errors import BenchmarkError, InvariantError
from .highalloc import LOAD_MAX_OBJECTS, VARIANTS
from .machine import MAX_ORDER, PM_RESERVED, Machine, parse_mem

#: page_map() value of an allocated page of mobility type 0, and that type
PM_TYPE0 = PM_RESERVED + 1
MIGRATE_UNMOVABLE = 0

#: the variants an mmtests run has by default: grouping by mobility with and
#: without compaction, compaction without grouping, and defrag_mode
DEFAULT_VARIANTS = ["mobility", "vanilla+compaction", "mobility+compaction", "mobility+compaction+defrag"]

#: the passes, in order
PASSES = ("pass1", "pass2", "at_rest")

#: counters every result carries (``m.counters()`` at the end of the run)
COUNTERS = (
    "alloc", "alloc_fail", "pgscan", "pgsteal", "pgsteal_kswapd", "pgsteal_direct",
    "allocstall", "refaults", "kswapd_wakeups", "fallbacks", "steals",
    "compact_stall", "compact_fail", "compact_success", "compact_migrate_scanned",
    "compact_free_scanned", "compact_isolated", "compact_daemon_wake",
    "pgmigrate_success", "pageblock_fallback", "type_mismatch", "thp_fault_alloc",
    "thp_fault_fallback", "mm_page_alloc_extfrag",
)


@dataclass
class MmtestsConfig:
    """Everything that defines an mmtests stress-highalloc run."""

    layout: str = "x86_64"
    mem: str = "2GiB"
    order: int = 9
    percent: float = 95.0
    rate_mb_s: float = 16.0
    #: the script's sleep between the copy loop's end and pass 1 ("Sleeping 5
    #: minutes": 10 x ``sleep 30``)
    warmup_s: float = 300.0
    #: the script's ``sleep 5`` after each pass under load, the load running
    pass_sleep_s: float = 5.0
    #: the script's ``sleep 180`` after pass 2 (and its sleep) before the kill
    kill_wait_s: float = 180.0
    #: the script's ``dd`` of a ``MemTotal``-sized file, ``cat`` of it and its
    #: ``rm`` after the trees are deleted, before the pass at rest
    dd: bool = True
    #: kernel trees built at once; None: mmtests' rule (:func:`mmtests_builds`),
    #: ``MemTotal`` in MiB / 400 copies plus the primary tree
    builds: int | None = None
    #: ``make -j1``, as mmtests' ``bench-stresshighalloc.sh`` builds every tree
    jobs: int = 1
    updatedb: bool = True
    seed: int = 0
    gfp: str = "GFP_HIGHUSER"
    #: add the long-lived processes' working memory on a machine without swap
    #: (:func:`kmm.workloads.resident`; every variant then runs without swap): ``resident_scale`` times their
    #: anonymous pages, each replaced about every ``refault_s`` seconds
    resident: bool = False
    resident_scale: float = 1.0
    refault_s: float = 60.0
    #: NIC rx rings of the machine (:func:`kmm.workloads.nic.rx_rings`):
    #: filled at boot, refilled as packets arrive while the load runs
    nic_rings: int = 0
    nic_rx_pps: float = 1000.0
    variants: list[str] = field(default_factory=lambda: list(DEFAULT_VARIANTS))

    @classmethod
    def quick(cls, **kw: Any) -> MmtestsConfig:
        """A small machine for a fast look: 1 GiB, 30 s warm-up, 30 s before the kill."""
        base: dict[str, Any] = dict(mem="1GiB", warmup_s=30.0, kill_wait_s=30.0)
        base.update(kw)
        return cls(**base)

    def validate(self) -> None:
        check_config(
            self,
            layouts=("x86_32", "x86_64"),
            variants=VARIANTS,
            ints={"order": (1, MAX_ORDER - 1), "builds": (0, MAX_BUILDS), "jobs": (1, 64), "nic_rings": (0, 64)},
            floats={
                "percent": (0.1, 100.0),
                "rate_mb_s": (0.01, 1e6),
                "warmup_s": (0, 3600),
                "pass_sleep_s": (0, 3600),
                "kill_wait_s": (0, 3600),
                "resident_scale": (0.0, 1000.0),
                "refault_s": (1.0, 1e6),
                "nic_rx_pps": (1.0, 1e6),
            },
            bools=("updatedb", "resident", "dd"),
        )
        if self.load_builds() == 0 and not self.updatedb:
            raise BenchmarkError("an empty load: no builds and no updatedb")
        if self.attempts() < 1:
            raise BenchmarkError(f"{self.percent}% of {self.mem} is not one order-{self.order} block")

    def load_builds(self) -> int:
        """The kernel trees the load builds: ``builds``, or mmtests' rule."""
        return mmtests_builds(self.layout, self.mem) if self.builds is None else self.builds

    def attempts(self) -> int:
        """Allocations per pass: ``percent`` of memory in blocks of the order."""
        pages = parse_mem(self.mem) // 4096
        return int(pages * self.percent / 100.0) >> self.order

    def interval_s(self) -> float:
        """Simulated seconds between attempts: one block at ``rate_mb_s``."""
        return (4096 << self.order) / (self.rate_mb_s * (1 << 20))

    def schedule(self) -> dict[str, float]:
        """When each step of the script begins, in simulated seconds: the copy
        loop's end (``workloads.copies_done_s``), pass 1 (``warmup_s`` later),
        pass 2 (``pass_sleep_s`` after pass 1), the kill (``pass_sleep_s`` +
        ``kill_wait_s`` after pass 2). Attempt ``j`` of a pass is made
        ``(j + 1) * interval_s()`` after the pass begins."""
        from .workloads import copies_done_s

        copies = copies_done_s(self.load_builds(), seed=self.seed)
        pass_s = self.attempts() * self.interval_s()
        p1 = copies + self.warmup_s
        p2 = p1 + pass_s + self.pass_sleep_s
        kill = p2 + pass_s + self.pass_sleep_s + self.kill_wait_s
        return {"copies_done_s": copies, "pass1_start_s": p1, "pass2_start_s": p2, "kill_s": kill}


#: most kernel trees a run may build
MAX_BUILDS = 256
#: MiB of ``MemTotal`` per kernel tree: mmtests' ``shellpack-bench-stress-highalloc``
#: autosizes ``NUM_KERNELS=$(($TOTALMEM/400))`` from ``free -m`` (docs/compaction.md)
MIB_PER_KERNEL = 400


@functools.lru_cache(maxsize=32)
def memtotal_mib(layout: str, mem: str) -> int:
    """``free -m``'s total of the machine: its managed pages (``MemTotal``), in
    MiB (a machine booted once per layout and size: a run asks several times)."""
    m = Machine(layout=layout, mem=mem)
    return sum(z.managed for z in m.zone_stats()) * 4096 >> 20


def mmtests_builds(layout: str, mem: str) -> int:
    """mmtests' kernel builds for a machine: ``MemTotal / 400`` MiB copies
    (``-k``, ``SEQ`` in ``bench-stresshighalloc.sh``), each built, plus the
    primary tree."""
    return memtotal_mib(layout, mem) // MIB_PER_KERNEL + 1


def generate_load(cfg: MmtestsConfig, store: Any) -> dict[str, Any]:
    """The load once, its chunks handed to ``store.put(name, chunk)``: warm-up,
    one chunk per attempt of passes 1 and 2 (pass 2's first with the sleep
    before it), the load up to the kill (``wait``), the kill (the processes'
    frees), the tree deletion and cache drop (``drop``), and dd, cat and rm of
    a ``MemTotal``-sized file (``dd``, empty without ``cfg.dd``)."""
    from . import workloads
    from .workloads.tree import kernel_tree

    builds = cfg.load_builds()
    # with the builds sized from memory updatedb walks every tree the load made
    # (as kmm highalloc's load_for_memory); an explicit count keeps its default
    files = max(1, builds) * kernel_tree(seed=cfg.seed).files if cfg.builds is None else None
    load = workloads.stress_highalloc_load(
        builds=builds, jobs=cfg.jobs, updatedb=cfg.updatedb, seed=cfg.seed, updatedb_files=files
    )
    if cfg.resident:
        load = workloads.combine(
            load, workloads.resident(seed=cfg.seed, scale=cfg.resident_scale, refault=cfg.refault_s)
        )
    if cfg.nic_rings:
        from .workloads import nic

        load = workloads.combine(load, nic.rx_rings(cfg.nic_rings, rx_pps=cfg.nic_rx_pps, seed=cfg.seed))
    sched = cfg.schedule()
    t0 = time.perf_counter()
    n = 0
    for k, chunk in enumerate(load.chunks(sched["pass1_start_s"], chunk_s=10.0)):
        store.put(f"warmup{k:06d}", chunk)
        n += len(chunk)
    step = cfg.interval_s()
    for p in (1, 2):
        start = sched[f"pass{p}_start_s"]
        for j in range(cfg.attempts()):
            chunk = load.run_until(start + (j + 1) * step)
            store.put(f"pass{p}_{j:06d}", chunk)
            n += len(chunk)
    # the sleeps after pass 2, the load running (at least one chunk, maybe empty)
    nwait = 0
    for nwait, chunk in enumerate(load.chunks(sched["kill_s"], chunk_s=10.0), 1):
        store.put(f"wait{nwait - 1:06d}", chunk)
        n += len(chunk)
    if not nwait:
        store.put("wait", load.run_until(load.now))
    parts = [load.stop(), load.drop_caches()]
    store.put("kill", parts[0])
    store.put("drop", parts[1])
    if cfg.dd:
        # after the trees are deleted (their caches dropped with them, see
        # docs/workloads.md): a file of free -m's total, in fresh object ids
        from .workloads.dd import dd_cat_rm

        pages = memtotal_mib(cfg.layout, cfg.mem) << 8
        parts.append(dd_cat_rm(pages, load.peak_objects))
    else:
        parts.append(load.run_until(load.now))
    store.put("dd", parts[2])
    n += sum(len(p) for p in parts)
    return {"ops": n, "generate_s": time.perf_counter() - t0}


def _pass(
    m: Machine, cfg: MmtestsConfig, chunk: Callable[[int], np.ndarray | None], gfp: int, progress: Callable[[], None]
) -> dict[str, Any]:
    held: list[int] = []
    c0 = m.counters()
    t0 = time.perf_counter()
    n = cfg.attempts()
    for j in range(n):
        c = chunk(j)
        if c is None:
            m.advance(cfg.interval_s())
        else:
            m.replay(c, outcomes=False)
        p = m.alloc(cfg.order, gfp)
        if p is not None:
            held.append(p)
        progress()
    ceiling = m.highorder_ceiling(cfg.order, gfp)
    if len(held) > ceiling:
        raise InvariantError(f"{len(held)} order-{cfg.order} blocks held but the ceiling counted {ceiling}")
    for p in held:
        m.free(p)
    c1 = m.counters()
    return {
        "order": cfg.order,
        "attempted": n,
        "success": len(held),
        "failed": n - len(held),
        "percent": round(100.0 * len(held) / n, 1),
        "ceiling": ceiling,
        "pgmigrate_success": c1["pgmigrate_success"] - c0["pgmigrate_success"],
        "pgsteal": c1["pgsteal"] - c0["pgsteal"],
        "compact_stall": c1["compact_stall"] - c0["compact_stall"],
        "compact_fail": c1["compact_fail"] - c0["compact_fail"],
        "compact_migrate_scanned": c1["compact_migrate_scanned"] - c0["compact_migrate_scanned"],
        "seconds": time.perf_counter() - t0,
    }


def unmovable_blocks(m: Machine, order: int) -> int:
    """Aligned blocks of ``order`` holding at least one allocated unmovable page
    (an allocation of ``MIGRATE_UNMOVABLE`` mobility, whatever the allocator):
    what neither reclaim nor compaction can empty."""
    pm = np.asarray(m.page_map())
    n = pm.shape[0] >> order
    hit = (pm[: n << order] == PM_TYPE0 + MIGRATE_UNMOVABLE).reshape(n, 1 << order)
    return int(hit.any(axis=1).sum())


def run_variant(name: str, cfg: MmtestsConfig, chunks: Chunks, progress: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run one variant on the generated load; returns its results."""
    tick = progress or (lambda: None)
    # the working sets of --resident are those of a machine without swap
    # (docs/compaction.md); the builds' anonymous memory then stays too
    # and today's kernel: no 2.6.11 reclaim_mapped rule (the split LRU replaced it)
    m = Machine(layout=cfg.layout, mem=cfg.mem, swap=not cfg.resident, mapped_rule=False, max_objects=LOAD_MAX_OBJECTS, **VARIANTS[name])
    gfp = _gfp.parse(cfg.gfp)
    t0 = time.perf_counter()
    for chunk in chunks.group("warmup"):
        m.replay(chunk, outcomes=False)
    out: dict[str, Any] = {}
    for p in (1, 2):
        out[f"pass{p}"] = _pass(m, cfg, lambda j, p=p: chunks.get(f"pass{p}_{j:06d}"), gfp, tick)
    for chunk in chunks.group("wait"):
        m.replay(chunk, outcomes=False)
    m.replay(chunks.get("kill"), outcomes=False)
    m.replay(chunks.get("drop"), outcomes=False)
    m.replay(chunks.get("dd"), outcomes=False)
    unmovable = unmovable_blocks(m, cfg.order)
    out["at_rest"] = _pass(m, cfg, lambda j: None, gfp, tick)
    out["at_rest"]["unmovable_blocks"] = unmovable
    m.check()
    counters = m.counters()
    for pas in PASSES:
        r = out[pas]
        r["migrated_per_success"] = round(r["pgmigrate_success"] / r["success"], 1) if r["success"] else None
    out["counters"] = {k: counters[k] for k in COUNTERS}
    out["seconds"] = time.perf_counter() - t0
    return out


def run(cfg: MmtestsConfig, *, processes: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Run every variant of ``cfg`` (in parallel processes); the results as a dict."""
    cfg.validate()
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(cfg.variants) * 3 * cfg.attempts(), desc="stress-highalloc", unit="attempt", leave=False)
    gen, results = run_variants(
        run_variant, cfg.variants, cfg, lambda store: generate_load(cfg, store), processes=processes, bar=bar
    )
    if bar is not None:
        bar.close()
    return {
        "mode": "mmtests stress-highalloc",
        "seed": cfg.seed,
        "config": asdict(cfg),
        "schedule": cfg.schedule(),
        "attempts": cfg.attempts(),
        "builds": cfg.load_builds(),
        "interval_s": cfg.interval_s(),
        "load_ops": gen["ops"],
        "generate_s": gen["generate_s"],
        "variants": {n: results[n] for n in cfg.variants},
        "wall_s": time.perf_counter() - t0,
    }


def _nic_note(cfg: dict[str, Any]) -> str:
    n = cfg.get("nic_rings", 0)
    return f", {n} NIC rx ring{'s' if n > 1 else ''} at {cfg['nic_rx_pps']:g} pps" if n else ""


def format_report(res: dict[str, Any]) -> str:
    """mmtests' stress-highalloc table: success per pass in percent, the
    variants side by side, and the compaction work behind them."""
    names = list(res["variants"])
    w = max(14, *(len(n) + 2 for n in names))
    cfg = res["config"]
    lines = [
        f"kmm highalloc --mmtests: {cfg['layout']} {cfg['mem']}, {res.get('builds', cfg['builds'])} x make -j{cfg['jobs']}"
        f"{' + updatedb' if cfg['updatedb'] else ''}"
        f"{', no swap + resident working sets' if cfg.get('resident') else ''}"
        f"{_nic_note(cfg)}, warm-up {cfg['warmup_s']:g} s after the copies; per pass "
        f"{res['attempts']} order-{cfg['order']} {cfg['gfp']} attempts ({cfg['percent']:g}% of memory) "
        f"at {cfg['rate_mb_s']:g} MB/s, seed {res['seed']}",
        "",
        f"{'':<28}" + "".join(f"{n:>{w}}" for n in names),
    ]
    rows = [
        ("Success 1 (%)", "pass1", "percent"),
        ("Success 2 (%)", "pass2", "percent"),
        ("Success 3 at rest (%)", "at_rest", "percent"),
        ("Success 3 at rest", "at_rest", "success"),
        ("Ceiling 3 at rest", "at_rest", "ceiling"),
        ("Unmovable blocks at rest", "at_rest", "unmovable_blocks"),
        ("Migrated/success 1", "pass1", "migrated_per_success"),
        ("Migrated/success 3", "at_rest", "migrated_per_success"),
    ]
    for label, pas, key in rows:
        vals = [res["variants"][n][pas][key] for n in names]
        lines.append(f"{label:<28}" + "".join(f"{'-' if v is None else v:>{w}}" for v in vals))
    lines.append("")
    for key in ("compact_stall", "compact_success", "compact_fail", "compact_daemon_wake", "compact_migrate_scanned",
                "compact_free_scanned", "pgmigrate_success", "pageblock_fallback", "pgsteal", "allocstall"):
        lines.append(f"{key:<28}" + "".join(f"{res['variants'][n]['counters'][key]:>{w}}" for n in names))
    lines.append("")
    lines.append(f"load: {res['load_ops']:,} trace ops generated in {res['generate_s']:.1f} s; total wall time {res['wall_s']:.1f} s")
    return "\n".join(lines) + "\n"
