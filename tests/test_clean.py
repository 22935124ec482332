"""The minimum change area: specks undone or merged in the rasters, polygons that agree."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from scipy import ndimage

from geochange.clean import clean_window, min_pixels
from geochange.cli.main import cli
from geochange.errors import InputError
from geochange.inputs import open_inputs
from tests.test_simulate import check_polygons, grid_of, run

EVENTS = (
    "building_add:count=40,building_remove:count=10,deforestation:fraction=0.3,flood,"
    "road_add:count=2,urban_expansion,random:fraction=0.05,cropland_change,regrowth"
)


def test_rules_on_a_window():
    t1 = np.zeros((8, 8), np.uint8)
    t2, event = t1.copy(), np.zeros_like(t1)
    t2[1:4, 1:4], event[1:4, 1:4] = 7, 1  # a 9-px piece
    t1[1:4, 4], t2[1:4, 4], event[1:4, 4] = 3, 5, 2  # a 3-px piece of another event beside it
    t2[6, 6], event[6, 6] = 4, 1  # a lone changed pixel
    t2[5:7, 1], event[5:7, 1] = 2, 1  # a region of two 2-px pieces
    t2[5:7, 2], event[5:7, 2] = 3, 2
    new_t2, new_event = clean_window(t1, t2, event, smallest=4)
    np.testing.assert_array_equal(new_t2[1:4, 1:5], 7)  # merged into its larger neighbour
    np.testing.assert_array_equal(new_event[1:4, 1:5], 1)
    assert new_t2[6, 6] == t1[6, 6] and new_event[6, 6] == 0  # undone
    np.testing.assert_array_equal(new_t2[5:7, 1:3], 2)  # the most common piece, lowest first
    np.testing.assert_array_equal(new_event[5:7, 1:3], 1)


def test_a_piece_becoming_its_t1_class_is_unchanged():
    t1 = np.zeros((4, 6), np.uint8)
    t2, event = np.full_like(t1, 6), np.ones_like(t1)
    t1[0, 5], t2[0, 5], event[0, 5] = 6, 3, 2  # merging it into water makes it water again
    new_t2, new_event = clean_window(t1, t2, event, smallest=4)
    assert new_t2[0, 5] == 6 and new_event[0, 5] == 0
    assert (new_event[t1 != 6] == 1).all()


def test_min_pixels():
    assert min_pixels(4.0, (0.5, 0.5)) == 16
    assert min_pixels(4.0, (10.0, 10.0)) == 1
    assert min_pixels(0.0, (0.5, 0.5)) == 1


@pytest.mark.parametrize("block_size", [512, 2048])
def test_real_tile_no_polygon_below_the_minimum(shared_data, tmp_path, block_size):
    """On a real tile with every event, 512-px blocks (cleaning across block borders) too."""
    label = shared_data / "openearthmap/labels/houston_16.tif"
    raw = run(label, tmp_path / "raw", EVENTS, seed=1, min_area=0, block_size=block_size)
    clean = run(label, tmp_path / "clean", EVENTS, seed=1, min_area=4, block_size=block_size)
    raw_polygons = gpd.read_file(raw.output / "changes.gpkg")
    polygons = gpd.read_file(clean.output / "changes.gpkg")
    assert raw_polygons.area_m2.min() < 4, "expected specks without a minimum"
    assert polygons.area_m2.min() >= 4
    changes = clean.summary["changes"]
    assert changes["min_area_m2"] == 4 and changes["pixels_undone"] > 0
    assert polygons.area_m2.sum() == pytest.approx(raw_polygons.area_m2.sum(), rel=0.01)
    with rasterio.open(clean.output / "t1_landcover.tif") as src:
        t1 = src.read(1)
    with rasterio.open(clean.output / "t2_landcover.tif") as src:
        t2 = src.read(1)
    with rasterio.open(clean.output / "change.tif") as src:
        change = src.read(1)
    np.testing.assert_array_equal(change[t1 > 0] == 1, (t1 != t2)[t1 > 0])
    check_polygons(polygons, t1, t2, change, grid_of(label))
    pixels = sum(changes["pixels_by_event"].values())
    assert pixels == (change == 1).sum()


def test_cli_min_area(town_tif, tmp_path):
    out = tmp_path / "out"
    args = ["simulate", str(town_tif), "--events", "building_add:count=20", "--seed", "2"]
    result = CliRunner().invoke(cli, [*args, "--min-area", "150", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    polygons = gpd.read_file(out / "changes.gpkg")
    assert len(polygons) > 0 and polygons.area_m2.min() >= 150
    assert json.loads((out / "run.json").read_text())["changes"]["min_area_m2"] == 150
    refused = CliRunner().invoke(cli, [*args, "--min-area", "-1", "-o", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "--min-area" in refused.output


def test_one_polygon_per_new_building_on_the_example(town_tif, tmp_path):
    """New buildings straddle several t1 classes; each is still one polygon, never pieces."""
    result = run(town_tif, tmp_path / "out", "building_add:count=20", seed=1)
    polygons = gpd.read_file(result.output / "changes.gpkg")
    with rasterio.open(result.output / "change.tif") as src:
        buildings = ndimage.label(src.read(1) == 1, structure=np.ones((3, 3)))[1]
    assert buildings >= 10
    assert len(polygons) == buildings
    assert polygons.area_m2.min() >= 4


def test_negative_min_area_from_python_names_the_parameter(town_tif):
    with pytest.raises(InputError, match=r"min_area\) must be 0 or a positive area in m², not -1"):
        open_inputs(town_tif, events="flood", min_area=-1)


def test_a_window_without_specks_is_left_alone():
    t1 = np.zeros((8, 8), np.uint8)
    t2, event = t1.copy(), np.zeros_like(t1)
    t2[1:4, 1:4], event[1:4, 1:4] = 7, 1
    assert clean_window(t1, t2, event, smallest=9) is None
    assert clean_window(t1, t2, event, smallest=10) is not None
