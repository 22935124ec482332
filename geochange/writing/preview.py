"""PNG previews: class colours, image grids, change outlines, and the t1/t2 sheet of a run.

Used for training previews, the quality contact sheet and ``synth --preview``: a quick look
without a GIS, so plain RGB arrays (3, h, w) and no georeferencing.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from scipy import ndimage

from geochange.classes import NODATA, PALETTE, load_scheme

OUTLINE = (255, 0, 0)
PREVIEW_EDGE = 1024
"""Longest side of ``preview.png`` in pixels; larger runs are shown reduced."""
GAP = 4
"""Pixels of white between the panels of a sheet."""


def colour(classes: np.ndarray) -> np.ndarray:
    """Class indices (..., h, w) to RGB (..., 3, h, w) in the class palette; no data black."""
    lookup = np.zeros((256, 3), np.uint8)
    lookup[: len(PALETTE)] = PALETTE
    lookup[NODATA] = 0
    return np.moveaxis(lookup[classes], -1, -3)


def outline(
    rgb: np.ndarray, region: np.ndarray, rgb_colour: tuple[int, int, int] = OUTLINE
) -> np.ndarray:
    """A copy of ``rgb`` (3, h, w) with the border pixels of boolean ``region`` painted."""
    edge = region & ~ndimage.binary_erosion(region, border_value=1)
    out = rgb.copy()
    out[:, edge] = np.array(rgb_colour, np.uint8)[:, None]
    return out


def grid(rows: list[list[np.ndarray]] | list[np.ndarray], gap: int = 0) -> np.ndarray:
    """(3, H, W) image of rows of (3, h, w) panels (a row may be an (N, 3, h, w) array)."""

    def join(panels: list[np.ndarray], axis: int) -> np.ndarray:
        parts = []
        for panel in panels:
            if parts and gap:
                shape = list(panel.shape)
                shape[axis] = gap
                parts.append(np.full(shape, 255, np.uint8))
            parts.append(panel)
        return np.concatenate(parts, axis=axis)

    return join([join(list(row), axis=2) for row in rows], axis=1)


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 (3, h, w) array as a PNG."""
    profile = {"driver": "PNG", "width": rgb.shape[2], "height": rgb.shape[1]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", count=3, dtype="uint8", **profile) as dst:
            dst.write(rgb)
    return Path(path)


def run_sheet(folder: str | Path, edge: int = PREVIEW_EDGE) -> np.ndarray:
    """t1 | t2 with the change outlined, over t1 | t2 land cover, read from a ``synth`` run
    (at most ``edge`` pixels along the longest side of each panel)."""
    folder = Path(folder)
    with rasterio.open(folder / "t1.tif") as src:
        scale = max(src.width / edge, src.height / edge, 1.0)
        shape = (max(1, round(src.height / scale)), max(1, round(src.width / scale)))

    def read(name: str, bands: list[int], resampling: Resampling) -> np.ndarray:
        with rasterio.open(folder / name) as src:
            return src.read(bands, out_shape=(len(bands), *shape), resampling=resampling)

    t1, t2 = (read(n, [1, 2, 3], Resampling.average) for n in ("t1.tif", "t2.tif"))
    changed = read("change.tif", [1], Resampling.nearest)[0] == 1
    oem = load_scheme("oem")
    maps = [
        colour(oem.classify(read(f"{n}_landcover.tif", [1], Resampling.nearest)[0])[0])
        for n in ("t1", "t2")
    ]
    return grid([[outline(t1, changed), outline(t2, changed)], maps], gap=GAP)


def write_preview(folder: Path) -> Path:
    """``folder/preview.png`` from ``run_sheet``, renamed into place only when complete."""
    partial = write_png(folder / ".preview.png.part", run_sheet(folder))
    return partial.replace(folder / "preview.png")
