"""A minimum mapping unit for the simulated change, applied to the land cover itself.

Events paint shapes over mixed land, so they leave specks: a changed pixel cut off from its
event, or a corner of a new building that another event or class took. Cleaning the rasters
(not only the polygons) keeps every output in agreement: ``change.tif``, ``t2_landcover.tif``,
the painted images and ``changes.gpkg`` all describe the same change.

Two rules, on 4-connected pixels (the connectivity of the polygons):

1. a **changed region** (changed pixels, whatever their event or class) smaller than the minimum
   is undone: its pixels take back their t1 class and count as unchanged;
2. inside a changed region, a **piece** of one event and one t2 class smaller than the minimum is
   merged into its largest neighbouring piece (GDAL's sieve): it takes that piece's event and t2
   class. A region made of small pieces only takes its most common event and class.

Blocks are cleaned in order with a margin of up to twice the minimum in pixels around them, so
every region or piece that is small lies wholly inside the window that decides on it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from rasterio import features
from rasterio.windows import Window
from scipy import ndimage

from geochange.classes import NUM_CLASSES

if TYPE_CHECKING:
    from geochange.plan import Plan
    from geochange.scratch import ScratchRaster


def min_pixels(min_area_m2: float, pixel_size_m: tuple[float, float]) -> int:
    """The smallest change kept, in whole pixels (1 keeps everything)."""
    return max(1, math.ceil(min_area_m2 / (pixel_size_m[0] * pixel_size_m[1]) - 1e-9))


def pieces(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the 4-connected pieces of equal value inside ``mask`` (0 outside), and count them."""
    labels = np.zeros(values.shape, np.int32)
    count = 0
    for value in np.unique(values[mask]):
        piece, n = ndimage.label(mask & (values == value))
        labels[piece > 0] = piece[piece > 0] + count
        count += n
    return labels, count


def clean_window(
    t1: np.ndarray, t2: np.ndarray, event: np.ndarray, smallest: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Apply both rules to one window of class indices and event codes: the new t2 and event,
    or None when every piece is large enough already (the usual case, checked first)."""
    changed = event > 0
    labels, _ = pieces(event.astype(np.int32) * NUM_CLASSES + t2, changed)
    if not (np.bincount(labels.ravel()) < smallest)[1:].any():
        return None
    regions, _ = ndimage.label(changed)
    undo = (np.bincount(regions.ravel()) < smallest)[regions] & changed
    t2 = np.where(undo, t1, t2)
    event = np.where(undo, 0, event)
    changed &= ~undo
    key = event.astype(np.int32) * NUM_CLASSES + t2
    if smallest < key.size:  # GDAL refuses a threshold as large as the window
        key = features.sieve(key, smallest, mask=changed, connectivity=4)
    labels, _ = pieces(key, changed)
    small = (np.bincount(labels.ravel()) < smallest)[labels] & changed
    if small.any():
        key = np.where(small, _most_common(key, changed), key)
    new_t2 = np.where(changed, key % NUM_CLASSES, t2).astype(np.uint8)
    new_event = np.where(changed & (new_t2 != t1), key // NUM_CLASSES, 0).astype(np.uint8)
    return new_t2, new_event


def _most_common(key: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """Per pixel, the most common key of its changed region (ties: the lowest key)."""
    regions, n = ndimage.label(changed)
    found, counts = np.unique(
        np.stack([regions[changed], key[changed]]), axis=1, return_counts=True
    )
    order = np.lexsort((found[1], -counts, found[0]))
    first = np.unique(found[0][order], return_index=True)[1]
    best = np.zeros(n + 1, key.dtype)
    best[found[0][order][first]] = found[1][order][first]
    return best[regions]


def clean(
    plan: Plan, t1: ScratchRaster, t2: ScratchRaster, event: ScratchRaster, smallest: int
) -> dict[str, int]:
    """Clean the scratch t2 and event rasters in place, block by block in row-major order;
    returns the pixels undone (rule 1) and merged into another piece (rule 2)."""
    counts = {"pixels_undone": 0, "pixels_merged": 0}
    if smallest <= 1:
        return counts
    margin = min(2 * smallest, plan.block_size)
    grid = plan.grid
    for block in plan.blocks():
        core = block.core
        r0, c0 = max(int(core.row_off) - margin, 0), max(int(core.col_off) - margin, 0)
        r1 = min(int(core.row_off + core.height) + margin, grid.height)
        c1 = min(int(core.col_off + core.width) + margin, grid.width)
        window = Window(c0, r0, c1 - c0, r1 - r0)
        codes = event.read(window)
        if not codes.any():
            continue
        classes = t2.read(window)
        cleaned = clean_window(t1.read(window), classes, codes, smallest)
        if cleaned is None:
            continue
        new_t2, new_event = cleaned
        rows = slice(int(core.row_off) - r0, int(core.row_off) - r0 + int(core.height))
        cols = slice(int(core.col_off) - c0, int(core.col_off) - c0 + int(core.width))
        t2.write(core, new_t2[rows, cols])
        event.write(core, new_event[rows, cols])
        before, after = codes[rows, cols] > 0, new_event[rows, cols]
        counts["pixels_undone"] += int((before & (after == 0)).sum())
        moved = (after != codes[rows, cols]) | (new_t2[rows, cols] != classes[rows, cols])
        counts["pixels_merged"] += int((moved & (after > 0)).sum())
    return counts
