"""Matplotlib figures of a finished run, for analysts in Jupyter: before and after side by side
with the change outlined and a class legend, and the change statistics as bar charts.

Colours and outlines are those of ``preview.png`` (``geochange.writing.preview``), so a figure and
the preview of the same run look alike. Every function takes a run (an ``xarray.Dataset`` from
``geochange.open_result`` or its folder) and, optionally, the matplotlib axes to draw into, and
returns the figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from geochange.analysis import change_statistics, open_result
from geochange.classes import CLASS_NAMES, PALETTE, load_scheme
from geochange.errors import InputError
from geochange.writing.preview import OUTLINE, colour, outline

MAX_EDGE = 1024
"""Pixels shown along the longest side of a panel; larger runs are subsampled (every n-th pixel),
so plotting a city-sized run holds only the panels in memory (dask reads it chunk by chunk)."""
PANEL_INCHES = 4.5
BAR_INCHES = 0.35
M2_PER_HA = 10_000


def plot_change(
    result: xr.Dataset | str | Path,
    before: str = "t1",
    after: str = "t2",
    axes: Sequence[Axes] | np.ndarray | None = None,
    max_edge: int = MAX_EDGE,
) -> Figure:
    """``before`` | ``after`` images (when the run has them) over their land-cover maps, the
    change outlined in red on every panel, with a legend of the classes shown.

    The change is the run's change raster for t1 → t2 and the pixels whose class differs for any
    other pair of timestamps. ``axes``: 4 axes for a ``synth`` run (before image, after image,
    before land cover, after land cover), 2 for a ``simulate`` run; new ones when None.
    """
    dataset = _dataset(result)
    stamps = [str(t) for t in dataset["time"].values]
    for stamp in (before, after):
        if stamp not in stamps:
            raise InputError(
                f"the run has no timestamp {stamp!r}", f"pick from {', '.join(stamps)}"
            )
    bounds = dataset.rio.bounds()
    shown = _subsample(dataset, max_edge)
    codes = {t: shown["landcover"].sel(time=t).values for t in (before, after)}
    if (before, after) == tuple(stamps[:2]):
        changed = shown["change"].values == 1
    else:
        changed = (codes[before] != codes[after]) & (codes[before] > 0) & (codes[after] > 0)
    oem = load_scheme("oem")
    panels = []
    if "image" in shown:
        panels += [(f"{t} image", shown["image"].sel(time=t).values) for t in (before, after)]
    panels += [(f"{t} land cover", colour(oem.classify(codes[t])[0])) for t in (before, after)]

    height, width = changed.shape
    grid = _axes(axes, len(panels), height / width)
    for ax, (title, rgb) in zip(grid, panels, strict=True):
        ax.imshow(
            np.moveaxis(outline(rgb, changed), 0, -1),
            extent=(bounds[0], bounds[2], bounds[1], bounds[3]),
            interpolation="nearest",
        )
        ax.set_title(title)
        ax.set_axis_off()
    present = np.union1d(np.unique(codes[before]), np.unique(codes[after]))
    grid[-1].legend(
        handles=_class_handles(present),
        title="land cover",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        frameon=False,
    )
    figure = grid[0].figure
    if axes is None:
        width_m, height_m = bounds[2] - bounds[0], bounds[3] - bounds[1]
        figure.suptitle(
            f"{Path(dataset.attrs.get('source', '')).name}: {width_m:,.0f} m × {height_m:,.0f} m,"
            f" {dataset.rio.crs}"
        )
    return figure


def plot_statistics(
    result: xr.Dataset | str | Path | Mapping[str, pd.DataFrame],
    axes: Sequence[Axes] | np.ndarray | None = None,
) -> Figure:
    """Changed area by event and by from → to class as horizontal bars (the second panel
    coloured by the class changed to), in hectares, or in m² when no bar reaches a hectare.

    ``result`` may also be the tables of ``geochange.change_statistics``; ``axes``: 2 axes, or
    new ones when None.
    """
    tables = result if isinstance(result, Mapping) else change_statistics(result)
    by_event, by_transition = tables["by_event"], tables["by_transition"]
    largest = max([*by_event["area_m2"], *by_transition["area_m2"], 0.0])
    unit, per_unit, fmt = (
        ("ha", M2_PER_HA, "{:,.2f}") if largest >= M2_PER_HA else ("m²", 1, "{:,.0f}")
    )
    rows = max(len(by_event), len(by_transition), 1)
    event_ax, transition_ax = _axes(axes, 2, (BAR_INCHES * rows + 1.0) / PANEL_INCHES)
    bars = event_ax.barh(by_event["event"], by_event["area_m2"] / per_unit, color="0.45")
    event_ax.bar_label(bars, fmt=fmt, padding=2)
    event_ax.set(title="changed area by event", xlabel=f"area ({unit})")
    labels = [f"{a} → {b}" for a, b in zip(by_transition["t1"], by_transition["t2"], strict=True)]
    colours = [np.array(PALETTE[CLASS_NAMES.index(b)]) / 255 for b in by_transition["t2"]]
    bars = transition_ax.barh(
        labels, by_transition["area_m2"] / per_unit, color=colours, edgecolor="0.3"
    )
    transition_ax.bar_label(bars, fmt=fmt, padding=2)
    transition_ax.set(title="changed area by transition (t1 → t2)", xlabel=f"area ({unit})")
    for ax in (event_ax, transition_ax):
        ax.invert_yaxis()
        ax.margins(x=0.2)
    return event_ax.figure


def _dataset(result: xr.Dataset | str | Path) -> xr.Dataset:
    """The run as a Dataset; one that lacks the variables of ``open_result`` is an error."""
    if not isinstance(result, xr.Dataset):
        return open_result(result)
    missing = [name for name in ("landcover", "change") if name not in result]
    if missing:
        raise InputError(
            f"the Dataset has no {' or '.join(missing)} variable",
            "pass a Dataset from geochange.open_result (or the run folder itself)",
        )
    return result


def _subsample(dataset: xr.Dataset, max_edge: int) -> xr.Dataset:
    """Every n-th row and column, so that the longest side is at most ``max_edge`` pixels."""
    step = max(1, math.ceil(max(dataset.sizes["x"], dataset.sizes["y"]) / max_edge))
    return dataset.isel(x=slice(None, None, step), y=slice(None, None, step))


def _axes(axes: Sequence[Axes] | np.ndarray | None, count: int, aspect: float) -> list[Axes]:
    """The caller's axes (flattened, exactly ``count``) or new ones, two to a row; ``aspect`` is
    the height/width of one panel."""
    if axes is None:
        rows = math.ceil(count / 2)
        size = (2 * PANEL_INCHES + 1.8, rows * PANEL_INCHES * aspect + 0.6)
        _, new = plt.subplots(rows, 2, figsize=size, layout="constrained", squeeze=False)
        return list(new.ravel()[:count])
    given = list(np.asarray(axes, dtype=object).ravel())
    if len(given) != count:
        raise InputError(
            f"this plot draws {count} panels but {len(given)} axes were given",
            f"pass {count} axes, e.g. plt.subplots({math.ceil(count / 2)}, 2)[1]",
        )
    return given


def _class_handles(codes: np.ndarray) -> list[Patch]:
    """Legend entries for the on-disk class codes present, then the change outline."""
    handles = [
        Patch(
            facecolor=np.array(PALETTE[code - 1]) / 255,
            edgecolor="0.5",
            label=CLASS_NAMES[code - 1],
        )
        for code in codes
        if 1 <= code <= len(CLASS_NAMES)
    ]
    handles.append(Patch(facecolor="none", edgecolor=np.array(OUTLINE) / 255, label="change"))
    return handles
