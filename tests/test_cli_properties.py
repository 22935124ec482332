"""Property-based test (hypothesis) of the command as a user meets it: random raster metadata
(CRS, transform, no-data, data type, bands) and random options. Every run either finishes with
the outputs in place or exits 2 with an ``Error:``; never exit 1, never a traceback, and never a
half-written output (no hidden partial folder or lock left behind, no output on refusal).
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from click.testing import CliRunner
from hypothesis import event, given, settings
from hypothesis import strategies as st
from rasterio.errors import NotGeoreferencedWarning

from geochange.cli.main import cli
from tests.conftest import write_raster

EXAMPLES = int(os.environ.get("GEOCHANGE_CLI_EXAMPLES", "200"))
"""Examples per run of the suite (about 4 s; more with GEOCHANGE_CLI_EXAMPLES); each is a
whole command on disk."""
LOCAL_CS = (
    'LOCAL_CS["site grid",LOCAL_DATUM["site",0],UNIT["metre",1],'
    'AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
)
# (CRS, origin, pixel size): places in the CRS's own units, and a few that are not places
PLACES = [
    ("EPSG:32633", (500_000.0, 5_550_000.0), 1.0),
    ("EPSG:32633", (500_000.0, 5_550_000.0), 4.0),
    ("EPSG:4326", (13.0, 50.0), 1e-5),
    ("EPSG:4326", (500_000.0, 5_550_000.0), 1.0),  # UTM numbers labelled as degrees
    ("EPSG:3857", (1_450_000.0, 6_450_000.0), 2.0),
    ("EPSG:2263", (980_000.0, 200_000.0), 3.0),  # US feet
    ("EPSG:32633", (1e12, 1e12), 1.0),  # far off the Earth
    (LOCAL_CS, (0.0, 0.0), 1.0),
    (None, (0.0, 0.0), 1.0),
]
OPTIONS = {
    "--classes": ["oem", "oem-index", "worldcover", "dubai"],
    "--gsd": ["1", "2.5", "0", "-1", "nan", "inf", "1e6"],
    "--crs": ["EPSG:32633", "EPSG:4326", "EPSG:3857", "EPSG:2263", "EPSG:4978", "EPSG:99999"],
    "--seed": ["0", "7", "-1"],
    "--co": ["COMPRESS=ZSTD", "COMPRESS=FOO", "BLOCKSIZE=100", "PREDICTOR=2"],
}
EVENTS = ["regrowth", "flood,deforestation", "building_add:count=3", "road_add", "random"]


@st.composite
def rasters(draw: st.DrawFn) -> dict:
    """The metadata and pixels of a land-cover GeoTIFF."""
    crs, origin, size = draw(st.sampled_from(PLACES))
    dtype = draw(st.sampled_from(["uint8"] * 4 + ["uint16", "int16", "int32", "float32"]))
    bands = draw(st.sampled_from([1] * 7 + [3]))
    side = draw(st.integers(16, 48))
    values = draw(st.sampled_from([range(0, 9)] * 3 + [range(1, 9), range(0, 8), [2, 5, 8, 17]]))
    seed = draw(st.integers(0, 2**16))
    codes = np.random.default_rng(seed).choice(list(values), (bands, side, side))
    nodata = draw(st.sampled_from([None, None, None, 0, 0, 5, 255]))
    if nodata is not None and np.dtype(dtype).kind == "u" and nodata > np.iinfo(dtype).max:
        nodata = None
    flip = draw(st.sampled_from([1, 1, -1]))  # -1: south-up
    transform = Affine(size, 0, origin[0], 0, -size * flip, origin[1])
    return {
        "data": codes.astype(dtype),
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }


@st.composite
def options(draw: st.DrawFn) -> list[str]:
    """Zero to three options with values a user might type."""
    chosen = draw(st.lists(st.sampled_from(sorted(OPTIONS)), max_size=2, unique=True))
    args = ["--events", draw(st.sampled_from(EVENTS))]
    for name in chosen:
        args += [name, draw(st.sampled_from(OPTIONS[name]))]
    return args


def write(folder: Path, raster: dict) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return write_raster(folder / "r.tif", **raster)


@settings(max_examples=EXAMPLES, deadline=None)
@given(raster=rasters(), args=options())
def test_any_raster_and_options_finish_or_say_what_is_wrong(raster, args):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        region = write(folder, raster)
        out = folder / "out"
        result = CliRunner().invoke(cli, ["simulate", str(region), *args, "-o", str(out)])
        assert "Traceback" not in result.output, result.output
        assert result.exit_code in (0, 2), result.output
        assert not list(folder.glob(".out*")), "a partial folder or lock was left"
        event(f"exit {result.exit_code}")
        if result.exit_code == 2:
            message = result.stderr[result.stderr.index("Error: ") + 7 :]
            event(re.sub(r"\S*/\S*", "PATH", message.splitlines()[0])[:60])
        if result.exit_code == 2:
            assert "Error: " in result.stderr, result.output
            assert not out.exists()
            return
        for name in ("t1_landcover.tif", "t2_landcover.tif", "change.tif", "changes.gpkg"):
            assert (out / name).is_file(), name
        with rasterio.open(out / "t1_landcover.tif") as t1, rasterio.open(out / "change.tif") as c:
            assert t1.crs is not None and t1.shape == c.shape
            assert set(np.unique(t1.read(1))) <= set(range(9))
