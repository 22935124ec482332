"""``open_result`` and ``change_statistics`` against the GeoTIFFs and polygons of real runs."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch

from geochange.analysis import change_statistics, open_result
from geochange.errors import InputError
from geochange.example import write_example
from geochange.inputs import open_inputs
from geochange.model import SemanticLDM, preset
from geochange.painting import SamplingOptions
from geochange.simulation import simulate
from geochange.synth import synthesize

EVENTS = "building_add:count=20,deforestation:fraction=0.3,flood"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("analysis")
    region = write_example(folder / "ex", size=512, seed=2)
    with open_inputs(region, events=EVENTS) as inputs:
        simulate(inputs, folder / "out", seed=3)
    return folder / "out"


def test_open_result_matches_the_geotiffs(run: Path):
    ds = open_result(run)
    assert list(ds["time"].values) == ["t1", "t2"] and "image" not in ds
    for k, name in enumerate(("t1", "t2")):
        with rasterio.open(run / f"{name}_landcover.tif") as src:
            np.testing.assert_array_equal(ds["landcover"].isel(time=k).values, src.read(1))
            assert ds.rio.crs == src.crs and ds.rio.transform() == src.transform
            block = src.block_shapes[0]
    assert ds["landcover"].chunks[1][0] == block[0] and ds["landcover"].chunks[2][0] == block[1]
    with rasterio.open(run / "change.tif") as src:
        np.testing.assert_array_equal(ds["change"].values, src.read(1))
    assert ds["landcover"].attrs["flag_values"] == list(range(1, 9))
    assert ds["landcover"].attrs["flag_meanings"].split()[-1] == "building"
    assert '"events"' in ds.attrs["run"]


def test_statistics_equal_sums_over_rasters_and_polygons(run: Path):
    stats = change_statistics(run)
    ds = open_result(run)
    t1, t2 = (ds["landcover"].isel(time=k).values for k in (0, 1))
    matrix = stats["transition_matrix"]
    assert matrix.to_numpy().sum() == ((t1 > 0) & (t2 > 0)).sum()
    assert matrix.loc["tree", "bareland"] == ((t1 == 5) & (t2 == 1)).sum()
    moved = stats["by_transition"]
    assert moved["pixels"].sum() == ((t1 != t2) & (t1 > 0)).sum()
    polygons = gpd.read_file(run / "changes.gpkg", layer="changes")
    by_event = stats["by_event"].set_index("event")
    for event, group in polygons.groupby("event"):
        assert by_event.loc[event, "area_m2"] == pytest.approx(group["area_m2"].sum())
        assert by_event.loc[event, "polygons"] == len(group)
    # Rasters and polygons measure the same change (pixel areas vs equal-area polygons).
    assert moved["area_m2"].sum() == pytest.approx(by_event["area_m2"].sum(), rel=1e-3)


def test_synth_images_open_as_a_time_band_cube(tmp_path: Path):
    torch.manual_seed(0)
    model = SemanticLDM(preset("tiny")).save_pretrained(tmp_path / "tiny")
    region = write_example(tmp_path / "ex", size=256, seed=4)
    options = SamplingOptions(steps=2, tile_size=128, overlap=32)
    with open_inputs(region, events="building_add:count=5") as inputs:
        synthesize(inputs, tmp_path / "out", model=model, options=options, device="cpu")
    ds = open_result(tmp_path / "out")
    assert ds["image"].dims == ("time", "band", "y", "x") and ds["image"].shape[:2] == (2, 3)
    with rasterio.open(tmp_path / "out" / "t2.tif") as src:
        np.testing.assert_array_equal(ds["image"].sel(time="t2").values, src.read())


def test_a_folder_that_is_not_a_run_says_so(tmp_path: Path):
    with pytest.raises(InputError, match="not a finished geochange run"):
        open_result(tmp_path)
