"""kmm sweep: grids, statistics, the results directory, Dask runs (retries, resume, determinism), bad input."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import kmm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kmm import sweep
from kmm.sweep import grid, stats, store
from kmm.sweep import highalloc as ha_cell

pd = pytest.importorskip("pandas")
pytest.importorskip("distributed")

from sweep_helpers import TINY, TINY_ARGS, TINY_REST, deterministic, kmm_cli

# ---- grids ----------------------------------------------------------------------------------


def test_parse_ints_ranges_and_lists():
    assert grid.parse_ints("seeds", "0-3") == [0, 1, 2, 3]
    assert grid.parse_ints("seeds", "0-9:3") == [0, 3, 6, 9]
    assert grid.parse_ints("seeds", "0-2,7, 9") == [0, 1, 2, 7, 9]
    assert grid.parse_ints("seeds", "5") == [5]


@pytest.mark.parametrize("text, words", [("5-3", "empty range"), ("", "empty value"), ("1,,2", "empty value"), ("x", "not an integer"), ("0-4:0", "step")])
def test_parse_ints_refuses(text, words):
    with pytest.raises(kmm.SweepError, match=words):
        grid.parse_ints("seeds", text)


def test_expand_is_the_product_with_seeds_innermost():
    cells = grid.expand({"mem": ["1GiB", "2GiB"], "layout": ["x86_32", "x86_64"], "seed": [0, 1]}, "f")
    got = [(c.config["mem"], c.config["layout"], c.seed) for c in cells]
    want = [(m, layout, s) for m in ("1GiB", "2GiB") for layout in ("x86_32", "x86_64") for s in (0, 1)]
    assert got == want
    assert len({c.key for c in cells}) == len(cells)
    # the key is a function of what the cell computes only
    again = grid.expand([{"layout": "x86_32", "mem": "1GiB", "seed": 0}], "f")
    assert again[0].key == cells[0].key
    assert grid.expand([{"layout": "x86_32", "mem": "1GiB", "seed": 0}], "g")[0].key != cells[0].key


@pytest.mark.parametrize("g, words", [
    ({"mem": []}, "no values"),
    ({"mem": [object()]}, "not a plain value"),
    ({"seed": [-1]}, "seed must be"),
    ({"seed": ["0"]}, "seed must be"),
    ([], "no cells"),
    ({"x": [math.nan]}, "not finite"),
])
def test_expand_refuses(g, words):
    with pytest.raises(kmm.SweepError, match=words):
        grid.expand(g, "f")


# ---- statistics -----------------------------------------------------------------------------


@pytest.mark.parametrize("df, q", [(1, 12.706204736), (2, 4.302652730), (4, 2.776445105), (9, 2.262157163), (30, 2.042272456), (1000, 1.962339081)])
def test_t_quantile_matches_published_tables(df, q):
    assert stats.t_quantile(0.975, df) == pytest.approx(q, rel=1e-8)


@settings(max_examples=60, deadline=None)
@given(st.floats(-50, 50, allow_nan=False))
def test_t_cdf_closed_forms(t):
    # df 1 is the Cauchy distribution, df 2 has a closed form too
    assert stats.t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
    assert stats.t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


def test_describe_by_hand():
    d = stats.describe([2, 4, 4, 4, 5, 5, 7, 9])
    assert d["n"] == 8 and d["mean"] == 5 and d["min"] == 2 and d["max"] == 9
    assert d["sd"] == pytest.approx(math.sqrt(32 / 7))
    half = 2.364624252 * math.sqrt(32 / 7) / math.sqrt(8)
    assert d["ci_low"] == pytest.approx(5 - half) and d["ci_high"] == pytest.approx(5 + half)
    one = stats.describe([3.0])
    assert one["n"] == 1 and one["mean"] == 3.0 and math.isnan(one["sd"]) and math.isnan(one["ci_low"])


def _toy_table():
    rows = []
    for seed, (a, b) in enumerate([(10, 11), (20, 24), (30, 33)]):
        rows.append({"mem": "1GiB", "seed": seed, "status": "done", "variant": "base", "success": a})
        rows.append({"mem": "1GiB", "seed": seed, "status": "done", "variant": "new", "success": b})
    rows.append({"mem": "1GiB", "seed": 3, "status": "failed", "variant": None, "success": None})
    df = pd.DataFrame(rows)
    df.attrs["kmm.sweep.config_columns"] = ["mem", "seed"]
    return df


def test_summarize_and_compare_style():
    s = stats.summarize(_toy_table(), "success", "variant")
    assert len(s) == 1 and s[0]["baseline"] == "base" and s[0]["group"] == {"mem": "1GiB"}
    base, new = s[0]["columns"]["base"], s[0]["columns"]["new"]
    assert base["n"] == 3 and base["mean"] == 20 and new["mean"] == pytest.approx(68 / 3)
    assert new["diff_pct"]["mean"] == pytest.approx(100 * (68 / 3 - 20) / 20)
    text = stats.format_compare(s, title="toy")
    lines = [ln for ln in text.splitlines() if ln]
    assert lines[0] == "config: mem=1GiB"
    amean = next(ln for ln in lines if ln.startswith("Amean"))
    assert amean == f"{'Amean':<12}{20:>11.2f} (  +0.00%){68 / 3:>11.2f} ({100 * (68 / 3 - 20) / 20:+7.2f}%)"
    assert "( +13.33%)" in amean
    body = lines[2:]
    assert len({len(ln) for ln in body}) == 1  # fixed-width columns
    with pytest.raises(kmm.SweepError, match="baseline"):
        stats.summarize(_toy_table(), "success", "variant", baseline="nope")
    with pytest.raises(kmm.SweepError, match="no column"):
        stats.summarize(_toy_table(), "nope", "variant")


# ---- the results directory ------------------------------------------------------------------


def test_load_refuses_what_is_not_a_sweep(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pytest.raises(kmm.SweepError, match="no such results file"):
        sweep.load(tmp_path)
    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "results.parquet")
    with pytest.raises(kmm.SweepError, match="not a kmm sweep"):
        sweep.load(tmp_path)
    (tmp_path / "x.parquet").write_text("hello")
    with pytest.raises(kmm.SweepError, match="not a Parquet file"):
        sweep.load(tmp_path / "x.parquet")


def test_store_refuses_another_kind(tmp_path):
    s = store.Store(tmp_path / "a", "highalloc", "m:f")
    s.open()
    with pytest.raises(kmm.SweepError, match="another kind"):
        store.Store(tmp_path / "a", "xmit", "m:g")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(kmm.SweepError, match="holds no kmm sweep"):
        store.Store(tmp_path / "b", "highalloc", "m:f")


# ---- highalloc's cell -----------------------------------------------------------------------


def test_highalloc_config_is_generic_over_highalloc_parameters():
    cfg = ha_cell.make_config({"quick": True, "mem": "512MiB", "layout": "x86_64", "attempts": 3}, 7)
    assert (cfg.mem, cfg.layout, cfg.attempts, cfg.seed, cfg.warmup_s) == ("512MiB", "x86_64", 3, 7, 30.0)
    with pytest.raises(kmm.SweepError, match="no parameter 'bogus'"):
        ha_cell.validate({"bogus": 1})
    with pytest.raises(kmm.SweepError, match="layout"):
        ha_cell.validate({"layout": "sparc"})
    with pytest.raises(kmm.SweepError, match="mem"):
        ha_cell.validate({"mem": "lots"})


def test_highalloc_preset_is_passed_through_or_refused_clearly():
    if "preset" in ha_cell.parameters():
        with pytest.raises(kmm.SweepError, match="preset"):
            ha_cell.validate({"preset": "no-such-preset"})
    else:
        with pytest.raises(kmm.SweepError, match="has no presets"):
            ha_cell.validate({"preset": "v7"})


def test_highalloc_cell_is_a_pure_function_of_config_and_seed():
    a = ha_cell.run_cell(TINY, 3)
    b = ha_cell.run_cell(TINY, 3)
    strip = lambda rows: [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]
    assert strip(a.rows) == strip(b.rows)
    assert a.extra == b.extra
    assert sorted(a.arrays) == sorted(b.arrays) and all((a.arrays[k] == b.arrays[k]).all() for k in a.arrays)
    assert {(r["variant"], r["phase"]) for r in a.rows} == {(v, p) for v in kmm.highalloc.DEFAULT_VARIANTS for p in ("under_load", "at_rest")}
    for r in a.rows:
        att = a.extra[r["variant"]][r["phase"]]["attempt_success"]
        assert len(att) == r["attempted"] == 6 and sum(att) == r["success"]


def test_highalloc_cell_keeps_its_page_maps_in_memory_and_they_match_the_files(tmp_path, monkeypatch):
    # a cell killed by Ctrl-C must leave no temporary directory behind: its
    # page maps never touch the disk; they are the ones --page-maps DIR writes
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rec = ha_cell.run_cell(TINY, 3)
    assert list(tmp_path.iterdir()) == []
    assert sorted(rec.arrays) == sorted(
        f"page_map|{v}|{w}" for v in kmm.highalloc.DEFAULT_VARIANTS for w in ("before", "after")
    )
    d = tmp_path / "maps"
    d.mkdir()
    kmm.highalloc.run(ha_cell.make_config(TINY, 3), processes=2, page_maps=str(d))
    for v in kmm.highalloc.DEFAULT_VARIANTS:
        assert (rec.arrays[f"page_map|{v}|before"] == np.load(d / f"{v}-before.npy")).all()
        assert (rec.arrays[f"page_map|{v}|after"] == np.load(d / f"{v}-under_load.npy")).all()


# ---- bad input on the command line: a clear error before any cell runs ---------------------


@pytest.mark.parametrize("args, words", [
    (["highalloc", "--seeds", "5-3"], "empty range"),
    (["highalloc", "--mem", "1GiB,,2GiB"], "empty value"),
    (["highalloc", "--layout", "sparc"], "layout"),
    (["highalloc", "--workers", "0"], "--workers"),
    (["xmit", "--drivers", "nosuch"], "unknown driver"),
])
def test_cli_bad_input(tmp_path, args, words):
    out = tmp_path / "out"
    r = kmm_cli("sweep", *args, "--out", str(out))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("kmm sweep: SweepError:") and words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_cli_unknown_parameter(tmp_path):
    r = kmm_cli("sweep", "highalloc", "--colour", "blue", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "unrecognized arguments: --colour" in r.stderr
    assert not (tmp_path / "o").exists()


def test_cli_unreachable_scheduler(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "o"
    r = kmm_cli("sweep", "highalloc", *TINY_ARGS, "--scheduler", f"tcp://127.0.0.1:{port}", "--out", str(out))
    assert r.returncode == 2, r.stderr
    assert "cannot reach the Dask scheduler" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_cli_results_of_another_kind(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "o"
    store.Store(out, "xmit", "kmm.sweep.xmit:run_cell").open()
    r = kmm_cli("sweep", "highalloc", *TINY_ARGS, "--out", str(out))
    assert r.returncode == 2 and "another kind" in r.stderr, r.stderr
    assert not any((out / "cells").iterdir())
    pq.write_table(pa.table({"success": [1]}), tmp_path / "other.parquet")
    r = kmm_cli("report", str(tmp_path / "other.parquet"), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 2 and "not a kmm sweep" in r.stderr and not (tmp_path / "r.html").exists()


# ---- Dask runs ------------------------------------------------------------------------------


def toy_cell(config, seed):
    """A cell that fails on demand: ``fail`` raises every time, ``die_once`` kills its worker the
    first time (a marker file remembers), else returns a small record."""
    if config.get("fail"):
        raise RuntimeError(f"cell {seed} fails on purpose")
    marker = config.get("die_once")
    if marker and not os.path.exists(f"{marker}.{seed}"):
        Path(f"{marker}.{seed}").write_text("died")
        os._exit(3)
    return {"value": seed * config["k"], "pid": os.getpid()}


def test_run_retries_once_records_failures_and_goes_on(tmp_path):
    marker = str(tmp_path / "died")
    g = [{"k": 2, "seed": 0}, {"k": 2, "fail": True, "seed": 1}, {"k": 3, "die_once": marker, "seed": 2}, {"k": 3, "seed": 3}]
    logs: list[str] = []
    df = sweep.run(toy_cell, g, out=tmp_path / "o", workers=2, log=logs.append)
    assert any("dashboard: http://" in m for m in logs)
    assert df.attrs["kmm.sweep.counts"] == {"done": 3, "failed": 1, "skipped": 0}
    by_seed = {int(r["seed"]): r for r in df.to_dict("records")}
    assert by_seed[1]["status"] == "failed" and "fails on purpose" in by_seed[1]["error"]
    assert by_seed[2]["status"] == "done" and by_seed[2]["value"] == 6  # its worker died once, then it ran
    assert Path(f"{marker}.2").exists()
    rec = json.loads((tmp_path / "o" / "cells" / f"{grid.expand(g, grid.fn_name(toy_cell))[1].key}.json").read_text())
    assert rec["status"] == "failed" and rec["attempts"] == 2
    # a rerun skips the finished cells and runs the failed one again
    logs.clear()
    df2 = sweep.run(toy_cell, g, out=tmp_path / "o", workers=1, log=logs.append)
    assert df2.attrs["kmm.sweep.counts"] == {"done": 0, "failed": 1, "skipped": 3}
    assert any("skipping 3 of 4 cells" in m for m in logs)
    loaded = sweep.load(tmp_path / "o")
    assert list(loaded["value"].fillna(-1)) == [0, -1, 6, 9]


def test_cli_sweep_writes_parquet_csv_and_summary(tiny_sweep):
    out, r = tiny_sweep
    df = sweep.load(out)
    assert len(df) == 2 * 2 * 4 * 2  # mems x seeds x variants x phases
    assert set(df["status"]) == {"done"}
    for col in ("seed", "mem", "layout", "quick", "variant", "phase", "success", "attempted", "ceiling", "limit", "pgscan", "pgsteal", "allocstall", "pass_s"):
        assert col in df.columns, col
    assert (out / "results.csv").exists() and len(pd.read_csv(out / "results.csv")) == len(df)
    assert "dashboard: http://" in r.stderr
    assert "Amean" in r.stdout and "(baseline vanilla)" in r.stdout
    assert "4 cells done, 0 failed, 0 skipped" in r.stdout
    # the summary's means are the table's
    g = df[(df["mem"] == "320MiB") & (df["phase"] == "under_load") & (df["variant"] == "antifrag+active")]
    block = r.stdout.split("mem=320MiB phase=under_load")[1]
    amean = next(ln for ln in block.splitlines() if ln.startswith("Amean"))
    assert f"{g['success'].mean():.2f}" in amean.split("(")[-2]


def test_cli_rerun_skips_and_json(tiny_sweep):
    out, _ = tiny_sweep
    r = kmm_cli("sweep", "highalloc", "--quick", "--mem", "256MiB,320MiB", *TINY_REST, "--seeds", "0-1", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert "skipping 4 of 4 cells finished in an earlier run" in r.stderr
    assert "dashboard" not in r.stderr  # nothing to run: no cluster
    j = json.loads(r.stdout)
    assert j["counts"] == {"done": 0, "failed": 0, "skipped": 4}
    blocks = {(b["group"]["mem"], b["group"]["phase"]): b for b in j["summary"]}
    assert blocks[("256MiB", "at_rest")]["columns"]["vanilla"]["n"] == 2


def test_results_identical_whatever_the_number_of_workers(tiny_sweep, tmp_path):
    out, _ = tiny_sweep
    local = sweep.load(out)
    one = sweep.run(ha_cell.run_cell, {"quick": [True], "mem": ["256MiB", "320MiB"], "warmup_s": [6.0], "attempts": [6], "builds": [3], "seed": [0, 1]},
                    workers=1, log=None)
    pd.testing.assert_frame_equal(deterministic(one), deterministic(local), check_dtype=False)


def test_xmit_sweep(tmp_path):
    out = tmp_path / "x"
    r = kmm_cli("sweep", "xmit", "--modes", "xmit_lock", "--drivers", "fixed_2005,modern", "--packets", "2000", "--seeds", "0-1", "--workers", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    df = sweep.load(out)
    assert len(df) == 4 and df["verified"].all() and set(df["driver"]) == {"fixed_2005", "modern"}
    assert "pps" in r.stdout and "(baseline fixed_2005)" in r.stdout
    r = kmm_cli("report", str(out / "results.parquet"), "-o", str(tmp_path / "x.html"))
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "x.html").read_text()
    assert page.count('<table class="summary"') == 1 and 'data-variant="modern"' in page and "buddyinfo" not in page


def test_a_highalloc_preset_parameter_reaches_the_config(monkeypatch):
    """When HighallocConfig takes ``preset=``, a sweep passes it through like any other field
    (a stand-in subclass plays the highalloc that has presets)."""
    import dataclasses

    from kmm import highalloc

    @dataclasses.dataclass
    class WithPresets(highalloc.HighallocConfig):
        preset: str | None = None

        def validate(self) -> None:
            super().validate()
            if self.preset not in (None, "v7", "v19"):
                raise kmm.BenchmarkError(f"unknown preset {self.preset!r}")

    monkeypatch.setattr(highalloc, "HighallocConfig", WithPresets)
    assert "preset" in ha_cell.parameters()
    assert ha_cell.make_config({"quick": True, "preset": "v19"}, 2).preset == "v19"
    with pytest.raises(kmm.SweepError, match="unknown preset 'v99'"):
        ha_cell.validate({"preset": "v99"})
