"""Pictures of physical memory: the article's memory diagram and free-list histograms.

matplotlib is an optional extra (``pip install kmm[plot]``); it is imported
only when a function here is called.  The functions build a standalone
:class:`matplotlib.figure.Figure` (no pyplot state, no GUI backend needed)
and return it; ``fig.savefig("map.png")`` writes it.

* :func:`page_map` draws one pixel per page (or per small power-of-two group
  of pages on big machines), in rows of 1024 pages by default so that each row
  is one maximum-order (order-10, 4 MiB) block, coloured by what holds the
  page: free, per-cpu list, boot-time reserved, or the allocation type that
  owns it (KernNoRclm / KernRclm / UserRclm; Unmovable / Reclaimable / Movable
  for the mobility allocator).  Zone (and node) boundaries are drawn and
  labelled.  Fragmentation shows as rows where red pinned pages are
  sprinkled through otherwise free or reclaimable memory.
* :func:`free_area_histogram` draws nr_free per order for every zone, stacked
  per migrate type when given per-type data, for simulated and real
  (:mod:`kmm.procfs`) data alike.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._args import int_arg
from .errors import ConfigError, KmmError
from .machine import PAGE_MAP_NAMES, PAGE_SIZE

__all__ = [
    "PAGE_MAP_COLOURS",
    "TYPE_COLOURS",
    "PlotDependencyError",
    "free_area_histogram",
    "page_map",
    "save_page_map",
]

INSTALL_HINT = (
    "kmm.plot needs matplotlib: pip install kmm[plot]  (or: pip install 'matplotlib>=3.8,<4')"
)


class PlotDependencyError(KmmError, ImportError):
    """matplotlib is not installed (``pip install kmm[plot]``)."""


#: Colour of each page_map() code, indexed like :data:`kmm.PAGE_MAP_NAMES`.
PAGE_MAP_COLOURS: dict[str, str] = {
    "free": "#eeeeee",
    "pcp": "#9ecae1",
    "reserved": "#222222",
    "KernNoRclm": "#d62728",
    "KernRclm": "#ff9f1c",
    "UserRclm": "#2ca02c",
}
_BEYOND_END = "#ffffff"

#: Colour per migrate-type name (2005 names, today's names, kmm's Global/Any).
TYPE_COLOURS: dict[str, str] = {
    "KernNoRclm": "#d62728",
    "Unmovable": "#d62728",
    "KernRclm": "#ff9f1c",
    "Reclaimable": "#ff9f1c",
    "UserRclm": "#2ca02c",
    "Movable": "#2ca02c",
    "Global": "#4c72b0",
    "Any": "#4c72b0",
    "HighAtomic": "#9467bd",
    "Reserve": "#9467bd",
    "CMA": "#8c564b",
    "Isolate": "#7f7f7f",
}
_FALLBACK_COLOURS = ["#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#1f77b4"]

#: What the mobility allocator calls the 2005 types (the 2007 renaming).
_MOBILITY_NAMES = {"KernNoRclm": "Unmovable", "KernRclm": "Reclaimable", "UserRclm": "Movable"}

# draw order for ties when several codes share a pixel: the most telling wins
_TIE_PRIORITY = [3, 2, 4, 5, 1, 0]


def _matplotlib() -> Any:
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise PlotDependencyError(f"{INSTALL_HINT} ({e})") from None
    return matplotlib


def _is_machine(obj: Any) -> bool:
    return hasattr(obj, "page_map") and hasattr(obj, "zone_stats") and hasattr(obj, "free_area")


def _zone_bounds(source: Any, zones: Any) -> list[tuple[int, str, int, int]]:
    """(node, zone, start_pfn, spanned) for the boundaries to draw."""
    if zones is False or zones is None:
        return []
    if zones is True:
        if not _is_machine(source):
            return []
        return [
            (s.node, s.zone, s.start_pfn, s.spanned) for s in source.zone_stats() if s.spanned > 0
        ]
    out = []
    try:
        for z in zones:
            if hasattr(z, "start_pfn"):
                out.append((int(z.node), str(z.zone), int(z.start_pfn), int(z.spanned)))
            else:
                node, zone, start, spanned = z
                out.append((int(node), str(zone), int(start), int(spanned)))
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"zones must be True, False, or (node, zone, start_pfn, spanned) tuples "
            f"or ZoneStats: {e}"
        ) from None
    return out


def _group_codes(pm: np.ndarray, group: int, ncodes: int) -> np.ndarray:
    """The most common code of every run of ``group`` pages (ties: the most telling code)."""
    if group == 1:
        return pm
    blocks = pm.reshape(-1, group)
    order = _TIE_PRIORITY + [c for c in range(ncodes) if c not in _TIE_PRIORITY]
    counts = np.stack([(blocks == c).sum(axis=1) for c in order], axis=1)
    return np.asarray(order, dtype=pm.dtype)[counts.argmax(axis=1)]


def page_map(
    source: Any,
    *,
    ax: Any = None,
    zones: Any = True,
    width: int = 1024,
    pages_per_pixel: int | None = None,
    max_rows: int = 1024,
    legend: bool = True,
    title: str | None = None,
    dpi: int = 100,
) -> Any:
    """Draw the memory diagram of a machine (or of a ``page_map()`` array); returns the Figure.

    ``source``: a :class:`kmm.Machine` or a 1-D array of page_map codes (see
    :data:`kmm.PAGE_MAP_NAMES`).  ``width``: pixels per row (default 1024, so a
    row is one order-10 block at one page per pixel).  ``pages_per_pixel``:
    pages per pixel, default the smallest power of two that keeps the picture
    within ``max_rows`` rows; a pixel shows the most common state of its
    pages.  ``zones``: True draws the machine's zone boundaries (from
    ``zone_stats()``), False none, or a list of ``(node, zone, start_pfn,
    spanned)``.  Without ``ax`` the figure is sized so that every pixel of the
    map is exactly one pixel of the saved image at ``dpi``.
    """
    _matplotlib()
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    width = int_arg("width", width, 1, 16384)
    max_rows = int_arg("max_rows", max_rows, 1, 1 << 20)
    dpi = int_arg("dpi", dpi, 10, 1000)
    allocator = None
    if _is_machine(source):
        pm = np.asarray(source.page_map())
        allocator = getattr(source, "allocator", None)
    else:
        try:
            pm = np.asarray(source)
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"page_map needs a kmm.Machine or an array of page codes: {e}"
            ) from None
    if pm.ndim != 1 or pm.size == 0:
        raise ConfigError(
            f"page_map needs a non-empty 1-D array of page codes, got shape {pm.shape}"
        )
    if pm.dtype.kind not in "iu" or pm.dtype == bool:
        raise ConfigError(f"page codes must be integers, got dtype {pm.dtype}")
    ncodes = len(PAGE_MAP_NAMES)
    if pm.min() < 0 or pm.max() >= ncodes:
        raise ConfigError(f"page codes must be in 0..{ncodes - 1} (kmm.PAGE_MAP_NAMES)")
    pm = pm.astype(np.uint8)
    n = int(pm.size)
    if pages_per_pixel is None:
        group = 1
        while math.ceil(n / (width * group)) > max_rows:
            group *= 2
    else:
        group = int_arg("pages_per_pixel", pages_per_pixel, 1, 1 << 30)
    per_row = width * group
    rows = math.ceil(n / per_row)
    padded = np.full(rows * per_row, ncodes, dtype=np.uint8)  # code ncodes = past the end
    padded[:n] = pm
    grouped = _group_codes(padded, group, ncodes + 1)
    img = grouped.reshape(rows, width)
    bounds = _zone_bounds(source, zones)

    names = list(PAGE_MAP_NAMES)
    labels = [(_MOBILITY_NAMES.get(nm, nm) if allocator == "mobility" else nm) for nm in names]
    colours = [PAGE_MAP_COLOURS.get(nm, _FALLBACK_COLOURS[i % 5]) for i, nm in enumerate(names)]
    cmap = ListedColormap(colours + [_BEYOND_END])

    if ax is None:
        left, right, top, bottom = 110, 210 if legend else 20, 40, 50
        body_h = max(rows, 170 if legend else 1)
        fig_w, fig_h = width + left + right, body_h + top + bottom
        fig = Figure(figsize=(fig_w / dpi, fig_h / dpi), dpi=dpi)
        ax = fig.add_axes((left / fig_w, (fig_h - top - rows) / fig_h, width / fig_w, rows / fig_h))
    else:
        fig = ax.figure
    ax.imshow(
        img,
        cmap=cmap,
        vmin=-0.5,
        vmax=ncodes + 0.5,
        interpolation="nearest",
        aspect="auto",
        origin="upper",
        extent=(-0.5, width - 0.5, rows - 0.5, -0.5),
    )
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    row_bytes = per_row * PAGE_SIZE
    ax.set_xlabel(
        f"page within row ({per_row} pages = {_size(row_bytes)} per row"
        + (f", {group} pages per pixel)" if group > 1 else ", 1 pixel = 1 page)"),
        fontsize=8,
    )
    # ticks on pixel edges: 0, 1/4, ... of a row, labelled in pages
    quarters = [k for k in range(5) if width % 4 == 0 or k in (0, 4)]
    ax.set_xticks([k * width / 4 - 0.5 for k in quarters])
    ax.set_xticklabels([str(k * per_row // 4) for k in quarters], fontsize=7)
    ax.set_yticks([])
    multi_node = len({b[0] for b in bounds}) > 1
    last_label_y = -1e9
    # keep zone labels 2 text lines (about 20 px) apart, whatever the scale
    ax_px = ax.get_position().height * fig.get_figheight() * fig.dpi
    min_gap = 20.0 * rows / max(ax_px, 1.0)
    # boundaries are marked in the margins (ticks and labels), so every map pixel stays exact
    for side in ax.spines.values():
        side.set_visible(False)
    ymark = ax.get_yaxis_transform()
    for node, zone, start, spanned in sorted(bounds, key=lambda b: b[2]):
        y = start / per_row - 0.5
        for x0, x1 in ((-0.012, -0.001), (1.001, 1.012)):
            ax.plot(
                (x0, x1), (y, y), transform=ymark, clip_on=False, color="#1f1f7a", linewidth=1.2
            )
        label_y = max(y, last_label_y + min_gap)
        last_label_y = label_y
        name = f"Node {node} {zone}" if multi_node else zone
        ax.text(
            -0.015,
            label_y,
            f"{name}\n{_size(start * PAGE_SIZE)}",
            transform=ymark,
            ha="right",
            va="top",
            fontsize=7,
            color="#1f1f7a",
        )
    if legend:
        counts = np.bincount(pm, minlength=ncodes)
        handles = [
            Patch(
                facecolor=colours[c],
                edgecolor="#555555",
                linewidth=0.5,
                label=f"{labels[c]}  ({counts[c]} pages)",
            )
            for c in range(ncodes)
        ]
        bbox = ax.get_position()
        fig.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(bbox.x1 + 20 / (fig.get_figwidth() * fig.dpi), bbox.y1),
            fontsize=7,
            frameon=False,
            title="page state / owner",
            title_fontsize=8,
        )
    if title is None:
        if _is_machine(source):
            size = _size(n * PAGE_SIZE)
            title = f"{source.allocator} allocator, {source.layout}, {size}: physical memory map"
        else:
            title = f"physical memory map, {n} pages"
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    return fig


def save_page_map(source: Any, path: str | os.PathLike[str], **kwargs: Any) -> str:
    """Draw :func:`page_map` and save it to ``path`` (format from the suffix, e.g. .png, .svg)."""
    fig = page_map(source, **kwargs)
    fig.savefig(os.fspath(path), dpi=fig.dpi)
    return os.fspath(path)


def _size(nbytes: int) -> str:
    if nbytes == 0:
        return "0 MiB"
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if nbytes >= 1 << shift and nbytes % (1 << shift) == 0:
            return f"{nbytes >> shift} {unit}"
    if nbytes >= 1 << 20:
        return f"{nbytes / (1 << 20):.1f} MiB"
    return f"{nbytes} B"


def _free_areas(
    source: Any, by_type: bool, zone_names: Sequence[str] | None, type_names: Sequence[str] | None
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...] | None, np.ndarray, bool]:
    """(nr_free (nodes, zones, types|1, orders), zone names, type names|None, present, capped)."""
    from . import procfs

    if isinstance(source, procfs.BuddyInfo):
        return source.nr_free[:, :, None, :], source.zone_names, None, source.present, False
    if isinstance(source, procfs.PageTypeInfo):
        return (
            source.nr_free,
            source.zone_names,
            source.type_names,
            source.present,
            source.any_capped,
        )
    if _is_machine(source):
        names = tuple(source.zone_names)
        present = np.zeros((source.nr_nodes, len(names)), dtype=bool)
        for s in source.zone_stats():
            present[s.node, names.index(s.zone)] = True
        if by_type:
            arr = np.asarray(source.free_area(by_type=True)).astype(np.int64)
            return arr, names, tuple(source.type_names), present, False
        arr = np.asarray(source.free_area()).astype(np.int64)
        return arr[:, :, None, :], names, None, present, False
    arr = procfs._as_nr_free(source, min_ndim=3)
    if arr.ndim not in (3, 4):
        raise ConfigError(
            f"expected (nodes, zones, orders) or (nodes, zones, types, orders), got {arr.shape}"
        )
    if zone_names is None or len(zone_names) != arr.shape[1]:
        raise ConfigError(
            f"an array needs zone_names, one per zone ({arr.shape[1]}), e.g. m.zone_names"
        )
    types = None
    if arr.ndim == 4:
        if type_names is None or len(type_names) != arr.shape[2]:
            raise ConfigError(
                f"a per-type array needs type_names, one per type ({arr.shape[2]}), "
                "e.g. m.type_names"
            )
        types = tuple(str(t) for t in type_names)
    else:
        arr = arr[:, :, None, :]
    present = arr.sum(axis=(2, 3)) > 0
    return arr, tuple(str(z) for z in zone_names), types, present, False


def free_area_histogram(
    source: Any,
    *,
    ax: Any = None,
    by_type: bool = False,
    zone_names: Sequence[str] | None = None,
    type_names: Sequence[str] | None = None,
    weight: str = "blocks",
    log: bool = False,
    title: str | None = None,
) -> Any:
    """Bars of nr_free per order for every populated zone; returns the Figure.

    ``source``: a :class:`kmm.Machine` (``by_type=True`` stacks the bars per
    allocation type, from ``m.free_area(by_type=True)``), a
    :class:`kmm.procfs.BuddyInfo` or :class:`kmm.procfs.PageTypeInfo` (stacked
    per migrate type), or an array (nodes, zones, orders) with ``zone_names``
    or (nodes, zones, types, orders) with ``zone_names`` and ``type_names``.
    ``weight``: "blocks" (nr_free) or "pages" (nr_free * 2**order, where the
    free memory is).  ``ax``: draw into this Axes (only when one zone is
    populated).
    """
    _matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if weight not in ("blocks", "pages"):
        raise ConfigError(f"weight must be 'blocks' or 'pages', got {weight!r}")
    arr, znames, tnames, present, capped = _free_areas(source, by_type, zone_names, type_names)
    nr_orders = arr.shape[-1]
    if weight == "pages":
        arr = arr << np.arange(nr_orders, dtype=np.int64)
    cells = [(n, z) for n in range(arr.shape[0]) for z in range(arr.shape[1]) if present[n, z]]
    if not cells:
        raise ConfigError("no populated zone to draw")
    multi_node = arr.shape[0] > 1
    if ax is not None:
        if len(cells) != 1:
            raise ConfigError(f"ax= draws one zone, but {len(cells)} zones are populated (omit ax)")
        fig, axes = ax.figure, [ax]
    else:
        ncols = min(3, len(cells))
        nrows = math.ceil(len(cells) / ncols)
        fig = Figure(figsize=(4.2 * ncols, 3.0 * nrows + 0.6), dpi=100, layout="constrained")
        axes = list(np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel())
        for extra in axes[len(cells) :]:
            extra.set_visible(False)
    orders = np.arange(nr_orders)
    type_labels = list(tnames) if tnames is not None else ["free"]
    colours = [
        TYPE_COLOURS.get(t, _FALLBACK_COLOURS[i % len(_FALLBACK_COLOURS)]) if tnames else "#4c72b0"
        for i, t in enumerate(type_labels)
    ]
    for axis, (node, zt) in zip(axes, cells):
        bottom = np.zeros(nr_orders, dtype=np.int64)
        for t, label in enumerate(type_labels):
            vals = arr[node, zt, t]
            axis.bar(
                orders,
                vals,
                bottom=bottom,
                color=colours[t],
                label=label,
                width=0.8,
                edgecolor="none",
            )
            bottom = bottom + vals
        name = f"Node {node}, zone {znames[zt]}" if multi_node else f"zone {znames[zt]}"
        axis.set_title(name, fontsize=9)
        axis.set_xticks(orders)
        axis.set_xlabel("order", fontsize=8)
        axis.set_ylabel("free blocks (nr_free)" if weight == "blocks" else "free pages", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.yaxis.set_major_locator(MaxNLocator(integer=True))
        if log:
            axis.set_yscale("symlog", linthresh=1)
    own_figure = ax is None
    if tnames is not None and len(type_labels) > 1:
        if own_figure:
            handles, labels = axes[0].get_legend_handles_labels()
            fig.legend(
                handles,
                labels,
                loc="outside upper right",
                fontsize=7,
                ncols=min(6, len(labels)),
                frameon=False,
            )
        else:
            axes[0].legend(fontsize=7, frameon=False)
    if not own_figure:
        return fig
    if title is None:
        if _is_machine(source):
            title = f"free lists: {source.allocator} allocator, {source.layout}"
        else:
            title = "free lists per order"
        if capped:
            title += " (some counts capped at 100000)"
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    return fig
