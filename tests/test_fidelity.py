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


@pytest.mark.xfail(strict=True, reason="issue 12: on the 1 GiB quick machine antifrag gets ~0 under load (ceiling ~113)")
def test_under_load_antifrag_doubles_vanilla(result: dict) -> None:
    a, v = pct(result, "antifrag", "under_load"), pct(result, "vanilla", "under_load")
    assert a >= 2 * v and a >= v + 15


@pytest.mark.xfail(strict=True, reason="issue 12: on the 1 GiB quick machine both get ~15% at rest")
def test_at_rest_antifrag_20_points_above_vanilla(result: dict) -> None:
    assert pct(result, "antifrag", "at_rest") >= pct(result, "vanilla", "at_rest") + 20
