"""Change polygons: the changed pixels polygonized by (event, from class, to class).

Each block is polygonized on its own (memory stays bounded); pieces that touch an inner block
border are joined with their neighbours across it at the end, so no polygon is cut at a block
border. Polygons are built in whole-pixel coordinates of the grid, where joins are exact, and
moved onto the map only at the end, so neighbouring polygons share their edges exactly.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from rasterio import features
from rasterio.windows import Window
from shapely.affinity import affine_transform

from geochange.classes import CLASS_NAMES, NUM_CLASSES
from geochange.grid import Grid

COLUMNS = ["event", "from_class", "to_class", "area_m2"]


def _key(event: np.ndarray, t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
    return (event.astype(np.int32) * NUM_CLASSES + t1) * NUM_CLASSES + t2


class ChangePolygons:
    """Collects change polygons block by block."""

    def __init__(self, grid: Grid, event_names: list[str]) -> None:
        self.grid = grid
        self.event_names = event_names
        self._final: list[tuple[int, shapely.Polygon]] = []
        self._on_border: list[tuple[int, shapely.Polygon]] = []

    def add(self, core: Window, t1: np.ndarray, t2: np.ndarray, event: np.ndarray) -> None:
        """Polygonize the changes of one block (arrays cover ``core``)."""
        changed = event > 0
        if not changed.any():
            return
        key = _key(event, t1, t2)
        transform = Affine.translation(core.col_off, core.row_off)
        inner = self._inner_border(core)
        for geojson, value in features.shapes(key, mask=changed, transform=transform):
            polygon = shapely.geometry.shape(geojson)
            target = self._on_border if polygon.intersects(inner) else self._final
            target.append((int(value), polygon))

    def frame(self) -> gpd.GeoDataFrame:
        """All polygons with their attributes; areas in m² from an equal-area projection."""
        pieces = list(self._final)
        by_key: dict[int, list[shapely.Polygon]] = {}
        for key, polygon in self._on_border:
            by_key.setdefault(key, []).append(polygon)
        for key, polygons in sorted(by_key.items()):
            merged = shapely.union_all(polygons, grid_size=None)
            pieces.extend((key, p) for p in shapely.get_parts(merged))
        pieces.sort(key=lambda kp: (kp[0], kp[1].bounds[1], kp[1].bounds[0]))
        keys = np.array([k for k, _ in pieces], dtype=np.int64)
        a, b, c, d, e, f = self.grid.transform[:6]
        to_map = [a, b, d, e, c, f]
        frame = gpd.GeoDataFrame(
            {
                "event": [self.event_names[k // NUM_CLASSES**2 - 1] for k in keys],
                "from_class": [CLASS_NAMES[k // NUM_CLASSES % NUM_CLASSES] for k in keys],
                "to_class": [CLASS_NAMES[k % NUM_CLASSES] for k in keys],
            },
            geometry=[affine_transform(p, to_map) for _, p in pieces],
            crs=self.grid.crs,
        )
        frame["area_m2"] = frame.geometry.to_crs(self.grid.equal_area_crs()).area.round(2)
        return frame[[*COLUMNS, "geometry"]]

    def _inner_border(self, core: Window) -> shapely.Geometry:
        """The sides of ``core`` that another block lies beyond, in pixel coordinates."""
        c0, r0 = int(core.col_off), int(core.row_off)
        c1, r1 = c0 + int(core.width), r0 + int(core.height)
        sides = []
        if r0 > 0:
            sides.append([(c0, r0), (c1, r0)])
        if r1 < self.grid.height:
            sides.append([(c0, r1), (c1, r1)])
        if c0 > 0:
            sides.append([(c0, r0), (c0, r1)])
        if c1 < self.grid.width:
            sides.append([(c1, r0), (c1, r1)])
        return shapely.MultiLineString(sides)


def write_gpkg(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame.to_file(path, layer="changes", driver="GPKG")
    return path
