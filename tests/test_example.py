"""The made-up example region: valid classes, plausible structure, reproducible, georeferenced."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import CRS
from scipy import ndimage

from geochange.classes import (
    AGRICULTURE,
    BUILDING,
    NUM_CLASSES,
    ROAD,
    TREE,
    WATER,
)
from geochange.example import EXAMPLE_CENTRE, EXAMPLE_CRS, example_landcover, example_transform

SIZE = 1024
PIXEL_AREA_M2 = 0.25
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module", params=SEEDS)
def region(request: pytest.FixtureRequest) -> np.ndarray:
    return example_landcover(SIZE, seed=request.param)


def shares(cover: np.ndarray) -> np.ndarray:
    return np.bincount(cover.ravel(), minlength=NUM_CLASSES) / cover.size


def test_array_holds_class_indices(region: np.ndarray) -> None:
    assert region.dtype == np.uint8
    assert region.shape == (SIZE, SIZE)
    assert region.max() < NUM_CLASSES


def test_every_class_is_present_in_plausible_shares(region: np.ndarray) -> None:
    share = shares(region)
    assert (share > 0).all(), share
    assert 0.05 <= share[ROAD] <= 0.20
    assert 0.05 <= share[BUILDING] <= 0.25
    assert 0.01 <= share[WATER] <= 0.15
    assert share[TREE] >= 0.03
    assert share[AGRICULTURE] >= 0.05


def test_buildings_are_set_back_from_roads(region: np.ndarray) -> None:
    building, road = region == BUILDING, region == ROAD
    touching = (
        (building[:, 1:] & road[:, :-1]).any()
        or (building[:, :-1] & road[:, 1:]).any()
        or (building[1:] & road[:-1]).any()
        or (building[:-1] & road[1:]).any()
    )
    assert not touching


def test_road_network_is_connected(region: np.ndarray) -> None:
    labels, found = ndimage.label(region == ROAD)
    sizes = np.bincount(labels.ravel())[1:]
    assert found >= 1
    assert sizes.max() >= 0.9 * sizes.sum()


def test_buildings_have_house_sized_footprints(region: np.ndarray) -> None:
    labels, found = ndimage.label(region == BUILDING)
    areas = np.bincount(labels.ravel())[1:] * PIXEL_AREA_M2
    assert found >= 20
    assert 60 <= np.median(areas) <= 600


def test_same_seed_same_region_other_seed_other_region() -> None:
    first = example_landcover(512, seed=7)
    assert np.array_equal(first, example_landcover(512, seed=7))
    assert (first != example_landcover(512, seed=8)).mean() > 0.2


@pytest.mark.parametrize("size", [256, 700])
def test_small_and_odd_sizes_work(size: int) -> None:
    cover = example_landcover(size, seed=3)
    assert cover.shape == (size, size)
    assert cover.max() < NUM_CLASSES
    labels, _ = ndimage.label(cover == ROAD)
    sizes = np.bincount(labels.ravel())[1:]
    assert sizes.max() >= 0.9 * sizes.sum()


def test_transform_is_metric_and_centred_on_a_fixed_point() -> None:
    crs = CRS(EXAMPLE_CRS)
    assert crs.is_projected
    assert crs.axis_info[0].unit_name == "metre"
    transform = example_transform(2048)
    assert (transform.a, transform.e) == (0.5, -0.5)
    assert transform @ (1024, 1024) == pytest.approx(EXAMPLE_CENTRE)
    assert example_transform(4096) @ (2048, 2048) == pytest.approx(EXAMPLE_CENTRE)


def test_demo_events_run_on_the_1024_example(tmp_path) -> None:
    """Regression: road_add once stepped one pixel past its window on this region."""
    from geochange.example import write_example
    from geochange.inputs import open_inputs
    from geochange.simulation import simulate

    region = write_example(tmp_path / "ex", size=1024)
    events = "building_add:count=40,deforestation:fraction=0.3,road_add:count=2,flood"
    with open_inputs(region, events=events) as inputs:
        result = simulate(inputs, tmp_path / "out", seed=1)
    pixels = result.summary["changes"]["pixels_by_event"]
    assert pixels["road_add"] > 0 and pixels["building_add"] > 0
