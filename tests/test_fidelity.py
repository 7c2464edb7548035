"""The shape of the 2005 result (issue 12), on a small configuration.

The shape criteria: under load antifrag gets at least twice vanilla and at
least 15 points more; at rest at least 20 points more; active freeing never
below antifrag; success <= ceiling <= limit. The last two hold; the first two
do not yet on small machines (``docs/fidelity.md`` has the measured table and
why), so they are strict expected failures: they turn into errors the day the
model meets them, and must then become plain tests.
"""

from __future__ import annotations

import pytest
from kmm.highalloc import HighallocConfig, run

CONFIGS = {
    "quick-x86_32-1GiB-s0": HighallocConfig.quick(seed=0),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def result(request: pytest.FixtureRequest) -> dict:
    cfg = CONFIGS[request.param]
    cfg.variants = ["vanilla", "antifrag", "antifrag+active"]
    return run(cfg, processes=2)


def pct(res: dict, variant: str, pas: str) -> float:
    return res["variants"][variant][pas]["percent"]


def test_success_ceiling_limit_are_ordered(result: dict) -> None:
    for v in result["variants"].values():
        for pas in ("under_load", "at_rest"):
            p = v[pas]
            assert p["success"] <= p["ceiling"] <= p["limit"], (pas, p)


def test_active_freeing_never_below_antifrag(result: dict) -> None:
    for pas in ("under_load", "at_rest"):
        assert pct(result, "antifrag+active", pas) >= pct(result, "antifrag", pas)


@pytest.mark.xfail(
    strict=True,
    reason="issue 12: on the 1 GiB quick machine antifrag gets 0 of 40 under load (vanilla 1; attempts from 73.6 s, "
    "the builds' heaps stay where they were faulted)",
)
def test_under_load_antifrag_doubles_vanilla(result: dict) -> None:
    a, v = pct(result, "antifrag", "under_load"), pct(result, "vanilla", "under_load")
    assert a >= 2 * v and a >= v + 15


@pytest.mark.xfail(
    strict=True,
    reason="issue 12: on the 1 GiB quick machine both get 50-68% at rest (seed 0: vanilla 26, antifrag 27 of 40, attempts "
    "from 73.6 s: 2.5 points apart)",
)
def test_at_rest_antifrag_20_points_above_vanilla(result: dict) -> None:
    assert pct(result, "antifrag", "at_rest") >= pct(result, "vanilla", "at_rest") + 20


# -- kmm highalloc --seeds -------------------------------------------------------


def test_seed_stats_are_the_sample_statistics() -> None:
    from kmm.highalloc import seed_stats

    s = seed_stats([10.0, 20.0, 60.0])
    assert (s["mean"], s["min"], s["max"]) == (30.0, 10.0, 60.0)
    assert s["sd"] == pytest.approx((((20**2) + (10**2) + (30**2)) / 2) ** 0.5)
    assert seed_stats([5.0])["sd"] == 0.0


def test_run_seeds_runs_each_seed_as_run_does() -> None:
    from dataclasses import replace

    from kmm.highalloc import run_seeds

    cfg = HighallocConfig(
        mem="512MiB",
        layout="x86_64",
        builds=1,
        warmup_s=12.0,
        attempts=10,
        seed=3,
        variants=["vanilla", "antifrag"],
    )
    res = run_seeds(cfg, 2, processes=1)
    assert res["seeds"] == [3, 4]
    one = run(replace(cfg, seed=4), processes=1)
    for name in cfg.variants:
        assert (
            res["runs"][1]["variants"][name]["at_rest"]["success"]
            == one["variants"][name]["at_rest"]["success"]
        )
        for pas in ("under_load", "at_rest"):
            got = [r["variants"][name][pas]["percent"] for r in res["runs"]]
            st = res["summary"][name][pas]["percent"]
            assert st["mean"] == pytest.approx(sum(got) / 2)
            assert (st["min"], st["max"]) == (min(got), max(got))


def test_seeds_option_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    from kmm.cli import main

    assert main(["highalloc", "--quick", "--no-progress", "--seeds", "0"]) == 2
    assert "seeds" in capsys.readouterr().err
