"""The generated traces, byte for byte: sha256 digests of small traces stored
here, computed on the generator before its emission was made faster (issue
15). A change to the emission path must keep every digest; a change to a
model (its parameters, its structure, a new event kind) changes the traces on
purpose and updates the digests it changes in the same commit, saying why."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pytest
from kmm import workloads as wl
from kmm.highalloc import HighallocConfig
from kmm.workloads import nic


def digest(parts: list[np.ndarray]) -> tuple[str, int]:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.tobytes())
    return h.hexdigest(), sum(p.shape[0] for p in parts)


def stress(cfg: HighallocConfig, until: float, step: float) -> list[np.ndarray]:
    """The load of a highalloc config (sized to its machine as a run sizes it):
    chunks to ``until``, one off-grid step, the stop and the cache drop."""
    cfg = cfg.resolved()
    load = wl.stress_highalloc_load(
        builds=cfg.builds, jobs=cfg.jobs, updatedb=cfg.updatedb, seed=cfg.seed,
        updatedb_files=cfg.updatedb_files,
    )
    parts = list(load.chunks(until, step))
    parts.append(load.run_until(until + 0.25))
    parts.append(load.stop())
    parts.append(load.drop_caches())
    return parts


def build() -> list[np.ndarray]:
    load = wl.kernel_build(4, seed=5, layout=wl.kernel_tree(files=3_000, units=120, headers=300, seed=3))
    return [*load.chunks(12.0, 1.7), load.stop(), load.drop_caches()]


def thp_fio_nic() -> list[np.ndarray]:
    mem = 256 << 20
    load = wl.combine(
        wl.system(seed=2),
        wl.fio_writers(mem, duration=6.0, seed=2),
        wl.thp_workers(mem, start=2.0, round_s=1.0, rounds=3, seed=2),
        nic.rx_rings(2, rx_pps=5000, seed=2),
    )
    return [*load.chunks(6.0, 1.0), load.stop()]


def two_builds() -> list[np.ndarray]:
    load = wl.stress_highalloc_load(builds=2, jobs=4, seed=7)
    return [*load.chunks(14.0, 3.5), load.stop(), load.drop_caches()]


CASES: dict[str, tuple[Callable[[], list[np.ndarray]], str, int]] = {
    "v7 preset, seed 0": (
        lambda: stress(HighallocConfig.from_preset("v7"), 8.0, 3.0),
        "60bd36ad10d3fc3c60259b0d7190e5ee8677826b1c786e246f3d66eb8e58004b", 910_692,
    ),
    "v19 preset, seed 3": (
        lambda: stress(HighallocConfig.from_preset("v19", seed=3), 8.0, 2.5),
        "296f713f9fb364bac686bb4c4a88e50c20e0c7f3bc84cc3b1e03c73b13831b96", 913_859,
    ),
    "x86_64 2 GiB, load scaled to RAM, seed 1": (
        lambda: stress(HighallocConfig(layout="x86_64", mem="2GiB", seed=1), 8.0, 4.0),
        "52b6913c10bd4a6b1ca14dc4ee282f25e5d06094aaaa65399bf8de7fd6770775", 904_685,
    ),
    "one build of a small tree, seed 5": (
        build, "e4b9180cae9877bcda4cfff64a37ba3a15cc02e73b850d011d6d3a246e4b951b", 581_480,
    ),
    "system + fio + THP workers + NIC rings, seed 2": (
        thp_fio_nic, "9e412068720d63e18a0addab53a051252576a9d7cd26c765bb3ee274b8095526", 578_031,
    ),
    "updatedb + 2 builds into make, seed 7": (
        two_builds, "3956f0ec98d804e7393ca42b4de335e98dbf02d2c1972ae5900dbd09e7f5f0e2", 1_275_485,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_trace_digest_unchanged(case: str) -> None:
    make, want, n = CASES[case]
    got, got_n = digest(make())
    assert got_n == n
    assert got == want
