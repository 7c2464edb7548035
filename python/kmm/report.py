"""One self-contained HTML page of a sweep's (or one highalloc run's) results.

The page holds the mmtests compare-style summary tables and, drawn with
matplotlib and inlined as base64 PNG (nothing is fetched when it is viewed):
the metric per variant as one point per seed with the mean and its 95%
interval; for a highalloc sweep, the successes over the attempts of each pass,
/proc/buddyinfo per order before and after the attempts under load as a
heatmap, and the page maps before and after the attempts for one seed.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from .sweep import stats as _stats

_CSS = """
body{font-family:sans-serif;margin:1.5em;max-width:1400px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table.summary{border-collapse:collapse;margin:.6em 0 1.2em 0;font-family:monospace;font-size:.92em}
table.summary th,table.summary td{border:1px solid #ccc;padding:2px 8px;text-align:right}
table.summary th.stat{text-align:left}
.diff{color:#666}.better{color:#1a7f37}.worse{color:#c0392b}
figure{margin:.6em 0}figcaption{font-size:.9em;color:#555}
img{max-width:100%;border:1px solid #eee}
.meta{font-size:.9em;color:#555}
"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return base64.b64encode(buf.getvalue()).decode()


def _figure(fig: Any, caption: str, name: str) -> str:
    return (
        f'<figure><img alt="{html.escape(name)}" data-figure="{html.escape(name)}" '
        f'src="data:image/png;base64,{_png(fig)}"><figcaption>{html.escape(caption)}</figcaption></figure>'
    )


def _fmt(v: float) -> str:
    return "-" if isinstance(v, float) and math.isnan(v) else f"{v:.2f}"


def _summary_table(block: dict[str, Any], varying: list[str]) -> str:
    names = list(block["columns"])
    head = " ".join(f"{k}={block['group'][k]}" for k in varying)
    out = [f'<table class="summary" data-metric="{html.escape(block["metric"])}" data-group="{html.escape(head)}">']
    out.append(f"<caption>{html.escape(block['metric'])} {html.escape(head)} (baseline {html.escape(block['baseline'])})</caption>")
    out.append("<tr><th></th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr>")
    for k in _stats.STATS:
        cells = []
        for n in names:
            st = block["columns"][n]
            v = st[k]
            if k == "n":
                cells.append(f'<td data-variant="{html.escape(n)}" data-stat="n" data-value="{v}">{v}</td>')
                continue
            d = st["diff_pct"][k]
            dtxt = "" if math.isnan(d) else (f" ({d:+.2f}%)" if math.isfinite(d) else f" ({'+' if d > 0 else '-'}inf%)")
            val = "" if math.isnan(v) else repr(float(v))
            cells.append(
                f'<td data-variant="{html.escape(n)}" data-stat="{k}" data-value="{val}">{_fmt(v)}'
                f'<span class="diff">{dtxt}</span></td>'
            )
        out.append(f'<tr><th class="stat">{_stats.LABELS[k]}</th>' + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _points_figure(df: Any, metric: str, compare: str, by: list[str], summary: list[dict[str, Any]], varying: list[str]) -> Any:
    from matplotlib.figure import Figure

    n = len(summary)
    fig = Figure(figsize=(7.5, 2.8 * n), dpi=90)
    ok = df[df["status"] == "done"] if "status" in df.columns else df
    for i, block in enumerate(summary):
        ax = fig.add_subplot(n, 1, i + 1)
        g = ok
        for k, v in block["group"].items():
            g = g[g[k] == v]
        names = list(block["columns"])
        for j, name in enumerate(names):
            sub = g[g[compare] == name]
            ys = sub[metric].astype(float).to_numpy()
            seeds = sub["seed"].to_numpy()
            xs = j + (np.argsort(np.argsort(seeds)) / max(1, len(seeds)) - 0.5) * 0.4 if len(seeds) else np.array([])
            ax.scatter(xs, ys, s=14, alpha=0.7, label=None)
            st = block["columns"][name]
            if not math.isnan(st["mean"]):
                lo = st["ci_low"] if not math.isnan(st["ci_low"]) else st["mean"]
                hi = st["ci_high"] if not math.isnan(st["ci_high"]) else st["mean"]
                ax.errorbar([j + 0.3], [st["mean"]], yerr=[[st["mean"] - lo], [hi - st["mean"]]], fmt="D", color="black", capsize=4, ms=5)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_ylabel(metric)
        ax.set_title(" ".join(f"{k}={block['group'][k]}" for k in varying) or metric, fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _attempts_figure(extras: list[dict[str, Any]], variants: list[str]) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), dpi=90)
    for i, phase in enumerate(("under_load", "at_rest")):
        ax = fig.add_subplot(1, 2, i + 1)
        for name in variants:
            runs = [np.cumsum(e[name][phase]["attempt_success"]) for e in extras if name in e and e[name][phase]["attempt_success"]]
            if not runs:
                continue
            m = min(len(r) for r in runs)
            mean = np.mean([r[:m] for r in runs], axis=0)
            ax.plot(np.arange(1, m + 1), mean, label=name)
        ax.set_xlabel("attempt")
        ax.set_ylabel("successes so far" + (f" (mean of {len(extras)} seeds)" if len(extras) > 1 else ""))
        ax.set_title(phase.replace("_", " "), fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _buddyinfo_figure(extra: dict[str, Any], variants: list[str]) -> Any:
    from matplotlib.figure import Figure

    from .procfs import parse_buddyinfo

    fig = Figure(figsize=(10, 1.6 + 1.3 * len(variants)), dpi=90)
    axes = fig.subplots(len(variants), 2, squeeze=False)
    for r, name in enumerate(variants):
        for c, when in enumerate(("before", "after")):
            bi = parse_buddyinfo(extra[name]["under_load"][f"buddyinfo_{when}"])
            labels = [f"{row.node}/{row.zone}" for row in bi.rows]
            mat = np.array([row.counts for row in bi.rows], dtype=float)
            ax = axes[r][c]
            im = ax.imshow(np.log10(mat + 1.0), aspect="auto", cmap="viridis", vmin=0)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
            ax.set_xticks(range(mat.shape[1]), [str(o) for o in range(mat.shape[1])], fontsize=7)
            ax.set_title(f"{name}, {when} the attempts", fontsize=8)
            if r == len(variants) - 1:
                ax.set_xlabel("order")
            fig.colorbar(im, ax=ax, label="log10(1+n)")
    fig.tight_layout()
    return fig


def _page_map_figures(arrays: dict[str, Any], variants: list[str], zones: Any) -> list[tuple[str, Any]]:
    from . import plot

    out = []
    for name in variants:
        for when in ("before", "after"):
            a = arrays.get(f"page_map|{name}|{when}")
            if a is None:
                continue
            fig = plot.page_map(a, zones=zones, title=f"{name}, {when} the attempts under load", max_rows=256)
            out.append((f"page map {name} {when}", fig))
    return out


def build(df: Any, records: dict[str, tuple[dict[str, Any], dict[str, Any]]], *, kind: str, metric: str, compare: str, by: list[str], title: str, baseline: str | None = None) -> str:
    """The HTML page of a table (``df``) and its cells' records (cell key -> (record, arrays))."""
    from . import plot

    plot._matplotlib()
    summary = _stats.summarize(df, metric, compare, by=by, baseline=baseline)
    keys = list(summary[0]["group"]) if summary else []
    varying = [k for k in keys if len({repr(s["group"].get(k)) for s in summary}) > 1]
    fixed = {k: summary[0]["group"][k] for k in keys if k not in varying}
    counts = df.attrs.get("kmm.sweep.counts", {})
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"]
    parts.append(f"<h1>{html.escape(title)}</h1>")
    parts.append('<p class="meta">' + html.escape(" ".join(f"{k}={v}" for k, v in fixed.items())) + "</p>")
    ok = df[df["status"] == "done"] if "status" in df.columns else df
    seeds = sorted({int(s) for s in ok["seed"].tolist()}) if len(ok) else []
    parts.append(f'<p class="meta">seeds: {html.escape(", ".join(map(str, seeds)))}; cells: {len(set(ok["cell"]))} done'
                 + (f", {counts.get('failed', 0)} failed" if counts.get("failed") else "") + "</p>")
    parts.append(f"<h2>Summary: {html.escape(metric)}</h2>")
    parts.extend(_summary_table(b, varying) for b in summary)
    if summary:
        parts.append(f"<h2>{html.escape(metric)} per {html.escape(compare)}, one point per seed</h2>")
        parts.append(_figure(_points_figure(df, metric, compare, by, summary, varying),
                             "Each point is one seed; the black diamond is the mean with its 95% confidence interval (Student's t).", "points"))
    if kind == "highalloc" and len(ok):
        parts.extend(_highalloc_sections(ok, records, [c for c in df.attrs.get("kmm.sweep.config_columns", []) if c != "seed"]))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _highalloc_sections(ok: Any, records: dict[str, tuple[dict[str, Any], dict[str, Any]]], cfg_cols: list[str]) -> list[str]:
    import pandas as pd

    from .machine import Machine

    parts = []
    first = ok.iloc[0]
    same = ok
    for c in cfg_cols:
        if c in ok.columns:
            # None and NaN (a field left to its default) equal each other
            same = same[same[c].isna()] if pd.isna(first[c]) else same[same[c] == first[c]]
    keys = list(dict.fromkeys(same["cell"].tolist()))
    variants = list(dict.fromkeys(same["variant"].tolist()))
    extras = [records[k][0]["extra"] for k in keys if k in records]
    parts.append("<h2>Successes over the attempts of a pass</h2>")
    parts.append(_figure(_attempts_figure(extras, variants), "Successful allocations so far, attempt by attempt, per variant.", "attempts"))
    k0 = keys[0]
    if k0 in records:
        rec, arrays = records[k0]
        seed = rec["seed"]
        parts.append(f"<h2>/proc/buddyinfo before and after the attempts under load (seed {seed})</h2>")
        parts.append(_figure(_buddyinfo_figure(rec["extra"], variants), "Free blocks per zone and order, log scale.", "buddyinfo"))
        if arrays:
            zones = Machine(layout=str(first["layout"]), mem=str(first["mem"])).zone_stats()
            parts.append(f"<h2>Page maps before and after the attempts under load (seed {seed})</h2>")
            for name, fig in _page_map_figures(arrays, variants, zones):
                parts.append(_figure(fig, f"{name}: one row is one order-10 block; red: unreclaimable kernel pages.", name))
    return parts


def sweep_report(path: str | Path, *, metric: str | None = None, baseline: str | None = None) -> str:
    """The HTML page of a sweep directory (or its results.parquet)."""
    from .sweep import store

    df = store.load(path)
    root = Path(df.attrs["kmm.sweep.dir"])
    kind = df.attrs["kmm.sweep"]["kind"]
    compare, by, default = ("variant", ["phase"], "success") if kind == "highalloc" else ("driver", [], "pps")
    records = {}
    if kind == "highalloc":
        for key in dict.fromkeys(df.loc[df["status"] == "done", "cell"].tolist()):
            try:
                records[key] = store.load_record(root, key)
            except (OSError, ValueError):
                continue
    return build(df, records, kind=kind, metric=metric or default, compare=compare, by=by, title=f"kmm sweep {kind}: {root}", baseline=baseline)


def highalloc_report(res: dict[str, Any], arrays: dict[str, Any]) -> str:
    """The HTML page of one ``kmm highalloc`` run (``arrays``: its page maps, keyed as a sweep cell's)."""
    from .sweep import engine, grid
    from .sweep import highalloc as cell

    rec = cell.record_of(res, arrays)
    c = grid.Cell(0, {}, int(res["seed"]), "run")
    records = {"run": {"config": {}, "seed": c.seed, "status": "done", "error": None, "rows": rec.rows, "row_config": rec.config, "extra": rec.extra}}
    df = engine.table_of([c], records)
    df.attrs["kmm.sweep.counts"] = {"done": 1, "failed": 0, "skipped": 0}
    return build(df, {"run": (records["run"], arrays)}, kind="highalloc", metric="success", compare="variant", by=["phase"], title=f"kmm highalloc, seed {res['seed']}")
