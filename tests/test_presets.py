"""Presets of ``kmm highalloc`` (issue 12), the load that fits the machine, and
``min_free_kbytes``."""

from __future__ import annotations

import dataclasses

import kmm
import numpy as np
import pytest
from kmm import presets
from kmm.highalloc import HighallocConfig, resolve_config, run
from kmm.workloads import load_for_memory

#: what a post's setup may fix; everything else is a model parameter shared by all
SETUP_FIELDS = {
    "oom", "builds", "jobs", "warmup_s", "attempts", "attempts_rest", "min_free_kbytes", "fallback_reserve", "updatedb",
    "cpus",
}


def test_every_published_table_has_a_preset() -> None:
    assert list(presets.PRESETS) == ["v7", "v8", "v10", "v12", "v14", "v19", "v19-reply", "v20"]
    assert presets.DEFAULT_PRESET == "v7"


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_a_preset_sets_only_its_posts_setup(name: str) -> None:
    p = presets.get(name)
    assert set(p.config) <= SETUP_FIELDS, set(p.config) - SETUP_FIELDS
    cfg = HighallocConfig.from_preset(name)
    cfg.validate()
    assert cfg.preset == name
    default = HighallocConfig()
    for f in dataclasses.fields(HighallocConfig):
        if f.name not in p.config and f.name != "preset":
            assert getattr(cfg, f.name) == getattr(default, f.name), f.name
    for pct in (*p.under_load, *p.at_rest):
        assert pct is None or 0 <= pct <= 100


def test_presets_follow_the_posts() -> None:
    assert HighallocConfig.from_preset("v7").fallback_reserve == 0.0
    assert HighallocConfig.from_preset("v8").fallback_reserve == pytest.approx(0.10)
    v14 = HighallocConfig.from_preset("v14")
    assert (v14.builds, v14.jobs, v14.warmup_s) == (4, 4, 180.0)
    v19 = HighallocConfig.from_preset("v19")
    assert (v19.builds, v19.jobs, v19.warmup_s) == (6, 2, 60.0)
    reply = HighallocConfig.from_preset("v19-reply")
    assert reply.rest_attempts() == 300
    assert reply.min_free_kbytes == 1536 * 1024 // 8
    # only the reply names its machine's CPUs (a quad Xeon)
    assert reply.cpus == 4 and reply.machine_kwargs("vanilla")["nr_cpus"] == 4
    assert all(HighallocConfig.from_preset(n).cpus == 1 for n in presets.PRESETS if n != "v19-reply")


def test_unknown_preset_and_keys_are_benchmark_errors() -> None:
    with pytest.raises(kmm.BenchmarkError, match="v99"):
        presets.get("v99")
    with pytest.raises(kmm.BenchmarkError, match="unknown highalloc config keys"):
        resolve_config({"bogus": 1}, preset="v8")
    with pytest.raises(kmm.BenchmarkError, match="dict"):
        resolve_config(HighallocConfig(), preset="v8")


def test_run_takes_a_preset_and_dict_overrides_and_reports_the_full_config() -> None:
    over = {"mem": "512MiB", "builds": 1, "warmup_s": 6.0, "attempts": 4, "attempts_rest": 6, "variants": ["vanilla", "antifrag"]}
    res = run(over, preset="v19-reply", processes=1)
    cfg = res["config"]
    assert cfg["preset"] == "v19-reply" and cfg["jobs"] == 2 and cfg["min_free_kbytes"] == 196608
    assert set(cfg) == {f.name for f in dataclasses.fields(HighallocConfig)}
    for v in res["variants"].values():
        assert v["under_load"]["attempted"] == 4
        assert v["at_rest"]["attempted"] == 6
    # the fallback reserve goes to the antifrag kernel only
    c = resolve_config(over, preset="v8")
    assert c.machine_kwargs("antifrag")["fallback_reserve"] == pytest.approx(0.10)
    assert "fallback_reserve" not in c.machine_kwargs("vanilla")


def test_cli_preset_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from kmm.cli import main

    with pytest.raises(SystemExit) as e:
        main(["highalloc", "--preset", "v99"])
    assert e.value.code == 2
    assert main(["highalloc", "--preset", "v8", "--quick"]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--quick" in err


def test_the_load_fits_the_machine() -> None:
    sizes = [2**30, 3 * 2**29, 3 * 2**30, 4 * 2**30]
    loads = [load_for_memory(s) for s in sizes]
    tree = kmm.workloads.tree.kernel_tree(seed=0)
    for s, (trees, files) in zip(sizes, loads):
        # trees worth about 1.5x RAM, within half a tree; updatedb walks their files
        assert abs(trees * tree.bytes - 1.5 * s) <= tree.bytes / 2 + 1
        assert files == trees * tree.files
    assert [t for t, _ in loads] == sorted(t for t, _ in loads)
    # outside presets the config sizes the load; a preset keeps its post's
    assert HighallocConfig(mem="4GiB").resolved().builds == loads[-1][0]
    assert HighallocConfig.from_preset("v7", mem="4GiB").resolved().builds == 7


def test_a_64g_load_builds_its_trees_in_slots() -> None:
    from kmm.workloads.stress import BUILD_SLOTS

    cfg = HighallocConfig(layout="x86_64", mem="64GiB")
    cfg.validate()
    cfg = cfg.resolved()
    assert cfg.builds == load_for_memory(64 * 2**30)[0] > BUILD_SLOTS
    load = kmm.workloads.stress_highalloc_load(
        builds=cfg.builds, jobs=cfg.jobs, seed=cfg.seed, updatedb_files=cfg.updatedb_files
    )
    builds = [d for d in load.describe() if d["kind"] == "kernel_build"]
    assert len(builds) == cfg.builds
    # every tree but the main one is copied, one after another
    copies = sorted(d["copy_start_s"] for d in builds if d["copy_from"])
    assert len(copies) == cfg.builds - 1 and len(set(copies)) == len(copies)
    # never more than BUILD_SLOTS makes at once, and the slots fill
    made = [d for d in builds if d["make_start_s"] is not None]
    edges = sorted([(d["make_end_s"], -1) for d in made] + [(d["make_start_s"], 1) for d in made])
    running = peak = 0
    for _, e in edges:
        running += e
        peak = max(peak, running)
    assert peak == BUILD_SLOTS
    # its first window generates
    first = load.run_until(1.0)
    assert first.shape[0] > 0 and load.now == 1.0


def test_min_free_kbytes_sets_the_lowmem_min_watermarks() -> None:
    auto = kmm.Machine(layout="x86_32", mem="1536MiB")
    m = kmm.Machine(layout="x86_32", mem="1536MiB", min_free_kbytes=196608)
    low = [z for z in m.zone_stats() if z.zone != "HighMem"]
    total = sum(z.min for z in low)
    assert 196608 // 4 - len(low) <= total <= 196608 // 4
    assert total > sum(z.min for z in auto.zone_stats() if z.zone != "HighMem")
    hi = [(a.min, b.min) for a, b in zip(auto.zone_stats(), m.zone_stats()) if a.zone == "HighMem"]
    assert all(a == b for a, b in hi)
    with pytest.raises(kmm.ConfigError, match="min_free_kbytes"):
        kmm.Machine(layout="x86_32", mem="64MiB", min_free_kbytes=10**6)


def _page_trace(ops: list[tuple[int, int, int]]) -> np.ndarray:
    """(op, obj, pid) records of order-0 GFP_KERNEL pages."""
    t = kmm.empty_trace(len(ops))
    for i, (op, obj, pid) in enumerate(ops):
        t[i]["op"], t[i]["obj"], t[i]["gfp"], t[i]["pid"], t[i]["tgid"] = op, obj, kmm.GFP_KERNEL, pid, pid
    return t


def test_an_idle_cpus_per_cpu_pages_stay_until_a_drain() -> None:
    """Pages freed by a task on CPU 1 stay on CPU 1's lists while CPU 0 runs
    (2.6.11 drains no other CPU's lists on a failed allocation), and count in
    zone_stats' pcp; drain_pcp returns them."""
    m = kmm.Machine(layout="x86_32", mem="256MiB", nr_cpus=2)
    ops = [(kmm.OP_ALLOC, i, 1) for i in range(8)] + [(kmm.OP_FREE, i, 1) for i in range(8)]
    m.replay(_page_trace(ops))
    pcp = sum(z.pcp for z in m.zone_stats())
    assert pcp >= 8
    m.advance(1.0)  # kswapd runs on CPU 0
    assert m.alloc(10, kmm.GFP_KERNEL) is not None
    assert sum(z.pcp for z in m.zone_stats()) == pcp
    assert m.drain_pcp() == pcp
    assert sum(z.pcp for z in m.zone_stats()) == 0
    m.check()
    one = kmm.Machine(layout="x86_32", mem="256MiB")
    one.replay(_page_trace(ops))
    assert sum(z.pcp for z in one.zone_stats()) == pcp


def test_cpus_are_checked() -> None:
    from kmm.cli import main

    for bad in (0, 17):
        with pytest.raises(kmm.ConfigError, match="nr_cpus"):
            kmm.Machine(layout="x86_32", mem="64MiB", nr_cpus=bad)
        with pytest.raises(kmm.BenchmarkError, match="cpus"):
            HighallocConfig(cpus=bad).validate()
    assert main(["highalloc", "--cpus", "0", "--quick"]) != 0
