"""Benchmarks of issue 13's commands: ``kmm thpchallenge`` and ``kmm highalloc --mmtests``.

- ``thpchallenge_quick_s``: wall time of ``kmm thpchallenge --quick`` (three
  variants, kbuild fragmenter; target under 30 s on two cores).
- ``thpchallenge_<variant>_fault_huge`` / ``_fault_base``: its results, for the record.
- ``mmtests_quick_s`` (full mode only): wall time of ``kmm highalloc --mmtests --quick``.
- ``mmtests_resident_<variant>_at_rest_pct`` (full mode only): the at-rest success
  of ``kmm highalloc --mmtests --quick --percent 90 --resident`` (issue 13's
  at-rest gap on a machine without swap; ``docs/compaction.md``).
- ``mmtests_nic_<variant>_at_rest_pct`` / ``_at_rest_migrated_per_success`` /
  ``_unmovable_blocks`` (full mode only): the same with ``--nic-rings 1``, a
  NIC rx ring refilled under load and pinned at rest (``docs/compaction.md``,
  "What stays unmovable at rest, and where").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _kmm(args: list[str]) -> tuple[float, dict, float]:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "r.json"
        t0 = time.perf_counter()
        c0 = os.times()
        subprocess.run(
            [sys.executable, "-m", "kmm", *args, "--no-progress", "--json", str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        c1 = os.times()
        cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
        return time.perf_counter() - t0, json.loads(out.read_text()), cpu


def collect(quick: bool) -> dict[str, float]:
    r: dict[str, float] = {}
    wall, res, cpu = _kmm(["thpchallenge", "--quick"])
    r["thpchallenge_quick_s"] = wall
    r["thpchallenge_quick_cpu_s"] = cpu
    r["load_average_1min"] = os.getloadavg()[0]
    for name, v in res["variants"].items():
        r[f"thpchallenge_{name}_fault_huge"] = float(v["fault_huge"])
        r[f"thpchallenge_{name}_fault_base"] = float(v["fault_base"])
    if not quick:
        wall, res, cpu = _kmm(["highalloc", "--mmtests", "--quick"])
        r["mmtests_quick_s"] = wall
        for name, v in res["variants"].items():
            for pas in ("pass1", "pass2", "at_rest"):
                r[f"mmtests_{name}_{pas}"] = float(v[pas]["success"])
        wall, res, cpu = _kmm(["highalloc", "--mmtests", "--quick", "--percent", "90", "--resident"])
        r["mmtests_resident_quick_s"] = wall
        for name, v in res["variants"].items():
            r[f"mmtests_resident_{name}_at_rest_pct"] = float(v["at_rest"]["percent"])
        wall, res, cpu = _kmm(["highalloc", "--mmtests", "--quick", "--percent", "90", "--resident", "--nic-rings", "1"])
        r["mmtests_nic_quick_s"] = wall
        for name, v in res["variants"].items():
            rest = v["at_rest"]
            r[f"mmtests_nic_{name}_at_rest_pct"] = float(rest["percent"])
            if rest["migrated_per_success"] is not None:  # None: no success
                r[f"mmtests_nic_{name}_at_rest_migrated_per_success"] = float(rest["migrated_per_success"])
            r[f"mmtests_nic_{name}_unmovable_blocks"] = float(rest["unmovable_blocks"])
    return r
