"""The STAC item of a run, ``item.json``: every file of the run as an asset, with its grid, bands,
classes and how it was made, so that STAC tools can index, search and load a run.

The item is written into the hidden partial folder before it is renamed (see ``folder.py``), so
asset hrefs are relative (``./t1.tif``) and the item holds no self link: both stay valid wherever
the folder ends up. Extension versions are the ones pystac writes by default (projection 2.0,
raster 1.1, classification 2.0); pystac has no class for the processing extension, so its fields
are written as processing 1.0 defines them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pystac
import rasterio
import rasterio.warp
import shapely
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension, Sampling
from rasterio.crs import CRS

from geochange.classes import CLASS_NAMES, NODATA_CODE, PALETTE
from geochange.writing import timestamps_in

PROCESSING_SCHEMA = "https://stac-extensions.github.io/processing/v1.0.0/schema.json"
WGS84 = CRS.from_epsg(4326)
FOOTPRINT_POINTS = 16
"""Points per side of the grid's outline when it is reprojected to longitude/latitude, so that a
side that curves in EPSG:4326 (a UTM grid far from its central meridian) is followed closely."""


def write_item(folder: Path, summary: dict) -> Path:
    """Write ``folder/item.json`` for the run whose ``run.json`` content is ``summary``.

    Can be called again on the finished folder once more files are in it (a preview): it lists
    what is there, and replaces the old item only when the new one is complete.
    """
    item = build_item(folder, summary)
    document = item.to_dict(include_self_link=False, transform_hrefs=False)
    partial = folder / ".item.json.part"
    partial.write_text(json.dumps(document, indent=2))
    return partial.replace(folder / "item.json")


def build_item(folder: Path, summary: dict) -> pystac.Item:
    """The run as a STAC item (nothing written).

    ``datetime`` is when the item was made, which is also ``created``: the images show no moment
    in the world. t1 is painted from (or, with ``--image``, is) a land-cover map of a date
    geochange is not told, and t2 is a simulated change, so the only time that is known and true
    is when the run made them. t1 and t2 are told apart by asset, not by time.
    """
    with rasterio.open(folder / "t1_landcover.tif") as grid:
        crs, transform, bounds, shape = grid.crs, grid.transform, grid.bounds, grid.shape
    geometry, bbox = footprint(crs, tuple(bounds))
    made = datetime.now(timezone.utc)
    item = pystac.Item(
        id=Path(summary["outputs"][0]).parent.name,  # the final name, not the partial folder's
        geometry=geometry,
        bbox=bbox,
        datetime=made,
        properties={
            "title": f"geochange {'synth' if 'model' in summary else 'simulate'} run",
            "created": pystac.utils.datetime_to_str(made),
        },
    )
    code = _crs_code(crs)
    ProjectionExtension.ext(item, add_if_missing=True).apply(
        code=code,
        wkt2=None if code else crs.to_wkt(version="WKT2_2019"),
        bbox=list(bounds),
        shape=list(shape),
        transform=list(transform)[:6],
    )
    pixel_m = summary["grid"]["pixel_size_m"]
    resolution = round(sum(pixel_m) / len(pixel_m), 4)
    _add_assets(item, folder, summary, resolution)
    item.stac_extensions.append(PROCESSING_SCHEMA)
    item.properties["processing:lineage"] = lineage(summary)
    item.properties["processing:software"] = software(summary)
    item.properties["geochange:seed"] = summary["seed"]
    item.properties["geochange:events"] = summary["events"]
    if summary.get("model"):  # a painter built without model info (tests) records none
        model = summary["model"]
        item.properties["geochange:model"] = {
            "id": Path(model["path"]).name,
            "preset": model["preset"],
            "sha256": model["sha256"],
        }
    return item


def footprint(crs: CRS, bounds: tuple[float, float, float, float]) -> tuple[dict, list[float]]:
    """The grid's outline and bounding box in EPSG:4326, the outline densified so that curved
    sides are followed; cut at the antimeridian, where the bbox then has west > east."""
    left, bottom, right, top = bounds
    side = max(right - left, top - bottom) / FOOTPRINT_POINTS
    outline = shapely.segmentize(shapely.box(left, bottom, right, top), side)
    geometry = rasterio.warp.transform_geom(
        crs, WGS84, shapely.geometry.mapping(outline), antimeridian_cutting=True, precision=7
    )
    if geometry["type"] == "MultiPolygon":
        west, south, east, north = rasterio.warp.transform_bounds(
            crs, WGS84, left, bottom, right, top, densify_pts=FOOTPRINT_POINTS
        )
    else:
        west, south, east, north = shapely.geometry.shape(geometry).bounds
    return geometry, [west, south, east, north]


def lineage(summary: dict) -> str:
    """One paragraph: where the land cover came from, the events, the seed and the model."""
    grid = summary["grid"]
    events = ", ".join(
        f"{event['name']} ({', '.join(f'{k}={v}' for k, v in event.items() if k != 'name')})"
        for event in summary["events"]
    )
    text = (
        f"Land cover {Path(summary['region']).name} (classes {summary['classes']}) on a "
        f"{grid['width']} x {grid['height']} grid in {grid['crs']}; change simulated with "
        f"seed {summary['seed']} by events {events or 'none'}"
    )
    if summary.get("user_changes"):
        text += f" and {summary['user_changes']} user-drawn changes"
    text += "."
    if summary.get("model"):
        model, sampling = summary["model"], summary["sampling"]
        real = sampling.get("image")
        first = f"t1 is the real image {Path(real).name} warped onto the grid; " if real else ""
        text += (
            f" {first}images painted by the ChangeAnywhere sampler with model "
            f"{Path(model['path']).name} (preset {model['preset']}, sha256 {model['sha256']}), "
            f"{sampling['sampler']} {sampling['steps']} steps, {sampling['composition']} "
            f"composition, exemplars {'on' if sampling['exemplars'] else 'off'}."
        )
        acquisition = {k: v for k, v in sampling["acquisition"].items() if v not in (0, "none")}
        if acquisition:
            settings = ", ".join(f"{k}={v}" for k, v in acquisition.items())
            text += f" Acquisition differences applied to the images after t1: {settings}."
    return text


def software(summary: dict) -> dict[str, str]:
    """geochange and the libraries it ran with; torch and diffusers too when a model painted."""
    versions = {name: str(value) for name, value in summary["versions"].items()}
    if "model" in summary:
        for package in ("torch", "diffusers"):
            try:
                versions.setdefault(package, version(package))
            except PackageNotFoundError:
                continue
    return versions


def _crs_code(crs: CRS) -> str | None:
    """``EPSG:32633`` and the like; None for a CRS no authority names (then WKT2 is written)."""
    authority = crs.to_authority()
    return f"{authority[0]}:{authority[1]}" if authority else None


def _add_assets(item: pystac.Item, folder: Path, summary: dict, resolution: float) -> None:
    real_t1 = (summary.get("sampling") or {}).get("image")
    stamps = timestamps_in(folder)
    for stamp in stamps:
        asset = _raster(item, folder, f"{stamp}_landcover", f"{stamp} land cover", resolution)
        asset.description = "OpenEarthMap codes 1-8, 0 = no data"
        ClassificationExtension.ext(asset, add_if_missing=True).apply(classes=landcover_classes())
    for stamp in stamps:
        if (folder / f"{stamp}.tif").is_file():
            made = "real, warped onto the grid" if stamp == "t1" and real_t1 else "painted"
            asset = _raster(item, folder, stamp, f"{stamp} image ({made})", resolution)
            asset.roles = ["data", "visual"]
    asset = _raster(item, folder, "change", "change t1 → t2", resolution)
    nodata = int(RasterExtension.ext(asset).bands[0].nodata)
    ClassificationExtension.ext(asset, add_if_missing=True).apply(classes=change_classes(nodata))
    item.add_asset(
        "changes",
        pystac.Asset(
            "./changes.gpkg",
            "change polygons",
            "layer changes: event, from_class, to_class, area_m2",
            pystac.MediaType.GEOPACKAGE,
            ["data"],
        ),
    )
    item.add_asset("run", pystac.Asset("./run.json", "run record", None, pystac.MediaType.JSON))
    item.assets["run"].roles = ["metadata"]
    if (folder / "preview.png").is_file():
        preview = pystac.Asset("./preview.png", "preview", None, pystac.MediaType.PNG, ["overview"])
        item.add_asset("preview", preview)
    for style in sorted(folder.glob("*.qml")):
        title = f"QGIS style of {style.stem}.tif"
        asset = pystac.Asset(f"./{style.name}", title, None, pystac.MediaType.XML, ["metadata"])
        item.add_asset(f"{style.stem}_style", asset)


def _raster(
    item: pystac.Item, folder: Path, key: str, title: str, resolution: float
) -> pystac.Asset:
    """A COG asset with one ``raster:bands`` entry per band, read from the file."""
    path = folder / f"{key}.tif"
    asset = pystac.Asset(f"./{path.name}", title, None, pystac.MediaType.COG, ["data"])
    item.add_asset(key, asset)
    with rasterio.open(path) as src:
        nodata = src.nodata
        if nodata is not None and all(dtype.startswith(("uint", "int")) for dtype in src.dtypes):
            nodata = int(nodata)
        bands = [
            RasterBand.create(
                nodata=nodata,
                sampling=Sampling.AREA,
                data_type=DataType(dtype),
                spatial_resolution=resolution,
            )
            for dtype in src.dtypes
        ]
    RasterExtension.ext(asset, add_if_missing=True).apply(bands=bands)
    return asset


def landcover_classes() -> list[Classification]:
    """The OpenEarthMap codes written in the land-cover GeoTIFFs, with geochange's palette."""
    classes = [Classification.create(NODATA_CODE, "no land cover", "nodata", nodata=True)]
    for index, (name, (r, g, b)) in enumerate(zip(CLASS_NAMES, PALETTE, strict=True)):
        classes.append(
            Classification.create(
                index + 1,
                f"OpenEarthMap class {name}",
                name.replace(" ", "_"),
                title=name,
                color_hint=f"{r:02X}{g:02X}{b:02X}",
            )
        )
    return classes


def change_classes(nodata: int) -> list[Classification]:
    """The values of ``change.tif``, with the no-data value its file declares."""
    return [
        Classification.create(0, "the land cover is the same at t1 and t2", "unchanged"),
        Classification.create(1, "an event changed the land cover between t1 and t2", "changed"),
        Classification.create(nodata, "no land cover at t1", "nodata", nodata=True),
    ]
