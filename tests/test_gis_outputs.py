"""Outputs that QGIS 3.22 reads without warnings or side files: a GeoPackage of version 1.2,
and rasters that carry their band statistics (so QGIS writes no ``.aux.xml``)."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from geochange.classes import CLASS_NAMES, PALETTE, ROAD
from geochange.grid import Grid
from geochange.writing.geotiff import StreamingGeoTIFF
from geochange.writing.qml import landcover_qml
from tests.test_simulate import run


def statistics(values: np.ndarray) -> dict[str, float]:
    return {
        "STATISTICS_MINIMUM": values.min(),
        "STATISTICS_MAXIMUM": values.max(),
        "STATISTICS_MEAN": values.mean(),
        "STATISTICS_STDDEV": values.std(),
    }


def assert_tags(tags: dict[str, str], values: np.ndarray) -> None:
    for name, expected in statistics(values.astype(np.float64)).items():
        assert float(tags[name]) == pytest.approx(expected, abs=1e-5), name


def test_geopackage_is_version_1_2(town_tif, tmp_path):
    """Also when later blocks append to the file."""
    result = run(town_tif, tmp_path / "out", "building_add:count=20", seed=1, block_size=512)
    with sqlite3.connect(result.output / "changes.gpkg") as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # "GPKG"
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200


def test_land_cover_and_change_carry_statistics(town_tif, tmp_path):
    result = run(town_tif, tmp_path / "out", "building_add:count=20,flood", seed=1)
    for name, nodata in (("t1_landcover", 0), ("t2_landcover", 0), ("change", 255)):
        with rasterio.open(result.output / f"{name}.tif") as src:
            data = src.read(1)
            assert_tags(src.tags(1), data[data != nodata])
            assert float(src.tags(1)["STATISTICS_VALID_PERCENT"]) == pytest.approx(
                100 * (data != nodata).mean(), rel=1e-3
            )


def test_rgb_statistics_leave_the_mask_out(tmp_path):
    """As synth writes t1/t2: three bands, no no-data value, an internal mask."""
    grid = Grid(
        rasterio.crs.CRS.from_epsg(32633),
        rasterio.transform.from_origin(500_000, 5_550_000, 0.5, 0.5),
        700,
        600,
    )
    rng = np.random.default_rng(0)
    rgb = rng.integers(20, 230, (3, 600, 700), dtype=np.uint8)
    valid = np.ones((600, 700), bool)
    valid[:, :100] = False
    rgb[:, ~valid] = 255  # would raise the maximum if the mask were ignored
    raster = StreamingGeoTIFF(tmp_path / "t1.tif", grid, None, "", count=3)
    try:
        window = Window(0, 0, 700, 600)
        raster.write(window, rgb)
        raster.dataset.write_mask(valid.astype(np.uint8) * 255, window=window)
        path = raster.finish({}, "AVERAGE")
    finally:
        raster.discard()
    with rasterio.open(path) as src:
        for band in range(3):
            assert_tags(src.tags(band + 1), rgb[band][valid])
            assert float(src.tags(band + 1)["STATISTICS_MAXIMUM"]) < 230


def test_land_cover_style_shows_roads_dark_on_white_panels():
    """The .qml keeps OpenEarthMap's palette except the white road, invisible in a legend."""
    entries = ET.fromstring(landcover_qml()).findall(".//paletteEntry")
    colours = [entry.get("color") for entry in entries]
    expected = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in PALETTE]
    expected[ROAD] = "#404040"
    assert colours == expected
    assert [entry.get("label") for entry in entries] == list(CLASS_NAMES)
