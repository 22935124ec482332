"""Vector inputs (buildings, user-drawn changes, confining polygons) brought onto the grid.

Any format OGR reads; reprojected to the grid's CRS; invalid geometries repaired; features that
are empty, not polygons or outside the grid are dropped and counted in a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from rasterio import features
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds

from geochange.classes import class_index
from geochange.errors import InputError
from geochange.grid import Grid, require_local

Warn = Callable[[str], None]


def read_polygons(path: str | Path, grid: Grid, role: str, warn: Warn) -> gpd.GeoDataFrame:
    """Polygons of ``path`` in the grid's CRS, repaired, without those off the grid.

    ``path`` may name a layer the way QGIS does: ``city.gpkg|layername=buildings``.
    """
    path, layer = split_layer(str(path))
    require_local(path, f"{role} vectors")
    try:
        if layer is None:
            layers = pyogrio.list_layers(path)
            if len(layers) > 1:
                names = ", ".join(str(name) for name, _ in layers)
                raise InputError(
                    f"{role} vectors {path} hold {len(layers)} layers ({names})",
                    f"name one the way QGIS does: '{path}|layername={layers[0][0]}'",
                )
        frame = gpd.read_file(path, layer=layer)
    except InputError:
        raise
    except Exception as err:
        raise InputError(
            f"cannot read {role} vectors {path}: {err}",
            "check the path; any format OGR reads works (GeoPackage, GeoJSON, Shapefile, ...)",
        ) from err
    if not isinstance(frame, gpd.GeoDataFrame):
        raise InputError(
            f"{role} vectors {path}{'' if layer is None else f' (layer {layer})'} are a table "
            "without geometry",
            "name a layer that holds polygons, e.g. 'file.gpkg|layername=buildings'",
        )
    if frame.crs is None:
        raise InputError(
            f"{role} vectors {path} have no coordinate reference system",
            "set one, e.g. `ogr2ogr -a_srs EPSG:4326 fixed.gpkg input.gpkg`",
        )
    declared = frame.crs.to_string()
    total = len(frame)
    frame = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
    empty = total - len(frame)
    coordinates, owner = shapely.get_coordinates(frame.geometry.values, return_index=True)
    broken = np.unique(owner[~np.isfinite(coordinates).all(axis=1)])
    frame = frame.drop(index=frame.index[broken])
    invalid = int((~frame.geometry.is_valid).sum())
    if invalid:
        # "structure" repairs each ring and unions the shells; the default "linework" fails
        # outright (GEOS: mixed-dimension overlay) on a multipolygon with a collapsed part
        repaired = shapely.make_valid(
            frame.geometry.values, method="structure", keep_collapsed=False
        )
        frame = frame.set_geometry(repaired)
        warn(f"{role}: repaired {invalid} invalid geometr{'y' if invalid == 1 else 'ies'}")
    frame = frame.set_geometry(frame.geometry.apply(_polygonal_part))
    not_polygons = int(frame.geometry.is_empty.sum())
    frame = frame[~frame.geometry.is_empty].to_crs(grid.crs)
    inside = frame.geometry.intersects(shapely.box(*grid.bounds))
    outside = int((~inside).sum())
    frame = frame[inside]
    for count, what in (
        (empty, "are empty"),
        (len(broken), "have coordinates that are not numbers (NaN or infinite)"),
        (not_polygons, "are not polygons (points or lines)"),
        (outside, "lie outside the land-cover raster"),
    ):
        if count:
            warn(f"{role}: {count} of {total} features {what} and are ignored")
    if frame.empty:
        raise InputError(
            f"{role} vectors {path} have no usable polygon over the land cover",
            "check that they cover the same place as the raster and that their coordinates "
            f"are in the CRS the file declares ({declared})",
        )
    return frame.reset_index(drop=True)


def read_changes(path: str | Path, grid: Grid, warn: Warn) -> gpd.GeoDataFrame:
    """User-drawn change polygons with ``to_class`` (index) and ``event`` (label) columns."""
    frame = read_polygons(path, grid, "--changes", warn)
    if "to_class" not in frame.columns:
        raise InputError(
            f"--changes vectors {path} have no 'to_class' field "
            f"(fields: {', '.join(c for c in frame.columns if c != 'geometry')})",
            "add a 'to_class' field holding a class name (e.g. 'building') or code (1-8)",
        )
    missing = frame["to_class"].isna()
    if missing.any():
        raise InputError(
            f"--changes vectors {path}: {int(missing.sum())} of {len(frame)} features have an "
            "empty 'to_class'",
            "give every feature a class name (e.g. 'building') or code (1-8)",
        )
    frame["to_class"] = [class_index(v) for v in frame["to_class"]]
    if "event" not in frame.columns:
        frame["event"] = "user_change"
    frame["event"] = frame["event"].fillna("user_change").astype(str)
    return frame


def rasterize(
    frame: gpd.GeoDataFrame, grid: Grid, window: Window, values: np.ndarray | None = None
) -> np.ndarray:
    """Burn polygons into a ``window`` of the grid (pixel centres inside), 0 elsewhere.

    ``values`` are burn values per feature (uint8 1 for all when ``None``); later features win.
    """
    burn = np.ones(len(frame), np.uint8) if values is None else values
    out = np.zeros((int(window.height), int(window.width)), burn.dtype)
    transform = grid.window_transform(window)
    hits = frame.sindex.query(shapely.box(*window_bounds(window, grid.transform)))
    if len(hits) == 0:
        return out
    hits = np.sort(hits)
    shapes = zip(frame.geometry.values[hits], burn[hits], strict=True)
    return features.rasterize(shapes, out=out, transform=transform)


def split_layer(text: str) -> tuple[str, str | None]:
    """``city.gpkg|layername=buildings`` to its path and layer name."""
    path, sep, option = text.partition("|")
    if sep and option.startswith("layername="):
        return path, option.removeprefix("layername=")
    return text, None


def _polygonal_part(geometry: shapely.Geometry) -> shapely.Geometry:
    """Keep the polygons of a geometry (make_valid may add lines or points)."""
    if isinstance(geometry, shapely.Polygon | shapely.MultiPolygon):
        return geometry
    parts = shapely.get_parts(geometry)
    polygons = [p for p in parts if isinstance(p, shapely.Polygon | shapely.MultiPolygon)]
    return shapely.union_all(polygons) if polygons else shapely.Polygon()
