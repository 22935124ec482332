"""Plot helpers: the panels show the run's own pixels, outlines sit on the change raster, the
legend lists the classes shown, and bars measure the change statistics.

The images come from a tiny randomly initialised model: the tests check what is drawn where,
not how the images look.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from scipy import ndimage

import geochange
from geochange.analysis import change_statistics, open_result
from geochange.classes import CLASS_NAMES, PALETTE
from geochange.errors import InputError
from geochange.example import write_example
from geochange.inputs import open_inputs
from geochange.model import SemanticLDM, preset
from geochange.painting import SamplingOptions
from geochange.plotting import plot_change, plot_statistics
from geochange.simulation import simulate
from geochange.synth import synthesize

pytestmark = pytest.mark.usefixtures("one_thread")
matplotlib.use("Agg")  # no windows: figures are drawn off screen

EVENTS = "building_add:count=6,deforestation:fraction=0.4,road_add:count=1"
RED = (255, 0, 0)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example(tmp_path_factory.mktemp("region") / "ex", size=256, seed=5)


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory: pytest.TempPathFactory, region: Path) -> Path:
    """A painted run with three timestamps."""
    folder = tmp_path_factory.mktemp("synth")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SemanticLDM(preset("tiny")).save_pretrained(folder / "tiny")
    options = SamplingOptions(steps=2, tile_size=128, overlap=32)
    with open_inputs(region, events=EVENTS) as inputs:
        synthesize(
            inputs, folder / "out", model=model, options=options, device="cpu", seed=1, timestamps=3
        )
    torch.set_num_threads(threads)
    return folder / "out"


@pytest.fixture(scope="module")
def simulate_run(tmp_path_factory: pytest.TempPathFactory, region: Path) -> Path:
    folder = tmp_path_factory.mktemp("simulate")
    with open_inputs(region, events=EVENTS) as inputs:
        simulate(inputs, folder / "out", seed=2)
    return folder / "out"


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def _edge(region: np.ndarray) -> np.ndarray:
    """The pixels of ``region`` that touch a pixel outside it (or the raster border)."""
    return region & ~ndimage.binary_erosion(region, border_value=1)


def _palette_rgb(codes: np.ndarray) -> np.ndarray:
    """On-disk class codes (1-8) as (h, w, 3) palette colours."""
    return np.array(PALETTE, np.uint8)[codes.astype(int) - 1]


def _assert_panel(ax, source: np.ndarray, changed: np.ndarray) -> None:
    """``ax`` shows ``source`` (h, w, 3) with exactly the edge of ``changed`` painted red."""
    shown = np.asarray(ax.images[0].get_array())
    edge = _edge(changed)
    assert shown.shape == source.shape and edge.any()
    assert (shown[edge] == RED).all()
    np.testing.assert_array_equal(shown[~edge], source[~edge])


def test_synth_run_shows_images_over_land_cover_with_the_change_outlined(synth_run: Path):
    fig = plot_change(synth_run)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["t1 image", "t2 image", "t1 land cover", "t2 land cover"]
    changed = _read(synth_run / "change.tif")[0] == 1
    codes = {t: _read(synth_run / f"{t}_landcover.tif")[0] for t in ("t1", "t2")}
    for ax, name in zip(fig.axes[:2], ("t1", "t2"), strict=True):
        _assert_panel(ax, np.moveaxis(_read(synth_run / f"{name}.tif"), 0, -1), changed)
    for ax, name in zip(fig.axes[2:], ("t1", "t2"), strict=True):
        _assert_panel(ax, _palette_rgb(codes[name]), changed)
    # Map coordinates: the panels span the run's bounds, so analysts can zoom in metres.
    with rasterio.open(synth_run / "change.tif") as src:
        left, bottom, right, top = src.bounds
    assert fig.axes[0].images[0].get_extent() == pytest.approx([left, right, bottom, top])
    legend = fig.axes[3].get_legend()
    present = np.union1d(np.unique(codes["t1"]), np.unique(codes["t2"]))
    expected = [CLASS_NAMES[c - 1] for c in present] + ["change"]
    assert [text.get_text() for text in legend.get_texts()] == expected
    swatches = [
        tuple(np.round(np.array(p.get_facecolor()[:3]) * 255)) for p in legend.get_patches()
    ]
    assert swatches[:-1] == [PALETTE[c - 1] for c in present]


def test_a_later_pair_is_outlined_where_the_classes_differ(synth_run: Path):
    ds = open_result(synth_run)
    fig = plot_change(ds, before="t2", after="t3")
    t2, t3 = (_read(synth_run / f"{t}_landcover.tif")[0] for t in ("t2", "t3"))
    changed = (t2 != t3) & (t2 > 0) & (t3 > 0)
    assert fig.axes[0].get_title() == "t2 image"
    _assert_panel(fig.axes[3], _palette_rgb(t3), changed)


def test_simulate_run_shows_the_land_cover_only(simulate_run: Path):
    fig = plot_change(open_result(simulate_run))
    assert [ax.get_title() for ax in fig.axes] == ["t1 land cover", "t2 land cover"]
    changed = _read(simulate_run / "change.tif")[0] == 1
    _assert_panel(fig.axes[1], _palette_rgb(_read(simulate_run / "t2_landcover.tif")[0]), changed)


def test_draws_into_given_axes_and_subsamples_large_runs(synth_run: Path):
    fig, axes = plt.subplots(2, 4)
    ds = open_result(synth_run)
    assert plot_change(ds, axes=axes[:, :2], max_edge=100) is fig
    shown = np.asarray(axes[1, 1].images[0].get_array())
    assert shown.shape == (86, 86, 3)  # every 3rd pixel of 256
    codes = ds["landcover"].sel(time="t2").values[::3, ::3]
    changed = ds["change"].values[::3, ::3] == 1
    _assert_panel(axes[1, 1], _palette_rgb(codes), changed)
    assert not axes[0, 2].images  # the other half of the figure is left alone
    with pytest.raises(InputError, match="draws 4 panels but 2 axes"):
        plot_change(ds, axes=axes[0, :2])


def test_bad_inputs_say_what_to_pass(tmp_path: Path, synth_run: Path):
    with pytest.raises(InputError, match="not a finished geochange run"):
        plot_change(tmp_path)
    with pytest.raises(InputError, match="(?s)no timestamp 't4'.*t1, t2, t3"):
        plot_change(synth_run, after="t4")
    ds = open_result(synth_run).drop_vars("change")
    with pytest.raises(InputError, match="no change variable"):
        plot_change(ds)


def test_statistics_bars_measure_the_change_tables(simulate_run: Path):
    tables = change_statistics(simulate_run)
    fig = geochange.plot_statistics(simulate_run)
    event_ax, transition_ax = fig.axes
    by_event, by_transition = tables["by_event"], tables["by_transition"]
    unit = 1e4 if max(by_event["area_m2"]) >= 1e4 else 1.0
    assert event_ax.get_xlabel() == ("area (ha)" if unit > 1 else "area (m²)")
    widths = [bar.get_width() for bar in event_ax.patches]
    np.testing.assert_allclose(widths, by_event["area_m2"] / unit)
    assert [t.get_text() for t in event_ax.get_yticklabels()] == list(by_event["event"])
    widths = [bar.get_width() for bar in transition_ax.patches]
    np.testing.assert_allclose(widths, by_transition["area_m2"] / unit)
    labels = [t.get_text() for t in transition_ax.get_yticklabels()]
    assert labels == [
        f"{a} → {b}" for a, b in zip(by_transition["t1"], by_transition["t2"], strict=True)
    ]
    colours = [
        tuple(np.round(np.array(b.get_facecolor()[:3]) * 255)) for b in transition_ax.patches
    ]
    assert colours == [PALETTE[CLASS_NAMES.index(b)] for b in by_transition["t2"]]


def test_statistics_in_hectares_for_large_areas():
    tables = {
        "by_event": pd.DataFrame({"event": ["flood"], "polygons": [2], "area_m2": [25_000.0]}),
        "by_transition": pd.DataFrame(
            {"t1": ["tree"], "t2": ["water"], "pixels": [100_000], "area_m2": [25_000.0]}
        ),
    }
    fig = plot_statistics(tables)
    assert fig.axes[0].get_xlabel() == "area (ha)"
    assert fig.axes[0].patches[0].get_width() == pytest.approx(2.5)


def test_importing_geochange_does_not_import_matplotlib():
    code = "import sys, geochange; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False" and callable(geochange.plot_change)
