"""kmm report and kmm highalloc --html: one self-contained page, checked in headless Chromium."""

from __future__ import annotations

import math
import os
import re

import pytest
from kmm import sweep
from sweep_helpers import TINY_ARGS, kmm_cli

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

#: what the page's tables hold, read in the browser
TABLES_JS = """
[...document.querySelectorAll('table.summary')].map(t => ({
  metric: t.dataset.metric, group: t.dataset.group,
  cells: [...t.querySelectorAll('td')].map(td => ({variant: td.dataset.variant, stat: td.dataset.stat,
                                                    value: td.dataset.value, text: td.firstChild.textContent}))
}))
"""
IMAGES_JS = "[...document.images].map(i => ({alt: i.alt, w: i.naturalWidth, h: i.naturalHeight, complete: i.complete, src: i.src.slice(0, 22)}))"


def _no_network(text: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "the page refers to the network"
    assert "url(http" not in text and "<script" not in text
    for src in re.findall(r'<img[^>]*src="([^"]*)"', text):
        assert src.startswith("data:image/png;base64,")


@pytest.fixture(scope="module")
def browser():
    from cdp import Browser, chromium_path

    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium (.ci/run: apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    b = Browser.start()
    yield b
    b.close()


def _expected(df):
    """Per (group text, variant): the statistics of success, computed here from the results file."""
    ok = df[df["status"] == "done"]
    out = {}
    for (mem, phase, variant), g in ok.groupby(["mem", "phase", "variant"]):
        v = g["success"].astype(float)
        out[(f"mem={mem} phase={phase}", variant)] = {"n": len(v), "mean": v.mean(), "sd": v.std(ddof=1), "min": v.min(), "max": v.max()}
    return out


def test_sweep_report_in_a_browser(tiny_sweep, tmp_path, browser):
    out, _ = tiny_sweep
    page = tmp_path / "report.html"
    r = kmm_cli("report", str(out), "-o", str(page))
    assert r.returncode == 0, r.stderr
    text = page.read_text()
    _no_network(text)
    browser.open(page.as_uri())
    assert browser.errors == []
    tables = browser.evaluate(TABLES_JS)
    expected = _expected(sweep.load(out))
    seen = set()
    assert {t["metric"] for t in tables} == {"success"}
    for t in tables:
        for c in t["cells"]:
            want = expected[(t["group"], c["variant"])]
            seen.add((t["group"], c["variant"]))
            if c["stat"] == "n":
                assert int(c["text"]) == want["n"] == 2
            elif c["stat"] in want:
                assert c["text"] == f"{want[c['stat']]:.2f}", (t["group"], c)
                assert float(c["value"]) == pytest.approx(want[c["stat"]], rel=1e-12, abs=1e-12)
            elif c["stat"] in ("ci_low", "ci_high"):  # mean -/+ t(0.975, 1) sd / sqrt(2)
                half = 12.706204736 * want["sd"] / math.sqrt(2)
                bound = want["mean"] - half if c["stat"] == "ci_low" else want["mean"] + half
                assert float(c["value"]) == pytest.approx(bound, rel=1e-9, abs=1e-9)
    assert seen == set(expected)
    images = browser.evaluate(IMAGES_JS)
    alts = [i["alt"] for i in images]
    assert alts[:3] == ["points", "attempts", "buddyinfo"]
    assert sorted(alts[3:]) == sorted(f"page map {v} {w}" for v in ("vanilla", "antifrag", "mobility", "antifrag+active") for w in ("before", "after"))
    for i in images:
        assert i["complete"] and i["w"] > 0 and i["h"] > 0 and i["src"].startswith("data:image/png"), i
    shot = tmp_path / "report.png"
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_highalloc_html_in_a_browser(tmp_path, browser):
    page = tmp_path / "run.html"
    r = kmm_cli("highalloc", *TINY_ARGS, "--variants", "vanilla,antifrag", "--no-progress", "--html", str(page), "--json", str(tmp_path / "run.json"))
    assert r.returncode == 0, r.stderr
    text = page.read_text()
    _no_network(text)
    browser.open(page.as_uri())
    assert browser.errors == []
    import json

    res = json.loads((tmp_path / "run.json").read_text())
    tables = browser.evaluate(TABLES_JS)
    for t in tables:
        phase = t["group"].split("phase=")[1]
        for c in t["cells"]:
            if c["stat"] == "mean":
                assert c["text"] == f"{res['variants'][c['variant']][phase]['success']:.2f}"
    assert {t["group"] for t in tables} == {"phase=under_load", "phase=at_rest"}
    images = browser.evaluate(IMAGES_JS)
    assert len(images) == 3 + 2 * 2 and all(i["w"] > 0 and i["h"] > 0 for i in images)
    browser.screenshot(tmp_path / "run.png")
    assert (tmp_path / "run.png").stat().st_size > 10_000


def test_report_of_a_single_seed_has_no_interval(tmp_path):
    from kmm import report
    from kmm.sweep import highalloc as cell

    res = cell._ha.run(cell.make_config({"quick": True, "mem": "256MiB", "warmup_s": 2.0, "attempts": 3, "builds": 1, "variants": ["vanilla"]}, 0), processes=1)
    text = report.highalloc_report(res, {})
    _no_network(text)
    assert 'data-stat="sd" data-value="">-' in text
    assert "Page maps" not in text  # none given
