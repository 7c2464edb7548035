"""``kmm/_kmm.pyi`` describes the compiled module: mypy's stubtest finds no difference."""

from __future__ import annotations

import subprocess
import sys


def test_stub_matches_the_compiled_module(tmp_path):
    # every public name both ways, every signature, @final classes, constant types
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "kmm._kmm"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
