"""kmm.plot: the memory diagram and free-list histograms (rendered with Agg into tmp files)."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import kmm
from kmm import plot, procfs
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.image import imread

DATA = Path(__file__).parent / "data"


def png_size(path: Path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def fill(m: kmm.Machine, n: int = 6000, seed: int = 0) -> None:
    """Allocate a mix of types and orders, free some: a used, somewhat fragmented machine."""
    rng = np.random.default_rng(seed)
    gfps = [kmm.gfp.parse(g) for g in ("GFP_KERNEL", "GFP_HIGHUSER", "GFP_KERNEL|__GFP_KERNRCLM")]
    t = kmm.empty_trace(n)
    t["op"] = kmm.OP_ALLOC
    t["obj"] = np.arange(n)
    t["order"] = rng.integers(0, 3, n)
    t["gfp"] = np.array(gfps, dtype=np.uint32)[rng.integers(0, 3, n)]
    frees = kmm.empty_trace(n // 2)
    frees["op"] = kmm.OP_FREE
    frees["obj"] = rng.choice(n, n // 2, replace=False)
    m.replay(np.concatenate([t, frees]), outcomes=False)


@pytest.fixture(scope="module")
def machine() -> kmm.Machine:
    m = kmm.Machine(layout="x86_32", mem="64MiB", allocator="antifrag")
    fill(m)
    return m


def test_page_map_png_size_colours_and_pixels(machine, tmp_path):
    path = tmp_path / "map.png"
    assert plot.save_page_map(machine, path) == str(path)
    fig = plot.page_map(machine)
    w, h = (fig.get_size_inches() * fig.dpi).round().astype(int)
    assert png_size(path) == (w, h)
    rows = machine.nr_pages // 1024  # 64 MiB = 16384 pages = 16 rows of 1024 pages
    assert rows == 16 and w >= 1024 + 100
    img = imread(path)[:, :, :3]
    colours = {tuple(px) for px in img.reshape(-1, 3)[::7]}
    assert len(colours) > 5
    # the map occupies exactly width x rows pixels: compare interior pixels with page_map()
    ax = fig.axes[0]
    bbox = ax.get_position()
    x0 = round(bbox.x0 * w)
    y0 = round((1 - bbox.y1) * h)
    # every map pixel is one page, in its state's colour (no frame, no overlay)
    palette = np.array([to_rgb(plot.PAGE_MAP_COLOURS[name]) for name in kmm.PAGE_MAP_NAMES])
    want = palette[machine.page_map().reshape(rows, 1024)]
    region = img[y0 : y0 + rows, x0 : x0 + 1024]
    exact = np.all(np.abs(region - want) < 0.01, axis=-1)
    assert exact.mean() > 0.999


def test_page_map_legend_counts_and_zone_labels(machine):
    fig = plot.page_map(machine)
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    counts = np.bincount(machine.page_map(), minlength=len(kmm.PAGE_MAP_NAMES))
    for name, count in zip(kmm.PAGE_MAP_NAMES, counts):
        assert f"{name}  ({count} pages)" in legend_texts
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert [lab.split("\n")[0] for lab in labels] == [s.zone for s in machine.zone_stats()]
    # the Normal zone starts at 16 MiB: row 4 of 1024-page rows; a boundary line is drawn there
    ys = [line.get_ydata()[0] for line in fig.axes[0].lines]
    assert 3.5 in ys


def test_page_map_mobility_names():
    m = kmm.Machine(layout="x86_32", mem="32MiB", allocator="mobility")
    fill(m, 2000)
    texts = " ".join(t.get_text() for t in plot.page_map(m).legends[0].get_texts())
    assert "Movable" in texts and "Unmovable" in texts and "UserRclm" not in texts


def test_page_map_groups_pages_on_big_machines(tmp_path):
    m = kmm.Machine(layout="x86_64", mem="8GiB", nodes=2)
    fig = plot.page_map(m, max_rows=256)
    # 8 GiB = 2**21 pages; rows of 1024 pixels; 2**21 / 1024 / 256 = 8 pages per pixel
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (256, 1024)
    assert "8 pages per pixel" in fig.axes[0].get_xlabel()
    labels = [t.get_text().split("\n")[0] for t in fig.axes[0].texts]
    assert labels == ["Node 0 DMA", "Node 0 DMA32", "Node 1 Normal"]
    path = tmp_path / "big.png"
    fig.savefig(path, dpi=fig.dpi)
    assert png_size(path)[1] == round(fig.get_size_inches()[1] * fig.dpi)


def test_group_codes_mode_and_ties():
    codes = np.array([0, 0, 3, 3, 5, 5, 5, 0, 1, 1, 1, 1], dtype=np.uint8)
    # group 0,0,3,3: tie between free and KernNoRclm -> the pinned page wins
    # group 5,5,5,0: UserRclm is the majority;  group 1,1,1,1: pcp
    assert plot._group_codes(codes, 4, 7).tolist() == [3, 5, 1]
    assert plot._group_codes(codes, 1, 7) is codes


def test_page_map_from_array_with_zones_and_ax():
    pm = np.zeros(4096, dtype=np.uint8)
    pm[:100] = kmm.PM_RESERVED
    pm[2048:2100] = kmm.PM_USERRCLM
    fig = Figure()
    ax = fig.add_subplot()
    out = plot.page_map(
        pm, ax=ax, width=512, zones=[(0, "DMA", 0, 2048), (0, "Normal", 2048, 2048)], legend=False
    )
    assert out is fig
    img = ax.images[0].get_array()
    assert img.shape == (8, 512)
    assert (
        img[0, 0] == kmm.PM_RESERVED and img[4, 0] == kmm.PM_USERRCLM and img[7, 511] == kmm.PM_FREE
    )
    assert [t.get_text().split("\n")[0] for t in ax.texts] == ["DMA", "Normal"]
    # a last partial row is padded with the "beyond the end" code
    img2 = plot.page_map(np.zeros(1000, dtype=np.uint8)).axes[0].images[0].get_array()
    assert (
        img2.shape == (1, 1024)
        and img2[0, 999] == kmm.PM_FREE
        and img2[0, 1000] == len(kmm.PAGE_MAP_NAMES)
    )


@pytest.mark.parametrize(
    "source, kwargs, match",
    [
        (np.zeros((4, 4), dtype=np.uint8), {}, "1-D"),
        (np.zeros(0, dtype=np.uint8), {}, "non-empty"),
        (np.full(10, 9, dtype=np.uint8), {}, "page codes must be in"),
        (np.zeros(10), {}, "integers"),
        (np.zeros(10, dtype=np.uint8), {"width": 0}, "width"),
        (np.zeros(10, dtype=np.uint8), {"pages_per_pixel": 0}, "pages_per_pixel"),
        (np.zeros(10, dtype=np.uint8), {"zones": [("DMA",)]}, "zones must be"),
        ("not a map", {}, "page"),
    ],
)
def test_page_map_bad_input(source, kwargs, match):
    with pytest.raises(kmm.ConfigError, match=match):
        plot.page_map(source, **kwargs)


def bar_heights(ax) -> np.ndarray:
    """Total bar height per x position (stacked bars add up)."""
    xs = {}
    for p in ax.patches:
        x = round(p.get_x() + p.get_width() / 2)
        xs[x] = xs.get(x, 0) + p.get_height()
    return np.array([xs[k] for k in sorted(xs)])


def test_histogram_machine_by_type(machine, tmp_path):
    fig = plot.free_area_histogram(machine, by_type=True)
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == len(machine.zone_stats())
    fa = machine.free_area()
    for ax, st in zip(visible, machine.zone_stats()):
        assert ax.get_title() == f"zone {st.zone}"
        np.testing.assert_array_equal(bar_heights(ax), fa[0, machine.zone_names.index(st.zone)])
        assert len(ax.patches) == 11 * len(machine.type_names)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == machine.type_names
    path = tmp_path / "hist.png"
    fig.savefig(path)
    w, h = png_size(path)
    assert (w, h) == tuple((fig.get_size_inches() * fig.dpi).round().astype(int))
    assert len({tuple(px) for px in imread(path)[:, :, :3].reshape(-1, 3)[::5]}) > 3


def test_histogram_pages_weight(machine):
    fig = plot.free_area_histogram(machine, weight="pages", log=True)
    ax = fig.axes[1]
    normal = machine.free_area()[0, machine.zone_names.index("Normal")]
    np.testing.assert_array_equal(bar_heights(ax), normal * (1 << np.arange(11)))
    assert ax.get_yscale() == "symlog"


def test_histogram_real_data():
    pti = procfs.parse((DATA / "pagetypeinfo_numa_cma_mixed.txt").read_text())
    fig = plot.free_area_histogram(pti)
    visible = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in visible] == [
        "Node 0, zone DMA",
        "Node 0, zone DMA32",
        "Node 0, zone Normal",
        "Node 1, zone Normal",
    ]
    np.testing.assert_array_equal(bar_heights(visible[3]), pti.buddyinfo().nr_free[1, 2])
    assert "capped" in fig._suptitle.get_text()
    bi = procfs.parse((DATA / "buddyinfo_x86_32_2005.txt").read_text())
    fig = plot.free_area_histogram(bi)
    assert len([a for a in fig.axes if a.get_visible()]) == 3 and not fig.legends


def test_histogram_arrays_and_ax(machine):
    fa = machine.free_area()
    fig = plot.free_area_histogram(fa, zone_names=machine.zone_names)
    assert len([a for a in fig.axes if a.get_visible()]) == 2
    fb = machine.free_area(by_type=True)
    fig = plot.free_area_histogram(fb, zone_names=machine.zone_names, type_names=machine.type_names)
    assert len(fig.legends) == 1
    one = np.zeros((1, 3, 11), dtype=np.int64)
    one[0, 1, 3] = 5
    user_fig = Figure()
    ax = user_fig.add_subplot()
    assert plot.free_area_histogram(one, ax=ax, zone_names=["DMA", "Normal", "HighMem"]) is user_fig
    assert bar_heights(ax)[3] == 5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weight": "bytes"}, "weight"),
        ({"zone_names": None}, "zone_names"),
        ({"zone_names": ["A"]}, "zone_names"),
    ],
)
def test_histogram_bad_input(machine, kwargs, match):
    kw = {"zone_names": machine.zone_names} | kwargs
    with pytest.raises(kmm.ConfigError, match=match):
        plot.free_area_histogram(machine.free_area(), **kw)


def test_histogram_more_errors(machine):
    with pytest.raises(kmm.ConfigError, match="type_names"):
        plot.free_area_histogram(machine.free_area(by_type=True), zone_names=machine.zone_names)
    with pytest.raises(kmm.ConfigError, match="one zone"):
        plot.free_area_histogram(machine, ax=Figure().add_subplot())
    with pytest.raises(kmm.ConfigError, match="no populated zone"):
        plot.free_area_histogram(np.zeros((1, 3, 11), dtype=np.int64), zone_names=["a", "b", "c"])
    with pytest.raises(kmm.ParseError):
        plot.free_area_histogram(np.full((1, 3, 11), -1), zone_names=["a", "b", "c"])


def test_missing_matplotlib_gives_install_hint(monkeypatch, machine):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(plot.PlotDependencyError, match=r"pip install kmm\[plot\]") as e:
        plot.page_map(machine)
    assert isinstance(e.value, ImportError) and isinstance(e.value, kmm.KmmError)
    with pytest.raises(ImportError):
        plot.free_area_histogram(machine)
