"""``item.json``: the STAC item every run writes validates, offline, and describes its files.

Validation is pystac's own (``Item.validate``) against the core schemas pystac ships and the
official extension schemas in ``tests/stac_schemas`` (see ``extract.py`` there for where they come
from); fetching any schema from the web fails the test.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pystac
import pystac.stac_io
import pytest
import rasterio
import shapely
import torch
from affine import Affine
from pyproj import CRS, Transformer
from pystac.extensions.classification import ClassificationExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension
from pystac.validation import JsonSchemaSTACValidator

from geochange.classes import CLASS_NAMES, PALETTE
from geochange.example import example_landcover
from geochange.inputs import open_inputs
from geochange.model import SemanticLDM, preset
from geochange.painting import SamplingOptions, model_hash
from geochange.simulation import simulate
from geochange.synth import synthesize
from geochange.writing.folder import MARKER
from geochange.writing.preview import write_preview
from geochange.writing.stac import footprint, write_item
from tests.conftest import write_raster

SCHEMAS = Path(__file__).parent / "stac_schemas"
EXTENSIONS = {
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.0.0/schema.json",
}


@pytest.fixture
def validator(monkeypatch: pytest.MonkeyPatch) -> JsonSchemaSTACValidator:
    """pystac's validator with the extension schemas preloaded and the web out of reach."""
    local = pystac.stac_io.DefaultStacIO.read_text_from_href

    def offline(self: pystac.stac_io.DefaultStacIO, href: str) -> str:
        assert "://" not in href, f"validation tried to fetch {href}"
        return local(self, href)

    monkeypatch.setattr(pystac.stac_io.DefaultStacIO, "read_text_from_href", offline)
    checker = JsonSchemaSTACValidator()
    for uri, source in json.loads((SCHEMAS / "sources.json").read_text()).items():
        checker.schema_cache[uri] = json.loads((SCHEMAS / source["file"]).read_text())
    return checker


def check_item(folder: Path, validator: JsonSchemaSTACValidator) -> pystac.Item:
    """Validates, every asset resolves, every file is an asset, the grid is the GeoTIFFs'."""
    item = pystac.Item.from_file(folder / "item.json")
    checked = item.validate(validator=validator)
    assert set(checked) >= EXTENSIONS and set(item.stac_extensions) == EXTENSIONS
    assert item.id == folder.name and item.datetime == item.common_metadata.created
    for asset in item.assets.values():
        assert asset.href.startswith("./") and asset.roles
        assert Path(asset.get_absolute_href()).is_file()
    files = {p.name for p in folder.iterdir()} - {"item.json", MARKER}
    assert {Path(a.href).name for a in item.assets.values()} == files

    proj = ProjectionExtension.ext(item)
    run = json.loads((folder / "run.json").read_text())
    for key in ("t1_landcover", "t2_landcover", "change"):
        with rasterio.open(folder / f"{key}.tif") as src:
            crs = CRS.from_user_input(proj.code) if proj.code else CRS.from_wkt(proj.wkt2)
            assert crs == CRS(src.crs)
            assert proj.transform == list(src.transform)[:6]
            assert proj.shape == list(src.shape) and proj.bbox == list(src.bounds)
            bands = RasterExtension.ext(item.assets[key]).bands
            assert [b.data_type for b in bands] == list(src.dtypes)
            assert bands[0].nodata == src.nodata
            resolution = np.mean(run["grid"]["pixel_size_m"])
            assert bands[0].spatial_resolution == pytest.approx(resolution)
            classes = ClassificationExtension.ext(item.assets[key]).classes
            assert set(np.unique(src.read(1))) <= {c.value for c in classes}
            assert [c.value for c in classes if c.nodata] == [src.nodata]
    centre = Transformer.from_crs(crs, 4326, always_xy=True).transform(
        *(Affine(*proj.transform) @ (proj.shape[1] / 2, proj.shape[0] / 2))
    )
    outline = shapely.geometry.shape(item.geometry)
    assert outline.contains(shapely.Point(centre))
    west, south, east, north = item.bbox
    assert west <= centre[0] <= east and south <= centre[1] <= north
    assert outline.bounds == pytest.approx(item.bbox, abs=1e-9)

    assert item.properties["processing:software"]["geochange"] == run["versions"]["geochange"]
    lineage = item.properties["processing:lineage"]
    assert f"seed {run['seed']}" in lineage
    assert all(event["name"] in lineage for event in run["events"])
    assert item.properties["geochange:events"] == run["events"]
    return item


def run(region: Path, output: Path, events: str) -> Path:
    with open_inputs(region, events=events) as inputs:
        return simulate(inputs, output, seed=3).output


def test_simulate_item(validator: JsonSchemaSTACValidator, tmp_path: Path):
    codes = (example_landcover(200, seed=3) + 1).astype(np.uint8)
    codes[:8, :12] = 0  # a no-data corner
    region = write_raster(tmp_path / "region.tif", codes)
    out = run(region, tmp_path / "out", "building_add:count=4,deforestation:fraction=0.4")
    item = check_item(out, validator)
    assert ProjectionExtension.ext(item).code == "EPSG:32633"

    landcover = ClassificationExtension.ext(item.assets["t1_landcover"]).classes
    assert [c.value for c in landcover] == list(range(9))
    assert landcover[0].nodata and not any(c.nodata for c in landcover[1:])
    assert [c.title for c in landcover[1:]] == list(CLASS_NAMES)
    assert [c.color_hint for c in landcover[1:]] == [bytes(rgb).hex().upper() for rgb in PALETTE]
    change = ClassificationExtension.ext(item.assets["change"]).classes
    expected = [(0, "unchanged", None), (1, "changed", None), (255, "nodata", True)]
    assert [(c.value, c.name, c.nodata) for c in change] == expected
    assert item.assets["changes"].media_type == pystac.MediaType.GEOPACKAGE
    assert item.assets["run"].roles == ["metadata"]
    assert item.assets["t1_landcover_style"].href == "./t1_landcover.qml"
    assert "geochange:model" not in item.properties

    broken = copy.deepcopy(item.to_dict())  # the extension schemas are really applied
    broken["assets"]["t1_landcover"]["classification:classes"][1]["color_hint"] = "red"
    with pytest.raises(pystac.errors.STACValidationError, match="classification"):
        pystac.Item.from_dict(broken).validate(validator=validator)


@pytest.mark.parametrize(
    ("crs", "transform", "code"),
    [
        ("+proj=laea +lat_0=50 +lon_0=15 +datum=WGS84", Affine(2, 0, 1000, 0, -2, 900), None),
        ("EPSG:4326", Affine(2e-5, 0, 15.3, 0, -2e-5, 50.1), "EPSG:4326"),
    ],
)
def test_crs_without_code_and_geographic(
    validator: JsonSchemaSTACValidator, tmp_path: Path, crs: str, transform: Affine, code: str
):
    """A CRS no authority names is written as WKT2 (proj:code null); a geographic grid works."""
    codes = (example_landcover(64, seed=1) + 1).astype(np.uint8)
    region = write_raster(tmp_path / "region.tif", codes, crs=crs, transform=transform)
    item = check_item(run(region, tmp_path / "out", "deforestation:fraction=0.5"), validator)
    proj = ProjectionExtension.ext(item)
    assert proj.code == code and (proj.wkt2 is None) == (code is not None)


def test_footprint_across_the_antimeridian():
    """A UTM zone 60 grid reaching past 180°: the outline is cut, the bbox runs west > east."""
    geometry, (west, south, east, north) = footprint(
        rasterio.crs.CRS.from_epsg(32660), (700_000, 5_540_000, 740_000, 5_560_000)
    )
    assert geometry["type"] == "MultiPolygon"
    assert 179 < west < 180 and -180 < east < -179 and 49 < south < north < 51


@pytest.mark.usefixtures("one_thread")
def test_synth_item(validator: JsonSchemaSTACValidator, tmp_path: Path):
    torch.manual_seed(0)
    model_dir = SemanticLDM(preset("tiny")).save_pretrained(tmp_path / "tiny")
    codes = (example_landcover(128, seed=2) + 1).astype(np.uint8)
    region = write_raster(tmp_path / "region.tif", codes)
    rgb = np.random.default_rng(0).integers(0, 256, (3, 128, 128), np.uint8)
    image = write_raster(tmp_path / "image.tif", rgb)
    options = SamplingOptions(steps=2, tile_size=64, overlap=16)
    with open_inputs(region, events="building_add:count=3") as inputs:
        result = synthesize(
            inputs, tmp_path / "out", model=model_dir, image=image, options=options, device="cpu"
        )
    item = check_item(result.output, validator)
    assert item.assets["t1"].title == "t1 image (real, warped onto the grid)"
    assert item.assets["t2"].title == "t2 image (painted)"
    assert "t1 is the real image image.tif" in item.properties["processing:lineage"]
    for key in ("t1", "t2"):
        image = item.assets[key]
        assert image.roles == ["data", "visual"] and image.media_type == pystac.MediaType.COG
        bands = RasterExtension.ext(image).bands
        assert [b.data_type for b in bands] == ["uint8"] * 3
        assert all(b.nodata is None for b in bands)  # no data is the internal mask
    model = item.properties["geochange:model"]
    assert model["sha256"] == result.summary["model"]["sha256"] == model_hash(model_dir)
    assert model["id"] == "tiny" and model["preset"] == result.summary["model"]["preset"]
    assert model["sha256"] in item.properties["processing:lineage"]
    assert item.properties["processing:software"]["torch"] == torch.__version__

    write_preview(result.output)  # what `synth --preview` adds after the run
    write_item(result.output, result.summary)
    item = check_item(result.output, validator)
    assert item.assets["preview"].media_type == pystac.MediaType.PNG
