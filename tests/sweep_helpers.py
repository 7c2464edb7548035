"""What the sweep and report tests share: a tiny highalloc cell and a way to run kmm."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: a highalloc cell small enough for a test (about a second) that still fragments
TINY = {"quick": True, "mem": "256MiB", "warmup_s": 6.0, "attempts": 6, "builds": 3}
TINY_REST = ["--warmup", "6", "--attempts", "6", "--builds", "3"]
TINY_ARGS = ["--quick", "--mem", "256MiB", *TINY_REST]


def kmm_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kmm", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def deterministic(df):
    """The columns a cell computes as a pure function of (config, seed): all but timings and keys."""
    cols = sorted(c for c in df.columns if c != "error" and (not c.endswith("_s") or c in TINY))
    return df[cols].reset_index(drop=True)
