"""Change polygons: the changed pixels polygonized by (event, t2 class).

One polygon is one connected change of one event to one class (a new building is one polygon,
whatever land it was built on); its ``from_class`` is the t1 class that covered most of it.
Specks below the minimum area were already undone or merged in the rasters (``geochange.clean``),
so polygons and rasters agree pixel for pixel.

Each block is polygonized on its own; pieces that touch an inner block border are joined with
their neighbours across it at the end, so no polygon is cut at a block border. Polygons are built
in whole-pixel coordinates of the grid, where joins are exact, and moved onto the map only when
written, so neighbouring polygons share their edges exactly."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from affine import Affine
from rasterio import features
from rasterio.windows import Window
from shapely.affinity import affine_transform

from geochange.classes import CLASS_NAMES, NUM_CLASSES
from geochange.clean import pieces
from geochange.grid import Grid

COLUMNS = ["event", "from_class", "to_class", "area_m2"]
GPKG_OPTIONS = {"VERSION": "1.2"}
"""GeoPackage 1.2: GDAL writes 1.4 by default, which QGIS 3.22's GDAL only partly reads."""

Piece = tuple[int, shapely.Polygon, np.ndarray]
"""A polygon's key (event code × classes + t2 class), geometry and t1 pixels per class."""


class ChangePolygonWriter:
    """Writes change polygons to a GeoPackage layer block by block.

    Only the pieces that touch an inner block border wait in memory for their neighbours; the
    rest is appended to the file as soon as its block is done, so memory does not grow with the
    raster's area.
    """

    def __init__(self, path: Path, grid: Grid, event_names: list[str]) -> None:
        self.path = path
        self.grid = grid
        self.event_names = event_names
        self.count = 0
        self.area_by_event: dict[str, float] = {}
        self._on_border: list[Piece] = []
        a, b, c, d, e, f = grid.transform[:6]
        self._to_map = [a, b, d, e, c, f]
        self._equal_area = grid.equal_area_crs()

    def add_pieces(self, found: tuple[list[Piece], list[Piece]]) -> None:
        """Add one block's pieces from ``block_pieces``: the finished ones are written, those on
        an inner block border wait for their neighbours."""
        finished, on_border = found
        self._on_border.extend(on_border)
        self._write(finished)

    def close(self) -> Path:
        """Join the pieces cut by block borders, write them, and return the file's path."""
        by_key: dict[int, list[Piece]] = {}
        for piece in self._on_border:
            by_key.setdefault(piece[0], []).append(piece)
        joined = []
        for key, group in sorted(by_key.items()):
            parts = shapely.get_parts(shapely.union_all([p for _, p, _ in group]))
            inside = shapely.STRtree(parts).query(
                shapely.point_on_surface([p for _, p, _ in group]), predicate="within"
            )
            t1_counts = np.zeros((len(parts), NUM_CLASSES), np.int64)
            np.add.at(t1_counts, inside[1], np.stack([c for _, _, c in group])[inside[0]])
            joined.extend(zip([key] * len(parts), parts, t1_counts, strict=True))
        self._on_border = []
        self._write(joined, always=True)
        return self.path

    def _write(self, pieces: list[Piece], always: bool = False) -> None:
        if not pieces and not (always and self.count == 0):
            return
        pieces.sort(key=lambda piece: (piece[0], piece[1].bounds[1], piece[1].bounds[0]))
        keys = np.array([k for k, _, _ in pieces], dtype=np.int64)
        from_class = [int(np.argmax(c)) for _, _, c in pieces]
        frame = gpd.GeoDataFrame(
            {
                "event": [self.event_names[k // NUM_CLASSES - 1] for k in keys],
                "from_class": [CLASS_NAMES[c] for c in from_class],
                "to_class": [CLASS_NAMES[k % NUM_CLASSES] for k in keys],
            },
            geometry=[affine_transform(p, self._to_map) for _, p, _ in pieces],
            crs=self.grid.crs,
        )
        frame["area_m2"] = frame.geometry.to_crs(self._equal_area).area.round(2)
        pyogrio.write_dataframe(
            frame[[*COLUMNS, "geometry"]],
            self.path,
            layer="changes",
            driver="GPKG",
            geometry_type="Polygon",
            append=self.path.exists(),
            dataset_options=GPKG_OPTIONS,
        )
        self.count += len(frame)
        for name, area in frame.groupby("event")["area_m2"].sum().items():
            self.area_by_event[name] = round(self.area_by_event.get(name, 0.0) + area, 2)


def block_pieces(
    shape: tuple[int, int], block: tuple[Window, np.ndarray, np.ndarray, np.ndarray]
) -> tuple[list[Piece], list[Piece]]:
    """The changes of one block of a grid of ``shape`` (height, width) polygonized, from its
    ``core`` window and the t1, t2 and event arrays over it: the pieces that are finished, and
    those touching an inner block border. Needs no writer, so blocks can be polygonized in
    other processes."""
    core, t1, t2, event = block
    changed = event > 0
    if not changed.any():
        return [], []
    key = event.astype(np.int32) * NUM_CLASSES + t2
    labels, count = pieces(key, changed)
    keys = np.zeros(count + 1, np.int32)
    keys[labels[changed]] = key[changed]
    t1_counts = np.bincount(
        labels[changed] * NUM_CLASSES + np.minimum(t1[changed], NUM_CLASSES - 1),
        minlength=(count + 1) * NUM_CLASSES,
    ).reshape(count + 1, NUM_CLASSES)
    transform = Affine.translation(core.col_off, core.row_off)
    inner = _inner_border(core, *shape)
    finished: list[Piece] = []
    on_border: list[Piece] = []
    for geojson, label in features.shapes(labels, mask=changed, transform=transform):
        polygon = shapely.geometry.shape(geojson)
        target = on_border if polygon.intersects(inner) else finished
        target.append((int(keys[int(label)]), polygon, t1_counts[int(label)]))
    return finished, on_border


def _inner_border(core: Window, height: int, width: int) -> shapely.Geometry:
    """The sides of ``core`` that another block of a ``height`` x ``width`` grid lies beyond,
    in pixel coordinates."""
    c0, r0 = int(core.col_off), int(core.row_off)
    c1, r1 = c0 + int(core.width), r0 + int(core.height)
    sides = []
    if r0 > 0:
        sides.append([(c0, r0), (c1, r0)])
    if r1 < height:
        sides.append([(c0, r1), (c1, r1)])
    if c0 > 0:
        sides.append([(c0, r0), (c0, r1)])
    if c1 < width:
        sides.append([(c1, r0), (c1, r1)])
    return shapely.MultiLineString(sides)
