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
        "102403f6ab1994e25a64a1e59efd771ac8695523be64b8d81ff9b14c53d20120", 910_188,
    ),
    "v19 preset, seed 3": (
        lambda: stress(HighallocConfig.from_preset("v19", seed=3), 8.0, 2.5),
        "852bfcfdc5302fd0e6b2c72b2a23fd94392e2aa243de1f692ab33f1875871366", 913_355,
    ),
    "x86_64 2 GiB, load scaled to RAM, seed 1": (
        lambda: stress(HighallocConfig(layout="x86_64", mem="2GiB", seed=1), 8.0, 4.0),
        "5fc5a18aa1ab49e3c283296685b8e1554644ac73728cc755968c92458ddbabd6", 904_181,
    ),
    "one build of a small tree, seed 5": (
        build, "e4b9180cae9877bcda4cfff64a37ba3a15cc02e73b850d011d6d3a246e4b951b", 581_480,
    ),
    "system + fio + THP workers + NIC rings, seed 2": (
        thp_fio_nic, "026e2d81d2d214200ad0e0af707e4ea7a994161f4dc44b9ddf1a583a865513c3", 577_527,
    ),
    "updatedb + 2 builds into make, seed 7": (
        two_builds, "ed47ff60d1b5440cd47638c185d2bf5505077f7cb0d34b6440f7b3bca3e50406", 1_274_981,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_trace_digest_unchanged(case: str) -> None:
    make, want, n = CASES[case]
    got, got_n = digest(make())
    assert got_n == n
    assert got == want
