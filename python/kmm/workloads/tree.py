"""The layout of a 2.6.11 source tree: file sizes, walk order, compile units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._args import float_arg, int_arg
from .params import PAGE


@dataclass(frozen=True)
class TreeLayout:
    """The files of a 2.6.11 source tree, as the model sees them.

    ``pages[f]``: page-cache pages of file ``f``; files ``0..units-1`` are the
    ``.c`` files a bzImage build compiles (in build order), the next
    ``headers`` files the headers they include (most popular first), the rest
    everything else (other architectures, unconfigured drivers, docs).
    ``walk_rank[f]``: position of ``f`` in a directory walk (``cp -a``, lookups).
    """

    pages: np.ndarray
    walk_rank: np.ndarray
    units: int
    headers: int
    dir_units: np.ndarray  # compiled files per directory, in build order

    @property
    def files(self) -> int:
        return int(self.pages.shape[0])

    @property
    def nr_pages(self) -> int:
        return int(self.pages.sum())

    @property
    def bytes(self) -> int:
        return self.nr_pages * PAGE


def kernel_tree(
    *,
    seed: int = 0,
    files: int = 17_000,
    median_file_kib: float = 7.0,
    file_sigma: float = 1.1,
    units: int = 1_300,
    headers: int = 1_800,
    files_per_dir: float = 12.0,
) -> TreeLayout:
    """The layout of a 2.6.11 tree: ~17,000 files, ~240 MiB of page cache.

    File sizes are log-normal (median ``median_file_kib``, sigma ``file_sigma``);
    ``units`` ``.c`` files are compiled by a bzImage build, in directories of
    about ``files_per_dir`` files.
    """
    files = int_arg("files", files, 1, 10_000_000)
    units = int_arg("units", units, 1, files)
    headers = int_arg("headers", headers, 0, files - units)
    median_file_kib = float_arg("median_file_kib", median_file_kib, 0.01, 1e6)
    file_sigma = float_arg("file_sigma", file_sigma, 0.0, 5.0)
    files_per_dir = float_arg("files_per_dir", files_per_dir, 1.0, 1e6)
    rng = np.random.default_rng([int_arg("seed", seed, 0, None), 0x7EE])
    size = median_file_kib * 1024 * np.exp(file_sigma * rng.standard_normal(files))
    pages = np.maximum(1, np.ceil(size / PAGE)).astype(np.int64)
    walk_rank = np.argsort(rng.permutation(files)).astype(np.int64)
    dirs = []
    left = units
    while left > 0:
        n = int(min(left, rng.geometric(1.0 / files_per_dir)))
        dirs.append(n)
        left -= n
    return TreeLayout(pages, walk_rank, units, headers, np.array(dirs, dtype=np.int64))
