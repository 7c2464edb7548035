"""Fixtures shared by the sweep and report tests."""

from __future__ import annotations

import pytest
from sweep_helpers import TINY_REST, kmm_cli


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory):
    """``kmm sweep highalloc`` of tiny cells (2 sizes x 2 seeds) on 2 workers, through the CLI."""
    out = tmp_path_factory.mktemp("sweep") / "kmm-sweep"
    r = kmm_cli("sweep", "highalloc", "--quick", "--mem", "256MiB,320MiB", *TINY_REST, "--seeds", "0-1", "--workers", "2", "--csv", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out, r
