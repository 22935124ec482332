"""Every bad input gets a message that says what is wrong, and no output folder appears.

``docs/bad-inputs.md`` lists each case with the message a user sees and the test here (or in
another test file) that proves it. The Python API is checked first, then the command line as a
user meets it: exit status 2, ``Error: <problem>`` and ``How to fix: ...`` on stderr, no
traceback, and nothing in the output's parent folder.
"""

from __future__ import annotations

import errno
import json
import os
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from click.testing import CliRunner, Result
from rasterio.errors import NotGeoreferencedWarning

from geochange.cli.main import cli
from geochange.errors import InputError
from geochange.inputs import open_inputs
from geochange.report import Reporter
from geochange.simulation import simulate
from geochange.writing import geotiff
from geochange.writing.folder import MARKER
from tests.conftest import write_raster

UTM = "EPSG:32633"
LOCAL_CS = (
    'LOCAL_CS["site grid",LOCAL_DATUM["site",0],UNIT["metre",1],'
    'AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
)
INSIDE = shapely.box(500_010, 5_549_900, 500_040, 5_549_930)
"""A 30 m square over the ``region`` fixture (500000-500150 E, 5549850-5550000 N)."""


def attempt(region, output, events="building_add:count=3", **options):
    with open_inputs(region, events=events, **options) as inputs:
        return simulate(inputs, output)


def assert_nothing_written(output: Path) -> None:
    """No output folder, and no hidden partial folder or lock of it beside it."""
    assert not output.exists()
    assert not list(output.parent.glob(f".{output.name}*"))


@pytest.fixture
def region(tmp_path) -> Path:
    codes = np.full((300, 300), 2, np.uint8)
    codes[100:140, 100:160] = 8
    codes[150:160, :] = 4
    return write_raster(tmp_path / "region.tif", codes)


def test_raster_without_crs_needs_crs(tmp_path):
    region = write_raster(tmp_path / "nocrs.tif", np.full((50, 50), 2, np.uint8), crs=None)
    with pytest.raises(InputError, match="(?s)no coordinate reference system.*crs="):
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
    assert "classes=" in str(err.value)  # a Python caller is told the parameter
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
    attempt(region, out, events="regrowth")
    old = (out / "t2_landcover.tif").read_bytes()
    with pytest.raises(InputError, match="(?s)already exists.*overwrite=True"):
        attempt(region, out)
    assert (out / "t2_landcover.tif").read_bytes() == old
    with open_inputs(region, events="building_add:count=3") as inputs:
        simulate(inputs, out, overwrite=True)
    assert (out / "t2_landcover.tif").read_bytes() != old and (out / MARKER).is_file()
    assert not list(tmp_path.glob(".out*"))


def test_overwrite_swaps_old_and_new_output_in_one_step(region, tmp_path, monkeypatch):
    """The old output stays under its name until the new one takes its place in one rename
    (renameat2 RENAME_EXCHANGE); two renames left a moment with no folder there."""
    out = attempt(region, tmp_path / "out", events="regrowth").output

    def no_rename(self, target):
        raise AssertionError(f"renamed {self} to {target} instead of swapping")

    monkeypatch.setattr(Path, "rename", no_rename)
    with open_inputs(region, events="building_add:count=3") as inputs:
        simulate(inputs, out, overwrite=True)
    assert json.loads((out / "run.json").read_text())["events"][0]["name"] == "building_add"
    assert not list(tmp_path.glob(".out*"))


def test_overwrite_never_replaces_a_folder_geochange_did_not_write(region, tmp_path):
    """Only outputs (they hold the marker) are replaced; the user's files stay."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    refused = pytest.raises(InputError, match="(?s)geochange did not write it.*delete this one")
    with refused, open_inputs(region, events="regrowth") as inputs:
        simulate(inputs, out, overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "region.tif"]
    (out / "keep.txt").unlink()
    with open_inputs(region, events="regrowth") as inputs:
        simulate(inputs, out, overwrite=True)
    assert (out / "t2_landcover.tif").is_file()


def test_overwrite_never_replaces_a_folder_holding_an_input(region, tmp_path):
    """A finished output that holds this run's input (as t2 of a first run, chained) stays."""
    first = attempt(region, tmp_path / "out", events="regrowth").output
    chained = first / "t2_landcover.tif"
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    refused = pytest.raises(InputError, match=f"(?s)refusing to replace {first}: it holds")
    with refused, open_inputs(chained, events="regrowth") as inputs:
        simulate(inputs, first, overwrite=True)
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert not list(tmp_path.glob(".out.*"))


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
    with pytest.raises(InputError, match="cannot read buildings= vectors"):
        attempt(region, tmp_path / "out", buildings=tmp_path / "broken.gpkg")
    assert_nothing_written(tmp_path / "out")


class _Collect:
    """A reporter that keeps the warnings."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def stage(self, *args) -> None: ...
    def advance(self, *args) -> None: ...
    def close(self) -> None: ...


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
    reporter = _Collect()
    with open_inputs(region, changes=tmp_path / "messy.gpkg", reporter=reporter) as inputs:
        assert len(inputs.changes) == 1
        result = simulate(inputs, tmp_path / "out", reporter=reporter)
    text = " | ".join(reporter.warnings)
    assert "repaired 1 invalid" in text
    assert "1 of 4 features are empty" in text
    assert "1 of 4 features lie outside" in text
    assert "1 of 4 features are not polygons" in text
    polygons = gpd.read_file(result.output / "changes.gpkg")
    assert polygons.area_m2.sum() == pytest.approx(200, rel=0.1)


def test_a_multipolygon_with_a_collapsed_part_is_repaired_not_a_crash(region, tmp_path):
    """Found by the property test: GEOS's default repair fails ("mixed-dimension overlay") on
    a multipolygon with a part of no area, beside a polygon of no area."""
    x, y = 500_010, 5_549_900
    point_like = shapely.box(x, y, x, y)
    parts = shapely.MultiPolygon([point_like, shapely.box(x + 10, y, x + 30, y + 20)])
    frame = gpd.GeoDataFrame(geometry=[point_like, parts], crs="EPSG:32633")
    frame.to_file(tmp_path / "collapsed.gpkg")
    reporter = _Collect()
    collapsed = tmp_path / "collapsed.gpkg"
    with open_inputs(region, events="regrowth", buildings=collapsed, reporter=reporter) as inputs:
        assert len(inputs.buildings) == 1
        assert inputs.buildings.area.sum() == pytest.approx(400)
    text = " | ".join(reporter.warnings)
    assert "repaired 2 invalid geometries" in text
    assert "1 of 2 features are not polygons" in text


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


# The command line, case by case (docs/bad-inputs.md quotes these messages).


def geochange(*args: object) -> Result:
    """A ``geochange`` command run in this process, as a user types it."""
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def assert_refused(result: Result, output: Path, *fragments: str) -> str:
    """Exit status 2, an ``Error:`` holding every fragment, no traceback, nothing written."""
    error = assert_refused_beside(result, *fragments)
    assert_nothing_written(output)
    return error


def assert_refused_beside(result: Result, *fragments: str) -> str:
    """Exit status 2 and an ``Error:`` holding every fragment, without a traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    error = result.stderr[result.stderr.index("Error: ") :]
    for fragment in fragments:
        assert fragment in error, error
    return error


def _codes() -> np.ndarray:
    codes = np.full((300, 300), 2, np.uint8)
    codes[100:140, 100:160] = 8
    return codes


def _no_transform(folder: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return write_raster(folder / "r.tif", _codes(), crs=None, transform=Affine.identity())


def _unknown_codes(folder: Path) -> Path:
    codes = _codes()
    codes[0, :5] = 17
    codes[-1, -1] = 99
    return write_raster(folder / "r.tif", codes)


def _uint16_unknown(folder: Path) -> Path:
    codes = _codes().astype(np.uint16)
    codes[0, 0] = 300
    return write_raster(folder / "r.tif", codes)


def _int16_negative(folder: Path) -> Path:
    codes = _codes().astype(np.int16)
    codes[:10, :10] = -1
    return write_raster(folder / "r.tif", codes)


def _truncated(folder: Path) -> Path:
    whole = write_raster(folder / "whole.tif", _codes()).read_bytes()
    (folder / "r.tif").write_bytes(whole[: len(whole) // 2])
    return folder / "r.tif"


def _zero_pixels(folder: Path) -> Path:
    vrt = '<VRTDataset rasterXSize="0" rasterYSize="0"><VRTRasterBand dataType="Byte" band="1"/>'
    (folder / "r.vrt").write_text(vrt + "</VRTDataset>")
    return folder / "r.vrt"


def _file(name: str, content: bytes):
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(content)
        return folder / name

    return make


def _region(folder: Path) -> Path:
    return write_raster(folder / "r.tif", _codes())


def _gcps_only(folder: Path) -> Path:
    """Placed by ground control points alone (it was called 'no CRS')."""
    import rasterio
    from rasterio.control import GroundControlPoint

    points = [
        GroundControlPoint(0, 0, 500_000, 5_550_000),
        GroundControlPoint(0, 300, 500_150, 5_550_000),
        GroundControlPoint(300, 0, 500_000, 5_549_850),
    ]
    profile = {"driver": "GTiff", "width": 300, "height": 300, "count": 1, "dtype": "uint8"}
    with rasterio.open(folder / "r.tif", "w", **profile, gcps=points, crs=UTM) as dataset:
        dataset.write(_codes(), 1)
    return folder / "r.tif"


REGION_CASES = {
    "no-crs": (
        lambda d: write_raster(d / "r.tif", _codes(), crs=None),
        [],
        ["has no coordinate reference system", "--crs EPSG:32633", "gdal_edit.py -a_srs"],
    ),
    "no-georeferencing": (
        _no_transform,
        ["--crs", UTM],
        ["has no georeferencing (no transform)", "--gsd"],
    ),
    "crs-option-not-a-crs": (
        _region,
        ["--crs", "EPSG:99999"],
        ["--crs 'EPSG:99999' is not a CRS", "give an EPSG code"],
    ),
    "unknown-codes": (
        _unknown_codes,
        [],
        ["does not know: 17 (5 px), 99 (1 px)", "--classes"],
    ),
    "uint16-code-outside-scheme": (_uint16_unknown, [], ["does not know: 300 (1 px)"]),
    "int16-negative-code": (_int16_negative, [], ["does not know: -1 (100 px)"]),
    "float": (
        lambda d: write_raster(d / "r.tif", _codes().astype(np.float32)),
        [],
        ["holds float32 values, not class codes", "gdal_translate -ot Byte"],
    ),
    "multi-band": (
        lambda d: write_raster(d / "r.tif", np.stack([_codes()] * 3)),
        [],
        ["has 3 bands; scheme 'oem' reads class codes from a single band", "--classes dubai"],
    ),
    "single-band-for-rgb-scheme": (
        _region,
        ["--classes", "dubai"],
        ["has 1 band(s) but class scheme 'dubai' needs 3", "--classes"],
    ),
    "unknown-scheme": (
        _region,
        ["--classes", "lava"],
        ["class scheme 'lava' is neither a built-in scheme nor a file", "oem, oem-index"],
    ),
    "empty-file": (_file("r.tif", b""), [], ["cannot read raster", "not recognized as"]),
    "zero-pixels": (_zero_pixels, [], ["cannot read raster", "0 x 0"]),
    "all-no-data": (
        lambda d: write_raster(d / "r.tif", np.zeros((40, 40), np.uint8)),
        [],
        ["holds no data (every pixel is no-data)", "--classes"],
    ),
    "corrupt-header": (
        _file("r.tif", b"II*\x00 this is not a tiff"),
        [],
        ["cannot read raster", "a raster GDAL can read"],
    ),
    "truncated": (
        _truncated,
        [],
        ["the file is damaged or truncated", "gdalinfo -checksum"],
    ),
    "missing-file": (
        lambda d: d / "nowhere.tif",
        [],
        ["cannot read raster", "No such file or directory", "check that the path is right"],
    ),
    "gsd-not-positive": (
        _region,
        ["--gsd", "0"],
        ["--gsd must be a positive number of metres, not 0.0"],
    ),
    "gsd-not-finite": (
        _region,
        ["--gsd", "nan"],
        ["--gsd must be a positive number of metres, not nan"],
    ),
    "no-georeferencing-in-a-geographic-crs": (
        _no_transform,
        ["--crs", "EPSG:4326", "--gsd", "0.5"],
        ["has no georeferencing, and EPSG:4326 is not a projected CRS", "--crs"],
    ),
    "gsd-larger-than-the-region": (
        _region,
        ["--gsd", "100000"],
        ["--gsd 100000 m is larger than the land cover itself (150.1 m across)"],
    ),
    "local-engineering-crs": (
        lambda d: write_raster(d / "r.tif", _codes(), crs=LOCAL_CS),
        [],
        ["the CRS of land cover", "is a local engineering CRS", "EPSG:326xx"],
    ),
    "crs-option-local-engineering": (
        _region,
        ["--crs", LOCAL_CS],
        ["--crs 'LOCAL_CS[", "is a local engineering CRS", "a projected CRS"],
    ),
    "crs-option-geocentric": (
        _region,
        ["--crs", "EPSG:4978"],
        ["--crs 'EPSG:4978' is geocentric (3D), not a map CRS"],
    ),
    "utm-coordinates-labelled-wgs84": (
        lambda d: write_raster(d / "r.tif", _codes(), crs="EPSG:4326"),
        [],
        ["declares EPSG:4326, but its coordinates (500000 to 500150", "gdal_edit.py -a_srs"],
    ),
    "degrees-read-as-pixels-of-a-degree": (
        lambda d: write_raster(
            d / "r.tif", _codes()[:40, :40], crs="EPSG:4326", transform=Affine(1, 0, 13, 0, -1, 50)
        ),
        ["--events", "random"],
        ["has pixels of 110844 m on the ground; geochange draws changes metres wide", "100 m"],
    ),
    "ground-control-points-only": (
        _gcps_only,
        [],
        ["is placed by 3 ground control points, not by a CRS and a transform", "gdalwarp"],
    ),
    "url": (
        lambda d: "https://example.com/r.tif",
        [],
        ["raster https://example.com/r.tif is on the network; geochange reads local files only"],
    ),
    "vsicurl": (
        lambda d: "/vsicurl/https://example.com/r.tif",
        [],
        ["is on the network", "download it first"],
    ),
    "vsizip-over-the-network": (
        lambda d: "/vsizip//vsicurl/https://example.com/r.zip/r.tif",
        [],
        ["is a GDAL virtual path; geochange reads plain local files only", "unzip"],
    ),
    "nodata-is-a-class": (
        lambda d: write_raster(d / "r.tif", np.where(_codes() == 8, 5, _codes()), nodata=5),
        [],
        [
            "r.tif marks 5 as no data, but class scheme 'oem' reads value 5 as tree: every such "
            "pixel would be dropped",
            "gdal_edit.py -unsetnodata",
        ],
    ),
    "nodata-0-with-oem-index": (
        lambda d: write_raster(d / "r.tif", _codes() - 1, nodata=0),
        ["--classes", "oem-index"],
        ["marks 0 as no data, but class scheme 'oem-index' reads value 0 as bareland"],
    ),
}


@pytest.mark.parametrize("case", REGION_CASES)
def test_bad_region_via_cli(case, tmp_path):
    make, options, fragments = REGION_CASES[case]
    region = make(tmp_path)
    out = tmp_path / "out"
    done = geochange("simulate", region, "--events", "regrowth", *options, "-o", out)
    assert_refused(done, out, *fragments)


@pytest.mark.parametrize(
    ("crs", "source_crs", "origin"),
    [
        ("EPSG:3857", UTM, (500_000, 5_550_000)),  # Web Mercator at 50 N: 0.32 m pixels
        ("EPSG:2263", "EPSG:32618", (585_000, 4_512_000)),  # US feet, New York: 0.30 m
        ("EPSG:4326", UTM, (500_000, 5_550_000)),  # degrees
        (UTM, UTM, (500_000, 5_550_000)),
    ],
)
def test_gsd_is_metres_on_the_ground_whatever_the_crs_units(tmp_path, crs, source_crs, origin):
    """--gsd 0.5 means 0.5 m ground pixels in every CRS (it was read in the CRS's units)."""
    transform = Affine(2, 0, origin[0], 0, -2, origin[1])
    region = write_raster(tmp_path / "r.tif", _codes(), crs=source_crs, transform=transform)
    with open_inputs(region, events="regrowth", crs=crs, gsd=0.5) as inputs:
        width, height = inputs.grid.pixel_size_m()
    assert width == pytest.approx(0.5, rel=0.01) and height == pytest.approx(0.5, rel=0.01)


def test_gsd_of_an_ungeoreferenced_raster_is_metres_in_a_crs_of_feet(tmp_path):
    with open_inputs(_no_transform(tmp_path), events="regrowth", crs="EPSG:2263", gsd=1) as inputs:
        assert inputs.grid.transform.a == pytest.approx(1 / 0.3048006096)


SCHEME_CASES = {
    "a-list": (b"- 1\n- 2\n", ["has no 'codes:' or 'colours:' mapping"]),
    "null": (b"", ["has no 'codes:' or 'colours:' mapping"]),
    "codes-not-a-mapping": (b"codes: [1, 2]\n", ["its 'codes:' is not a mapping"]),
    "key-not-a-code": (
        b"codes: {1: bareland, x: water, 2: rangeland, 8: building}\n",
        ["code 'x' in class scheme", "is not a whole number", "the raster's values"],
    ),
    "fractional-key": (
        b"codes: {1.7: bareland, 2: rangeland, 8: building}\n",
        ["code 1.7 in class scheme", "is not a whole number"],
    ),
    "duplicate-key": (
        b"codes: {2: tree, 2: rangeland, 8: building}\n",
        ["cannot read class scheme", "key 2 is written twice"],
    ),
    "colour-out-of-range": (
        b'colours: {"300,0,0": tree}\n',
        ["colour '300,0,0' in", "is not 'R,G,B' with each of 0-255"],
    ),
    "colour-not-numbers": (b'colours: {"a,b,c": tree}\n', ["colour 'a,b,c' in"]),
    "not-utf-8": (
        "codes: {2: rangeland, 8: building} # café\n".encode("latin-1"),
        ["is not UTF-8 text (invalid continuation byte at byte 40)", "save it as UTF-8"],
    ),
}


@pytest.mark.parametrize("case", SCHEME_CASES)
def test_bad_class_scheme_via_cli(case, region, tmp_path):
    text, fragments = SCHEME_CASES[case]
    (tmp_path / "scheme.yaml").write_bytes(text)
    out = tmp_path / "out"
    args = ["--classes", tmp_path / "scheme.yaml", "--events", "regrowth", "-o", out]
    assert_refused(geochange("simulate", region, *args), out, *fragments)


OPTION_CASES = {
    "negative-seed": (
        ["--seed", "-1"],
        ["Invalid value for '--seed': -1 is not in the range x>=0"],
    ),
    "blocksize-not-allowed": (
        ["--co", "BLOCKSIZE=100"],
        ["GDAL's COG driver does not take the creation options BLOCKSIZE=100", "should be >= 128"],
    ),
    "unknown-compression": (
        ["--co", "COMPRESS=FOO"],
        ["does not take the creation options COMPRESS=FOO", "gdal.org/drivers/raster/cog"],
    ),
    "unknown-creation-option": (
        ["--co", "FOO=1"],
        ["does not take the creation options FOO=1: driver COG does not support"],
    ),
}


def test_the_suite_fails_a_connection_beyond_this_machine():
    """The guard in conftest: the refusals of network inputs above are tested with no network
    to fall back on, and no test may reach one."""
    import socket

    from tests.conftest import NetworkUsed

    with pytest.raises(NetworkUsed, match="192.0.2.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)


@pytest.mark.parametrize("case", OPTION_CASES)
def test_bad_options_via_cli(case, region, tmp_path):
    options, fragments = OPTION_CASES[case]
    out = tmp_path / "out"
    done = geochange("simulate", region, "--events", "regrowth", *options, "-o", out)
    assert_refused(done, out, *fragments)


def test_output_name_too_long_via_cli(region, tmp_path):
    out = tmp_path / ("x" * 250)
    done = geochange("simulate", region, "--events", "regrowth", "-o", out)
    assert_refused_beside(done, "the output folder name is 250 bytes long, more than the 240")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["region.tif"]


def test_16_bit_land_cover_with_known_codes_is_read(tmp_path):
    codes = _codes()
    region = write_raster(tmp_path / "r.tif", codes.astype(np.uint16))
    done = geochange("simulate", region, "--events", "regrowth", "-o", tmp_path / "out")
    assert done.exit_code == 0, done.output
    import rasterio

    with rasterio.open(tmp_path / "out" / "t1_landcover.tif") as src:
        assert src.dtypes == ("uint8",)
        np.testing.assert_array_equal(src.read(1), codes)


def _write(frame: gpd.GeoDataFrame, path: Path, **options) -> Path:
    frame.to_file(path, **options)
    return path


def _no_crs_shapefile(folder: Path) -> Path:
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        return _write(gpd.GeoDataFrame(geometry=[INSIDE]), folder / "v.shp")


def _two_layers(folder: Path) -> Path:
    frame = gpd.GeoDataFrame({"to_class": ["water"]}, geometry=[INSIDE], crs=UTM)
    _write(frame, folder / "v.gpkg", layer="roofs")
    return _write(frame, folder / "v.gpkg", layer="walls")


def _changes(to_class: list, geometry: list | None = None, crs: str = UTM):
    geometry = geometry or [INSIDE] * len(to_class)
    return lambda d: _write(
        gpd.GeoDataFrame({"to_class": to_class}, geometry=geometry, crs=crs), d / "v.gpkg"
    )


def _geojson(folder: Path, corners: tuple[str, ...] = ("NaN",)) -> Path:
    """Squares whose second corner's northing is written as given: ``NaN`` is a coordinate
    that is not a number (GEOS raised on it: a traceback)."""
    features = []
    for corner in corners:
        ring = f"[500010,5549900],[500040,{corner}],[500040,5549930],[500010,5549930]"
        geometry = f'{{"type":"Polygon","coordinates":[[{ring},[500010,5549900]]]}}'
        features.append(
            f'{{"type":"Feature","properties":{{"to_class":"water"}},"geometry":{geometry}}}'
        )
    crs = '{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::32633"}}'
    text = f'{{"type":"FeatureCollection","crs":{crs},"features":[{",".join(features)}]}}'
    (folder / "v.geojson").write_text(text)
    return folder / "v.geojson"


def _table_without_geometry(folder: Path) -> Path:
    import sqlite3

    path = _write(gpd.GeoDataFrame(geometry=[INSIDE], crs=UTM), folder / "v.gpkg", layer="roofs")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE owners (name TEXT)")
        db.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier) "
            "VALUES ('owners', 'attributes', 'owners')"
        )
    return Path(f"{path}|layername=owners")


VECTOR_CASES = {
    "nan-coordinate": (
        "--changes",
        _geojson,
        ["--changes vectors", "no usable polygon over the land cover"],
    ),
    "url": (
        "--buildings",
        lambda d: "https://example.com/v.gpkg",
        ["--buildings vectors https://example.com/v.gpkg is on the network"],
    ),
    "table-without-geometry": (
        "--buildings",
        _table_without_geometry,
        ["--buildings vectors", "(layer owners) are a table without geometry", "layername="],
    ),
    "no-crs": (
        "--buildings",
        _no_crs_shapefile,
        ["--buildings vectors", "have no coordinate reference system", "ogr2ogr -a_srs"],
    ),
    "wrong-declared-crs": (
        "--changes",
        _changes(["water"], crs="EPSG:4326"),
        ["no usable polygon over the land cover", "the CRS the file declares (EPSG:4326)"],
    ),
    "outside-the-region": (
        "--where",
        _changes(["water"], [shapely.box(0, 0, 10, 10)]),
        ["--where vectors", "no usable polygon over the land cover"],
    ),
    "only-points-and-lines": (
        "--changes",
        _changes(
            ["water", "water"],
            [shapely.Point(500_020, 5_549_920), shapely.LineString([(500_000, 5_549_950)] * 2)],
        ),
        ["no usable polygon over the land cover"],
    ),
    "only-empty-geometries": (
        "--buildings",
        _changes(["water"], [shapely.Polygon()]),
        ["no usable polygon over the land cover"],
    ),
    "no-features": (
        "--changes",
        _changes([], []),
        ["no usable polygon over the land cover"],
    ),
    "unreadable-file": (
        "--buildings",
        _file("v.gpkg", b"not a geopackage"),
        ["cannot read --buildings vectors", "any format OGR reads"],
    ),
    "several-layers": (
        "--changes",
        _two_layers,
        ["hold 2 layers (roofs, walls)", "|layername=roofs"],
    ),
    "no-to_class-field": (
        "--changes",
        lambda d: _write(
            gpd.GeoDataFrame({"name": ["x"]}, geometry=[INSIDE], crs=UTM), d / "v.gpkg"
        ),
        ["have no 'to_class' field (fields: name)", "add a 'to_class' field"],
    ),
    "unknown-class-name": (
        "--changes",
        _changes(["lava"]),
        ["unknown class 'lava'", "8=building"],
    ),
    "empty-to_class": (
        "--changes",
        _changes([8.0, None]),
        ["1 of 2 features have an empty 'to_class'", "give every feature a class"],
    ),
}


@pytest.mark.parametrize("case", VECTOR_CASES)
def test_bad_vectors_via_cli(case, region, tmp_path):
    option, make, fragments = VECTOR_CASES[case]
    vectors = make(tmp_path)
    out = tmp_path / "out"
    done = geochange("simulate", region, option, vectors, "--events", "regrowth", "-o", out)
    assert_refused(done, out, *fragments)


def _messy_changes(folder: Path) -> Path:
    """Invalid, empty, outside, line, multipart and mixed features, codes stored as floats."""
    bowtie = shapely.Polygon(
        [(500_010, 5_549_900), (500_030, 5_549_920), (500_030, 5_549_900), (500_010, 5_549_920)]
    )
    two_parts = shapely.MultiPolygon([INSIDE, shapely.box(500_100, 5_549_900, 500_120, 5_549_920)])
    mixed = shapely.GeometryCollection([INSIDE, shapely.Point(500_020, 5_549_920)])
    line = shapely.LineString([(500_000, 5_549_950), (500_050, 5_549_950)])
    geometry = [bowtie, shapely.Polygon(), shapely.box(0, 0, 5, 5), line, two_parts, mixed]
    frame = gpd.GeoDataFrame({"to_class": [6.0] * 6}, geometry=geometry, crs=UTM)
    return _write(frame, folder / "messy.gpkg")


def test_a_nan_coordinate_drops_its_feature_with_a_warning(region, tmp_path):
    changes = _geojson(tmp_path, ("NaN", "5549900"))
    done = geochange("simulate", region, "--changes", changes, "-o", tmp_path / "out")
    assert done.exit_code == 0, done.output
    message = "--changes: 1 of 2 features have coordinates that are not numbers (NaN or infinite)"
    assert message in done.stderr


def test_messy_vectors_finish_with_warnings_via_cli(region, tmp_path):
    """Each bad feature is repaired or dropped with a warning; float codes (an integer field
    with gaps reads back as floats) count as codes."""
    changes = _messy_changes(tmp_path)
    done = geochange("simulate", region, "--changes", changes, "-o", tmp_path / "out")
    assert done.exit_code == 0, done.output
    for warning in (
        "Warning: --changes: repaired 1 invalid geometry",
        "Warning: --changes: 1 of 6 features are empty and are ignored",
        "Warning: --changes: 1 of 6 features are not polygons (points or lines) and are ignored",
        "Warning: --changes: 1 of 6 features lie outside the land-cover raster and are ignored",
    ):
        assert warning in done.stderr
    polygons = gpd.read_file(tmp_path / "out" / "changes.gpkg")
    assert set(polygons.to_class) == {"water"}
    # the 30 m square (900 m², the bowtie inside it) and the second part (400 m²)
    assert polygons.area_m2.sum() == pytest.approx(900 + 400, rel=0.05)


def test_vectors_in_another_crs_are_reprojected(region, tmp_path):
    frame = gpd.GeoDataFrame({"to_class": ["water"]}, geometry=[INSIDE], crs=UTM)
    changes = _write(frame.to_crs("EPSG:4326"), tmp_path / "lonlat.gpkg")
    done = geochange("simulate", region, "--changes", changes, "-o", tmp_path / "out")
    assert done.exit_code == 0, done.output
    polygons = gpd.read_file(tmp_path / "out" / "changes.gpkg")
    assert polygons.crs == UTM
    assert polygons.union_all().symmetric_difference(INSIDE).area < 20


EVENT_CASES = {
    "unknown-event": ("earthquake", ["unknown event 'earthquake'", "valid events: building_add"]),
    "unknown-parameter": (
        "building_add:size=3",
        ["event 'building_add' has no parameter 'size'", "count, setback, gap, l_shapes"],
    ),
    "parameter-before-event": ("count=3", ["parameter 'count=3' comes before any event name"]),
    "parameter-without-value": (
        "building_add:count",
        ["parameter building_add:count has no value", "building_add:count=20"],
    ),
    "not-a-number": ("road_add:width=wide", ["road_add:width='wide' is not a float"]),
    "not-an-integer": ("building_add:count=2.5", ["building_add:count='2.5' is not an int"]),
    "out-of-range": (
        "deforestation:fraction=2",
        ["deforestation:fraction=2.0 is outside its range: 0.0 to 1.0", "geochange events"],
    ),
    "not-finite": ("flood:fraction=nan", ["flood:fraction='nan' is not a finite number"]),
    "count-too-large": (
        "building_add:count=100001",
        ["building_add:count=100001 is outside its range: 0 to 100000"],
    ),
    "class-not-allowed": (
        "building_remove:to=water",
        ["building_remove:to='water' is not one of the allowed classes", "developed_space"],
    ),
    "no-events": ("", ["nothing to simulate: no --events and no --changes"]),
    "parameter-twice": (
        "building_add:count=3,count=7",
        ["parameter building_add:count is given twice (3 and 7)", "once per event"],
    ),
    "full-width-digits": ("building_add:count=１０", ["building_add:count='１０' is not an int"]),
    "underscore-in-a-number": ("flood:fraction=0_5", ["flood:fraction='0_5' is not a float"]),
}


@pytest.mark.parametrize("case", EVENT_CASES)
def test_bad_events_via_cli(case, region, tmp_path):
    spec, fragments = EVENT_CASES[case]
    out = tmp_path / "out"
    assert_refused(geochange("simulate", region, "--events", spec, "-o", out), out, *fragments)


def test_an_event_with_nothing_to_act_on_says_so(region, tmp_path):
    """A flood with no water in the region changed nothing, silently."""
    done = geochange("simulate", region, "--events", "flood,regrowth", "-o", tmp_path / "out")
    assert done.exit_code == 0, done.output
    assert "Warning: flood changed nothing: the region has none of the land it acts on" in (
        done.stderr
    )
    assert "regrowth changed nothing" not in done.stderr


def test_a_count_the_region_has_no_room_for_says_how_many_were_made(region, tmp_path):
    """``building_add:count=100000`` on 150 m x 150 m placed a few dozen and said nothing."""
    events = "building_add:count=100000,building_remove:count=5,road_add:count=0"
    done = geochange("simulate", region, "--events", events, "-o", tmp_path / "out")
    assert done.exit_code == 0, done.output
    warned = [line for line in done.stderr.splitlines() if "; the region has no room" in line]
    assert len(warned) == 2, done.stderr
    built, removed = warned
    made = int(built.split("Warning: building_add: ")[1].split(" of ")[0])
    assert 0 < made < 100
    assert built.endswith(
        f" {made} of 100000 buildings placed; the region has no room (or no land) for more"
    )
    # the region holds one building: one of the five is removed
    assert "Warning: building_remove: 1 of 5 buildings removed;" in removed
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["changes"]["pixels_by_event"]["building_add"] > 0

    # everything fits: no warning, also when the count is made again at t3
    events = "building_add:count=3,building_remove:count=1"
    done = geochange("simulate", region, "--events", events, "-o", tmp_path / "fits")
    assert done.exit_code == 0, done.output
    assert "no room" not in done.stderr


def test_a_shortfall_is_summed_over_timestamps_and_blocks(region, tmp_path):
    """One warning per event and run, with the totals of every block and timestamp."""
    warnings_seen: list[str] = []

    class Collect(Reporter):
        def warning(self, message: str) -> None:
            warnings_seen.append(message)

    with open_inputs(region, events="building_add:count=100000") as inputs:
        simulate(inputs, tmp_path / "out", block_size=128, timestamps=3, reporter=Collect())
    assert len(warnings_seen) == 1, warnings_seen
    made, rest = warnings_seen[0].removeprefix("building_add: ").split(" of ", 1)
    assert 0 < int(made) < 200
    assert rest == (
        "200000 buildings placed over 2 timestamps; the region has no room (or no land) for more"
    )


def test_where_without_events_via_cli(region, tmp_path):
    where = _changes(["water"])(tmp_path)
    out = tmp_path / "out"
    done = geochange("simulate", region, "--where", where, "--changes", where, "-o", out)
    assert_refused(done, out, "--where confines --events, but no --events were given")


def test_output_problems_via_cli(region, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    done = geochange("simulate", region, "--events", "regrowth", "-o", out)
    assert done.exit_code == 2
    assert f"output folder {out} already exists" in done.stderr and "--overwrite" in done.stderr
    assert (out / "keep.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".out*"))

    (tmp_path / "afile").write_text("x")
    under = tmp_path / "afile" / "out"
    done = geochange("simulate", region, "--events", "regrowth", "-o", under)
    assert_refused(done, under, f"{tmp_path / 'afile'} is not a writable folder")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` by relative path, hidden ones too."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("cwd", "output", "message"),
    [
        ("work", ".", "it is the current folder or holds it"),
        ("work/sub", "..", "it is the current folder or holds it"),
        (".", "work", "it holds the input"),
        ("work", "", "the output folder name is empty"),
    ],
    ids=["dot", "dot-dot", "folder-of-the-input", "empty-name"],
)
def test_overwrite_never_deletes_the_users_folders_via_cli(
    region, tmp_path, monkeypatch, cwd, output, message
):
    """`-o . --overwrite` in the folder of the data deleted it all; even a folder geochange
    wrote (with its marker) is kept when it is the current folder or holds an input."""
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / MARKER).write_text("as if an old output")
    local = work / "region.tif"
    local.write_bytes(region.read_bytes())
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path / cwd)
    done = geochange("simulate", local, "--events", "regrowth", "-o", output, "--overwrite")
    assert_refused_beside(done, message)
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["region.tif", "work"]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (".", "it is the current folder or holds it"),
        ("data", "it holds the input data"),
        ("notes", "geochange did not write it (it has no .geochange or geochange.json file)"),
    ],
)
def test_train_overwrite_deletes_only_a_model_folder(tmp_path, monkeypatch, output, message):
    """`geochange train ... -o . --overwrite` removed the folder of the data (shutil.rmtree)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tile.png").write_bytes(b"pixels")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = ["train", "autoencoder", "data", "-o", output, "--overwrite", "--device", "cpu"]
    assert_refused_beside(geochange(*args), message)
    assert snapshot(tmp_path) == before


def test_one_output_folder_one_run(region, tmp_path, monkeypatch):
    """A second run started while the first hashes its inputs is refused with the first's PID;
    the first finishes and its result is the one on disk."""
    import geochange.run as run_module

    out, seen = tmp_path / "out", []
    hash_file = run_module._file_info

    def hash_while_another_run_starts(path):
        if not seen:
            seen.append(geochange("simulate", region, "--events", "regrowth", "-o", out))
        return hash_file(path)

    monkeypatch.setattr(run_module, "_file_info", hash_while_another_run_starts)
    done = geochange("simulate", region, "--events", "building_add:count=3", "-o", out)
    assert done.exit_code == 0, done.output
    error = assert_refused_beside(seen[0], f"another geochange run (PID {os.getpid()}) is writing")
    assert "unfinished run" not in error
    summary = json.loads((out / "run.json").read_text())
    assert [e["name"] for e in summary["events"]] == ["building_add"]
    assert not list(tmp_path.glob(".out*"))


def test_read_only_output_folder_via_cli(region, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:
        # root writes through permission bits: report the folder as the kernel would to a user
        access = os.access

        def as_a_user(path, mode, *args, **kwargs):
            if Path(path) == locked and mode & os.W_OK:
                return False
            return access(path, mode, *args, **kwargs)

        monkeypatch.setattr(os, "access", as_a_user)
    out = locked / "out"
    try:
        done = geochange("simulate", region, "--events", "regrowth", "-o", out)
        assert_refused(done, out, f"{locked} is not a writable folder", "choose an -o/--output")
    finally:
        locked.chmod(0o755)


def test_disk_problems_and_interruption_via_cli(region, tmp_path, monkeypatch):
    import shutil

    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 1000))
        done = geochange("simulate", region, "--events", "regrowth", "-o", out)
    assert_refused(done, out, "not enough disk space in", "0.00 GB free", "on another disk")

    def full(self, *args):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(geotiff.StreamingGeoTIFF, "finish", full)
        done = geochange("simulate", region, "--events", "regrowth", "-o", out)
    assert_refused(done, out, f"the disk holding {tmp_path} is full; nothing was written")

    def interrupt(self, *args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(geotiff.StreamingGeoTIFF, "write", interrupt)
        done = geochange("simulate", region, "--events", "regrowth", "-o", out)
    assert done.exit_code == 1
    assert "Error: interrupted; no finished output was left" in done.stderr
    assert_nothing_written(out)


# synth: the model, the device and the real image.


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from geochange.model import SemanticLDM, preset

    torch.manual_seed(0)
    return SemanticLDM(preset("tiny")).save_pretrained(tmp_path_factory.mktemp("m") / "tiny")


FAST = ["--steps", "2", "--tile-size", "64", "--overlap", "16", "--device", "cpu"]


def _model_copy(model_dir: Path, folder: Path) -> Path:
    import shutil

    return Path(shutil.copytree(model_dir, folder / "model"))


def _missing_part(model_dir: Path, folder: Path) -> Path:
    model = _model_copy(model_dir, folder)
    (model / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    return model


def _damaged_part(model_dir: Path, folder: Path) -> Path:
    model = _model_copy(model_dir, folder)
    weights = model / "mask.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    return model


def _mixed_parts(model_dir: Path, folder: Path) -> Path:
    import shutil

    from geochange.painting import DEFAULT_MODEL_DIR

    model = _model_copy(model_dir, folder)
    shutil.rmtree(model / "unet")
    shutil.copytree(DEFAULT_MODEL_DIR / "unet", model / "unet")
    return model


MODEL_CASES = {
    "folder-missing": (
        lambda model_dir, d: d / "no-model",
        ["no-model does not exist", "geochange train diffusion -o MODEL", "leave --model out"],
    ),
    "part-missing": (
        _missing_part,
        ["is missing unet/diffusion_pytorch_model.safetensors", "copy the whole model folder"],
    ),
    "part-damaged": (
        _damaged_part,
        ["cannot be loaded: SafetensorError", "copy the whole folder again"],
    ),
    "parts-of-different-models": (
        _mixed_parts,
        [
            "unet/config.json has block_out_channels [64, 96, 128] but geochange.json says [4, 8]",
            "copy the whole model folder again",
        ],
    ),
}


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("case", MODEL_CASES)
def test_bad_model_folder_via_cli(case, region, model_dir, tmp_path):
    make, fragments = MODEL_CASES[case]
    model = make(model_dir, tmp_path)
    out = tmp_path / "out"
    done = geochange("synth", region, "--events", "regrowth", "--model", model, *FAST, "-o", out)
    assert_refused(done, out, *fragments)


@pytest.mark.usefixtures("one_thread")
def test_cuda_asked_for_without_a_gpu_via_cli(region, model_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU, so --device cuda is not a bad input here")
    out = tmp_path / "out"
    args = ["--events", "regrowth", "--model", model_dir, *FAST, "--device", "cuda"]
    done = geochange("synth", region, *args, "-o", out)
    assert_refused(done, out, "--device cuda asked for, but torch sees no CUDA GPU", "--device cpu")


def _rgb(folder: Path, crs: str | None = UTM, x0: float = 500_000) -> Path:
    image = np.full((3, 100, 100), 120, np.uint8)
    transform = Affine(1.5, 0, x0, 0, -1.5, 5_550_000)
    return write_raster(folder / "image.tif", image, crs=crs, transform=transform)


IMAGE_CASES = {
    "not-rgb": (
        lambda d: write_raster(d / "image.tif", np.full((50, 50), 9, np.uint16)),
        ["must be an RGB image of uint8 bands (it has 1 band(s) of uint16)", "gdal_translate"],
    ),
    "no-crs": (lambda d: _rgb(d, crs=None), ["has no CRS", "georeference it onto REGION"]),
}


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("case", IMAGE_CASES)
def test_bad_image_via_cli(case, region, model_dir, tmp_path):
    make, fragments = IMAGE_CASES[case]
    out = tmp_path / "out"
    args = ["--events", "regrowth", "--model", model_dir, *FAST, "--image", make(tmp_path)]
    assert_refused(geochange("synth", region, *args, "-o", out), out, *fragments)


@pytest.mark.usefixtures("one_thread")
def test_image_not_overlapping_the_region_via_cli(region, model_dir, tmp_path):
    out = tmp_path / "out"
    image = _rgb(tmp_path, x0=600_000)
    args = ["--events", "regrowth", "--model", model_dir, *FAST, "--image", image]
    assert_refused(geochange("synth", region, *args, "-o", out), out, "does not overlap")


def test_gsd_far_from_the_models_is_worded_as_a_warning():
    from geochange.model import preset

    config = preset("tiny")
    assert config.gsd_warning((0.5, 0.5)) is None
    assert config.gsd_warning((0.9, 0.9)) is None and config.gsd_warning((0.3, 0.3)) is None
    message = config.gsd_warning((10.0, 10.0))
    assert message == (
        "the land cover's pixels are 10 m but model 'tiny' learnt from 0.5 m pixels, so it "
        "paints objects at the wrong scale; resample the region with --gsd 0.5"
    )
    assert "0.1 m" in config.gsd_warning((0.1, 0.1))
    message = config.gsd_warning((0.2, 0.2), "a source tile", "its bank is scaled")
    assert message.startswith("a source tile's pixels are 0.2 m") and message.endswith(
        "wrong scale; its bank is scaled"
    )


@pytest.mark.usefixtures("one_thread")
def test_gsd_far_from_the_models_warns_via_cli(model_dir, tmp_path):
    coarse = Affine(10, 0, 500_000, 0, -10, 5_550_000)
    region = write_raster(tmp_path / "coarse.tif", _codes()[:64, :64], transform=coarse)
    out = tmp_path / "out"
    args = ["--events", "regrowth", "--model", model_dir, *FAST, "-o", out]
    done = geochange("synth", region, *args)
    assert done.exit_code == 0, done.output
    assert "Warning: the land cover's pixels are 10 m but model 'tiny' learnt from" in done.stderr
    assert (out / "t2.tif").is_file()


@pytest.mark.usefixtures("one_thread")
def test_bad_sampling_options_via_cli(region, model_dir, tmp_path):
    out = tmp_path / "out"
    base = ["--events", "regrowth", "--model", model_dir, *FAST]
    done = geochange("synth", region, *base, "--steps", "1", "-o", out)
    assert_refused(done, out, "--sampler dpm needs --steps 2 or more")
    done = geochange("synth", region, *base, "--tile-size", "30", "-o", out)
    assert_refused(done, out, "--tile-size must be a positive multiple of")


def test_python_callers_are_told_parameter_names_and_the_cli_its_flags(tmp_path: Path):
    """One message, two spellings: ``gsd=`` for the Python API, ``--gsd`` on the command line."""
    from geochange.errors import InputError, in_python_terms

    error = InputError("--gsd must be positive", "add --overwrite, or set --tile-size and --co")
    assert str(error) == (
        "gsd= must be positive\n  How to fix: add overwrite=True, or set tile_size= and "
        "creation_options="
    )
    assert error.in_cli_terms().startswith("--gsd must be positive")
    assert in_python_terms("a -o-- b --no-exemplars") == "a -o-- b exemplars=False"
