"""Every bad input gets a message that says what is wrong, and no output folder appears."""

from __future__ import annotations

import errno
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geochange.errors import InputError
from geochange.simulate import open_inputs, simulate
from geochange.writing import geotiff
from tests.conftest import write_raster


def attempt(region, output, events="building_add:count=3", **options):
    with open_inputs(region, events=events, **options) as inputs:
        return simulate(inputs, output)


def assert_nothing_written(output: Path) -> None:
    assert not output.exists()
    assert not list(output.parent.glob(f".{output.name}.partial-*"))


@pytest.fixture
def region(tmp_path) -> Path:
    codes = np.full((300, 300), 2, np.uint8)
    codes[100:140, 100:160] = 8
    codes[150:160, :] = 4
    return write_raster(tmp_path / "region.tif", codes)


def test_raster_without_crs_needs_crs(tmp_path):
    region = write_raster(tmp_path / "nocrs.tif", np.full((50, 50), 2, np.uint8), crs=None)
    with pytest.raises(InputError, match="(?s)no coordinate reference system.*--crs"):
        attempt(region, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")
    result = attempt(region, tmp_path / "out", crs="EPSG:32633", events="regrowth")
    assert (result.output / "t1_landcover.tif").is_file()


def test_unknown_codes_listed_with_counts_and_nothing_written(tmp_path):
    codes = np.full((600, 600), 2, np.uint8)
    codes[0, :5] = 17
    codes[-1, -1] = 99
    region = write_raster(tmp_path / "r.tif", codes)
    with pytest.raises(InputError) as err, open_inputs(region, events="regrowth") as inputs:
        simulate(inputs, tmp_path / "out", block_size=512)
    assert "17 (5 px)" in str(err.value) and "99 (1 px)" in str(err.value)
    assert "--classes" in str(err.value)
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.full((20, 20), 2.5, np.float32), "float32 values, not class codes"),
        (np.full((3, 20, 20), 2, np.uint8), "has 3 bands"),
    ],
)
def test_float_and_multiband_land_cover(tmp_path, data, message):
    region = write_raster(tmp_path / "r.tif", data)
    with pytest.raises(InputError, match=message):
        attempt(region, tmp_path / "out")


def test_all_nodata_raster(tmp_path):
    region = write_raster(tmp_path / "r.tif", np.zeros((40, 40), np.uint8))
    with pytest.raises(InputError, match="holds no data"):
        attempt(region, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_unreadable_file(tmp_path):
    bogus = tmp_path / "corrupt.tif"
    bogus.write_bytes(b"II*\x00 this is not a tiff")
    with pytest.raises(InputError, match="cannot read raster"):
        attempt(bogus, tmp_path / "out")
    with pytest.raises(InputError, match="cannot read raster"):
        attempt(tmp_path / "missing.tif", tmp_path / "out")


def test_unknown_event_and_parameter(region, tmp_path):
    with pytest.raises(InputError, match="(?s)unknown event 'earthquake'.*building_add"):
        attempt(region, tmp_path / "out", events="earthquake")
    with pytest.raises(InputError, match="(?s)no parameter 'size'.*count"):
        attempt(region, tmp_path / "out", events="building_add:size=3")
    with pytest.raises(InputError, match="nothing to simulate"):
        attempt(region, tmp_path / "out", events="")


def test_output_folder_exists_needs_overwrite(region, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="(?s)already exists.*--overwrite"):
        attempt(region, out)
    assert (out / "keep.txt").read_text() == "mine"
    with open_inputs(region, events="building_add:count=3") as inputs:
        simulate(inputs, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "change.tif").is_file()


def test_disk_too_small_fails_before_writing(region, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 1000))
    with pytest.raises(InputError, match="not enough disk space"):
        attempt(region, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_disk_full_while_writing_leaves_nothing(region, tmp_path, monkeypatch):
    def full(self, *args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(geotiff.StreamingGeoTIFF, "finish", full)
    with pytest.raises(InputError, match="disk .* is full; nothing was written"):
        attempt(region, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_interrupted_run_leaves_nothing(region, tmp_path, monkeypatch):
    def interrupt(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(geotiff.StreamingGeoTIFF, "write", interrupt)
    with pytest.raises(KeyboardInterrupt):
        attempt(region, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_vector_problems(region, tmp_path):
    utm = "EPSG:32633"
    no_crs = gpd.GeoDataFrame(geometry=[shapely.box(500_010, 5_549_900, 500_020, 5_549_910)])
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        no_crs.to_file(tmp_path / "nocrs.shp")
    with pytest.raises(InputError, match="no coordinate reference system"):
        attempt(region, tmp_path / "out", buildings=tmp_path / "nocrs.shp")

    far = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10)], crs=utm)
    far.to_file(tmp_path / "far.gpkg")
    with pytest.raises(InputError, match="no usable polygon over the land cover"):
        attempt(region, tmp_path / "out", buildings=tmp_path / "far.gpkg")

    no_field = gpd.GeoDataFrame(
        {"name": ["x"]}, geometry=[shapely.box(500_010, 5_549_900, 500_020, 5_549_910)], crs=utm
    )
    no_field.to_file(tmp_path / "nofield.gpkg")
    with pytest.raises(InputError, match="no 'to_class' field"):
        attempt(region, tmp_path / "out", changes=tmp_path / "nofield.gpkg")

    bad_class = no_field.assign(to_class=["lava"])
    bad_class.to_file(tmp_path / "badclass.gpkg")
    with pytest.raises(InputError, match="unknown class 'lava'"):
        attempt(region, tmp_path / "out", changes=tmp_path / "badclass.gpkg")

    (tmp_path / "broken.gpkg").write_text("not a geopackage")
    with pytest.raises(InputError, match="cannot read --buildings vectors"):
        attempt(region, tmp_path / "out", buildings=tmp_path / "broken.gpkg")
    assert_nothing_written(tmp_path / "out")


def test_invalid_empty_and_outside_geometries_are_repaired_or_counted(region, tmp_path):
    bowtie = shapely.Polygon(
        [(500_010, 5_549_900), (500_030, 5_549_920), (500_030, 5_549_900), (500_010, 5_549_920)]
    )
    frame = gpd.GeoDataFrame(
        {"to_class": ["water", "water", "water", "water"]},
        geometry=[
            bowtie,
            shapely.Polygon(),
            shapely.box(0, 0, 5, 5),
            shapely.LineString([(500_000, 5_549_950), (500_050, 5_549_950)]),
        ],
        crs="EPSG:32633",
    )
    frame.to_file(tmp_path / "messy.gpkg")
    warnings: list[str] = []

    class Collect:
        def warning(self, message: str) -> None:
            warnings.append(message)

        def stage(self, *args) -> None: ...
        def advance(self, *args) -> None: ...
        def close(self) -> None: ...

    with open_inputs(region, changes=tmp_path / "messy.gpkg", reporter=Collect()) as inputs:
        assert len(inputs.changes) == 1
        result = simulate(inputs, tmp_path / "out", reporter=Collect())
    text = " | ".join(warnings)
    assert "repaired 1 invalid" in text
    assert "1 of 4 features are empty" in text
    assert "1 of 4 features lie outside" in text
    assert "1 of 4 features are not polygons" in text
    polygons = gpd.read_file(result.output / "changes.gpkg")
    assert polygons.area_m2.sum() == pytest.approx(200, rel=0.1)


def test_multi_layer_file_needs_a_layer(shared_data, region, tmp_path):
    gpkg = shared_data / "prague_vectors/bubenec.gpkg"
    with pytest.raises(InputError, match=r"(?s)4 layers .*layername="):
        attempt(region, tmp_path / "out", buildings=gpkg)


def test_output_under_a_file_fails_and_missing_parents_are_created(region, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="is not a writable folder"):
        attempt(region, tmp_path / "afile" / "out")
    result = attempt(region, tmp_path / "new" / "deeper" / "out")
    assert result.output == tmp_path / "new" / "deeper" / "out"
    assert (result.output / "t2_landcover.tif").is_file()
