"""When the attempts start: both scripts sleep (the warm-up) from the end of
their copy loop, not from t=0 (docs/workloads.md, "When the attempts start");
and mmtests' steps after pass 2: the sleeps, the kill, dd + cat + rm."""

from __future__ import annotations

import numpy as np
import pytest
from kmm import Machine, mmtests
from kmm import workloads as W
from kmm.errors import BenchmarkError, ConfigError
from kmm.highalloc import HighallocConfig, generate_load
from kmm.trace import OP_ALLOC, OP_FREE, OP_TICK, OP_TOUCH
from kmm.workloads.dd import dd_cat_rm


class Store:
    def __init__(self) -> None:
        self.chunks: dict[str, np.ndarray] = {}

    def put(self, name: str, chunk: np.ndarray) -> None:
        self.chunks[name] = chunk

    def ticks_us(self, prefix: str) -> int:
        return sum(int(c["obj"][c["op"] == OP_TICK].sum()) for n, c in self.chunks.items() if n.startswith(prefix))


@pytest.mark.parametrize("builds", [0, 1, 2, 4])
def test_copies_done_is_when_the_main_tree_starts_building(builds: int) -> None:
    seed = 3
    done = W.copies_done_s(builds, seed=seed)
    if builds <= 1:
        assert done == 0.0
        return
    d = [s for s in W.stress_highalloc_load(builds=builds, jobs=2, seed=seed).describe() if s["kind"] == "kernel_build"]
    copies = [s for s in d if s["copy_from"]]
    main = [s for s in d if not s["copy_from"]]
    assert len(copies) == builds - 1 and len(main) == 1
    # the loop ends when the last copy does; the main tree builds from then
    assert done == pytest.approx(max(s["copy_start_s"] for s in copies) + W.kernel_tree(seed=seed).bytes / 35e6, abs=1e-5)
    assert main[0]["make_start_s"] == pytest.approx(done, abs=1e-5)
    # at the copy rate: twice as fast, half the time
    assert W.copies_done_s(builds, seed=seed, copy_mb_s=70.0) == pytest.approx(done / 2, abs=1e-5)


def test_copies_done_checks_its_arguments() -> None:
    with pytest.raises(ConfigError):
        W.copies_done_s(-1)
    with pytest.raises(ConfigError):
        W.copies_done_s(2, copy_mb_s=0.0)


def test_highalloc_attempts_start_a_warm_up_after_the_copies() -> None:
    cfg = HighallocConfig(mem="256MiB", builds=3, warmup_s=2.0, attempts=3, seed=1, variants=["vanilla"])
    start = cfg.attempts_start_s()
    assert start == pytest.approx(W.copies_done_s(3, seed=1) + 2.0)
    assert start > 14.0  # two 7.3 s copies before the sleep
    st = Store()
    generate_load(cfg, st)
    # the warm-up's ticks end where the attempts start; each step is one interval
    assert st.ticks_us("warmup") == round(start * 1e6)
    for i in range(cfg.attempts):
        assert st.ticks_us(f"step{i:06d}") == pytest.approx(cfg.interval_s * 1e6, abs=1)
    # one tree: no copy, the sleep from t=0 as before
    one = HighallocConfig(mem="256MiB", builds=1, warmup_s=2.0)
    assert (one.copies_done_s(), one.attempts_start_s()) == (0.0, 2.0)


def test_highalloc_result_records_the_schedule() -> None:
    from kmm.highalloc import format_report, run

    cfg = HighallocConfig(mem="256MiB", layout="x86_64", builds=2, warmup_s=1.0, attempts=2, variants=["vanilla"])
    res = run(cfg, processes=1)
    assert res["copies_done_s"] == pytest.approx(W.copies_done_s(2))
    assert res["attempts_start_s"] == pytest.approx(res["copies_done_s"] + 1.0)
    assert res["config"]["warmup_s"] == 1.0  # the script's sleep, as given
    assert f"warm-up 1 s after the copies (attempts from {res['attempts_start_s']:.1f} s)" in format_report(res)


def test_the_default_run_sleeps_180_s_after_its_six_copies() -> None:
    cfg = HighallocConfig.from_preset("v7")
    assert cfg.warmup_s == 180.0
    assert cfg.copies_done_s() == pytest.approx(6 * W.kernel_tree(seed=0).bytes / 35e6, abs=1e-5)
    # a machine of 64 GiB: the 405 trees' copies take 49 minutes before the sleep
    big = HighallocConfig(layout="x86_64", mem="64GiB")
    assert big.resolved().builds == 405 and big.copies_done_s() > 2900


def test_mmtests_schedule_is_the_scripts() -> None:
    cfg = mmtests.MmtestsConfig()
    assert (cfg.warmup_s, cfg.pass_sleep_s, cfg.kill_wait_s, cfg.dd) == (300.0, 5.0, 180.0, True)
    s = cfg.schedule()
    pass_s = cfg.attempts() * cfg.interval_s()
    assert s["copies_done_s"] == pytest.approx(W.copies_done_s(cfg.load_builds()))
    assert s["pass1_start_s"] == pytest.approx(s["copies_done_s"] + 300.0)
    assert s["pass2_start_s"] == pytest.approx(s["pass1_start_s"] + pass_s + 5.0)
    assert s["kill_s"] == pytest.approx(s["pass2_start_s"] + pass_s + 5.0 + 180.0)
    for bad in ("pass_sleep_s", "kill_wait_s"):
        with pytest.raises(BenchmarkError, match=bad):
            mmtests.MmtestsConfig(**{bad: -1.0}).validate()
    with pytest.raises(BenchmarkError, match="dd"):
        mmtests.MmtestsConfig(dd=1).validate()


def test_mmtests_load_follows_the_schedule() -> None:
    cfg = mmtests.MmtestsConfig(mem="128MiB", percent=25, warmup_s=2.0, builds=2, jobs=2, kill_wait_s=3.0)
    s = cfg.schedule()
    st = Store()
    generate_load = mmtests.generate_load
    generate_load(cfg, st)
    step = cfg.interval_s()
    n = cfg.attempts()
    assert st.ticks_us("warmup") == round(s["pass1_start_s"] * 1e6)
    # pass 2's first chunk carries the 5 s sleep after pass 1
    assert st.ticks_us("pass2_000000") == pytest.approx((5.0 + step) * 1e6, abs=2)
    assert st.ticks_us("pass1") + st.ticks_us("pass2") == pytest.approx((2 * n * step + 5.0) * 1e6, abs=2 * n)
    assert st.ticks_us("wait") == pytest.approx(8.0 * 1e6, abs=2)
    # dd + cat + rm of a file of free -m's total, in ids the load never used
    dd = st.chunks["dd"]
    pages = mmtests.memtotal_mib(cfg.layout, cfg.mem) << 8
    for op in (OP_ALLOC, OP_TOUCH, OP_FREE):
        assert int((dd["op"] == op).sum()) == pages
    used = np.concatenate([c["obj"][c["op"] != OP_TICK] for n_, c in st.chunks.items() if n_ != "dd"])
    assert int(dd["obj"][dd["op"] == OP_ALLOC].min()) > int(used.max())
    no = Store()
    mmtests.generate_load(mmtests.MmtestsConfig(mem="128MiB", percent=25, warmup_s=2.0, builds=2, jobs=2,
                                                kill_wait_s=3.0, dd=False), no)
    assert no.chunks["dd"].shape[0] == 0


def test_dd_cat_rm_records() -> None:
    t = dd_cat_rm(1000, 50, rate_mb_s=4.096)  # one page a millisecond
    ops = t["op"]
    assert [int((ops == op).sum()) for op in (OP_ALLOC, OP_TOUCH, OP_FREE, OP_TICK)] == [1000, 1000, 1000, 2000]
    # write, then read, then delete, each in page order, at most 1 ms a tick
    for op in (OP_ALLOC, OP_TOUCH, OP_FREE):
        assert (t["obj"][ops == op] == np.arange(50, 1050)).all()
    assert (t["obj"][ops == OP_TICK] == 1000).all()
    assert np.nonzero(ops == OP_TOUCH)[0].min() > np.nonzero(ops == OP_ALLOC)[0].max()
    assert np.nonzero(ops == OP_FREE)[0].min() > np.nonzero(ops == OP_TOUCH)[0].max()
    # 35 MB/s: 8-9 pages a millisecond, the pages of a millisecond before its tick
    t = dd_cat_rm(100, 0)
    w = t[: np.nonzero(t["op"] == OP_TOUCH)[0][0]]
    ms_of = np.cumsum(w["op"] == OP_TICK)[w["op"] == OP_ALLOC]
    assert (ms_of == (np.arange(100) * 4096 * 1000) // 35_000_000).all()
    with pytest.raises(ConfigError):
        dd_cat_rm(0, 0)
    with pytest.raises(ConfigError):
        dd_cat_rm(10, (1 << 32) - 5)


def test_dd_of_ram_on_a_machine_reclaims_its_own_pages_and_frees_them_all() -> None:
    m = Machine(layout="x86_64", mem="64MiB")
    pages = 64 << 8
    m.replay(dd_cat_rm(pages, 0), outcomes=False)
    c = m.counters()
    assert c["pgsteal"] > 0 and c["refaults"] > 0  # more than fits: reclaim, and cat reads back
    assert c["alloc"] == pages + c["refaults"]
    assert c["free"] + c["free_reclaimed"] == pages
    m.check()
