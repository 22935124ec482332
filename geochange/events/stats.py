"""Measurements of the region that events draw from (taken in the scan pass)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from geochange.classes import BUILDING
from geochange.events.shapes import EIGHT, centroids


def measure_buildings(
    t1: np.ndarray, core: tuple[slice, slice], pixel_size_m: tuple[float, float], limit: int
) -> np.ndarray:
    """(length, width) in metres of up to ``limit`` buildings whose centroid lies in ``core``.

    Each building (a connected piece of the building class) is measured along its principal
    axes, which gives the sides of its rotated bounding rectangle for the usual, rectangular
    footprint. Buildings cut by the array's edge are skipped: their size is unknown.
    """
    labels, n = ndimage.label(t1 == BUILDING, EIGHT)
    if n == 0 or limit <= 0:
        return np.zeros((0, 2))
    flat = np.flatnonzero(labels)
    lab = labels.ravel()[flat]
    rows, cols = np.divmod(flat, t1.shape[1])
    size, cy, cx = centroids(lab, rows, cols, n, pixel_size_m)
    rows_in = range(*core[0].indices(t1.shape[0]))
    cols_in = range(*core[1].indices(t1.shape[1]))
    crow = np.floor(cy / pixel_size_m[1]).astype(int)
    ccol = np.floor(cx / pixel_size_m[0]).astype(int)
    keep = (
        (size >= 4)
        & (crow >= rows_in.start)
        & (crow < rows_in.stop)
        & (ccol >= cols_in.start)
        & (ccol < cols_in.stop)
    )
    for i, found in enumerate(ndimage.find_objects(labels), start=1):
        rs, cs = found
        if rs.start == 0 or cs.start == 0 or rs.stop == t1.shape[0] or cs.stop == t1.shape[1]:
            keep[i] = False
    keep[0] = False
    ids = np.flatnonzero(keep)[:limit]
    if not ids.size:
        return np.zeros((0, 2))
    chosen = np.isin(lab, ids)
    lab, rows, cols = lab[chosen], rows[chosen], cols[chosen]
    y = rows * pixel_size_m[1] - cy[lab]
    x = cols * pixel_size_m[0] - cx[lab]
    syy = np.bincount(lab, y * y, n + 1)
    sxx = np.bincount(lab, x * x, n + 1)
    sxy = np.bincount(lab, x * y, n + 1)
    angle = 0.5 * np.arctan2(2 * sxy, sxx - syy)
    cos, sin = np.cos(angle[lab]), np.sin(angle[lab])
    along, across = x * cos + y * sin, y * cos - x * sin
    pixel = (pixel_size_m[0] + pixel_size_m[1]) / 2
    length = ndimage.maximum(along, lab, ids) - ndimage.minimum(along, lab, ids) + pixel
    width = ndimage.maximum(across, lab, ids) - ndimage.minimum(across, lab, ids) + pixel
    sides = np.column_stack([length, width])
    return np.sort(sides, axis=1)[:, ::-1].astype(float)
