"""Summary statistics of a sweep, and the mmtests compare-style table.

Per group (every config field but the seed, and the split columns such as the
pass) and per compared value (the variant): n, arithmetic mean, sample
standard deviation, the 95% confidence interval of the mean (Student's t with
n - 1 degrees of freedom), min and max; and each variant's difference from the
baseline variant in percent, printed the way mmtests' compare-mmtests.pl
prints it: fixed-width columns, the value, then ``(+12.34%)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

STATS = ("n", "mean", "sd", "ci_low", "ci_high", "min", "max")
#: row labels in the printed table (mmtests names the arithmetic mean ``Amean``)
LABELS = {"n": "n", "mean": "Amean", "sd": "Stddev", "ci_low": "CI95-low", "ci_high": "CI95-high", "min": "Min", "max": "Max"}


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    y = t * t / (df + t * t)
    if y < 0.5:
        # small |t|: df / (df + t^2) would round to 1 and lose t; the
        # complement I_y(1/2, df/2) keeps it
        tail = 0.5 * (1.0 - _betainc(0.5, df / 2.0, y))
    else:
        tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (``0.975`` for a two-sided 95% interval), by bisection."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def describe(values: Sequence[float]) -> dict[str, float]:
    """n, mean, sd (sample), the 95% CI of the mean, min and max; NaN where undefined."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(xs)
    nan = float("nan")
    if n == 0:
        return {"n": 0, "mean": nan, "sd": nan, "ci_low": nan, "ci_high": nan, "min": nan, "max": nan}
    mean = math.fsum(xs) / n
    if n > 1:
        sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
        half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
        lo, hi = mean - half, mean + half
    else:
        sd, lo, hi = nan, nan, nan
    return {"n": n, "mean": mean, "sd": sd, "ci_low": lo, "ci_high": hi, "min": min(xs), "max": max(xs)}


def summarize(df: Any, metric: str, compare: str, *, by: Sequence[str] = (), baseline: str | None = None, ignore: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Per group (the config columns, less ``seed``, ``compare`` and ``ignore``, then ``by``) and per value
    of ``compare``: :func:`describe` of ``metric``, plus ``diff_pct`` of each statistic from
    the baseline's (the first value of ``compare`` when ``baseline`` is None).

    ``df`` is a sweep's table (:func:`kmm.sweep.load`); failed cells are left out.
    Returns one dict per group: ``{"group": {...}, "metric", "baseline", "columns": {value: stats}}``.
    """
    from ..errors import SweepError

    if metric not in df.columns:
        raise SweepError(f"no column {metric!r} in the results (columns: {', '.join(map(str, df.columns))})")
    if compare not in df.columns:
        raise SweepError(f"no column {compare!r} in the results")
    ok = df[df["status"] == "done"] if "status" in df.columns else df
    for c in by:
        if c not in df.columns:
            raise SweepError(f"no column {c!r} in the results")
    group_cols = [c for c in _config_columns(df) if c not in ("seed", compare, *ignore, *by)] + list(by)
    values = list(dict.fromkeys(ok[compare].tolist()))
    if baseline is not None and baseline not in values:
        raise SweepError(f"baseline {baseline!r} is not a value of {compare} (values: {', '.join(map(str, values))})")
    base = baseline if baseline is not None else (values[0] if values else None)
    out = []
    groups = ok.groupby(group_cols, sort=False, dropna=False) if group_cols else [((), ok)]
    for gkey, g in groups:
        gkey = gkey if isinstance(gkey, tuple) else (gkey,)
        cols: dict[str, dict[str, float]] = {}
        for v in values:
            cols[str(v)] = describe(g.loc[g[compare] == v, metric].tolist())
        b = cols.get(str(base))
        for st in cols.values():
            st_diff = {}
            for k in STATS[1:]:
                st_diff[k] = _pct(st[k], b[k]) if b is not None else float("nan")
            st["diff_pct"] = st_diff  # type: ignore[assignment]
        out.append({"group": {c: _plain(x) for c, x in zip(group_cols, gkey)}, "metric": metric, "compare": compare, "baseline": str(base), "columns": cols})
    return out


def _plain(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x


def _pct(v: float, base: float) -> float:
    if math.isnan(v) or math.isnan(base):
        return float("nan")
    if base == 0:
        return 0.0 if v == 0 else math.copysign(math.inf, v)
    return 100.0 * (v - base) / abs(base)


def _config_columns(df: Any) -> list[str]:
    """The config columns of a sweep table: those listed in its ``attrs``, else every column."""
    cols = df.attrs.get("kmm.sweep.config_columns")
    return [c for c in cols if c in df.columns] if cols else list(df.columns)


def _num(v: float, w: int) -> str:
    if isinstance(v, float) and math.isnan(v):
        return f"{'-':>{w}}"
    return f"{v:>{w}.2f}"


def _diff(p: float) -> str:
    if math.isnan(p):
        return "(    -   )"
    if math.isinf(p):
        return f"({'+inf' if p > 0 else '-inf':>7}%)"
    return f"({p:+7.2f}%)"


def format_compare(summary: list[dict[str, Any]], *, title: str = "") -> str:
    """The summary as mmtests compare tables: one block per group, statistics as rows,
    the compared values as columns, each figure with its difference from the baseline."""
    lines: list[str] = []
    keys = list(summary[0]["group"]) if summary else []
    varying = [k for k in keys if len({repr(s["group"].get(k)) for s in summary}) > 1]
    fixed = [k for k in keys if k not in varying]
    if fixed:
        lines.append("config: " + " ".join(f"{k}={summary[0]['group'][k]}" for k in fixed))
        lines.append("")
    for s in summary:
        names = list(s["columns"])
        w = max(22, *(len(n) + 2 for n in names)) if names else 22
        head = " ".join(f"{k}={s['group'][k]}" for k in varying)
        lines.append(f"{title + ' ' if title else ''}{s['metric']}" + (f"  {head}" if head else "") + f"  (baseline {s['baseline']})")
        lines.append(f"{'':<12}" + "".join(f"{n:>{w}}" for n in names))
        for k in STATS:
            row = f"{LABELS[k]:<12}"
            for n in names:
                st = s["columns"][n]
                if k == "n":
                    row += f"{st['n']:>{w}}"
                else:
                    row += f"{_num(st[k], w - 11)} {_diff(st['diff_pct'][k])}"
            lines.append(row)
        lines.append("")
    return "\n".join(lines)
