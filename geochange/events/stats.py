"""Measurements of the region that events draw from (taken in the scan pass)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from geochange.classes import BUILDING
from geochange.events.masks import EIGHT, Runs

BUILDING_SAMPLE = 2000
"""At most this many of the region's buildings are measured per block for building_add."""


def measure_buildings(
    t1: np.ndarray,
    core: tuple[slice, slice],
    pixel_size_m: tuple[float, float],
    limit: int = BUILDING_SAMPLE,
) -> np.ndarray:
    """(length, width) in metres of up to ``limit`` buildings whose centroid lies in ``core``.

    Each building (a connected piece of the building class) is measured along its principal
    axes, which gives the sides of its rotated bounding rectangle for the usual, rectangular
    footprint. Buildings cut by the array's edge are skipped: their size is unknown.
    Sums and extents are taken over the buildings' rows of pixels (runs), all at once.
    """
    labels, n = ndimage.label(t1 == BUILDING, EIGHT)
    if n == 0 or limit <= 0:
        return np.zeros((0, 2))
    runs = Runs.of(labels)
    size = runs.total(n)
    safe = np.maximum(size, 1)
    col_sum, col_squares = runs.column_sums()
    row = runs.row.astype(float)
    cy = runs.total(n, row * runs.length) / safe
    cx = runs.total(n, col_sum) / safe
    top, bottom, left, right = runs.bounds(n)
    rows_in = range(*core[0].indices(t1.shape[0]))
    cols_in = range(*core[1].indices(t1.shape[1]))
    crow, ccol = np.floor(cy), np.floor(cx)
    keep = (
        (size >= 4)
        & (crow >= rows_in.start)
        & (crow < rows_in.stop)
        & (ccol >= cols_in.start)
        & (ccol < cols_in.stop)
        & (top > 0)
        & (left > 0)
        & (bottom < t1.shape[0] - 1)
        & (right < t1.shape[1] - 1)
    )
    keep[0] = False
    ids = np.flatnonzero(keep)[:limit]
    if not ids.size:
        return np.zeros((0, 2))
    py, px = pixel_size_m[1], pixel_size_m[0]
    syy = (runs.total(n, row * row * runs.length) - size * cy * cy) * py * py
    sxx = (runs.total(n, col_squares) - size * cx * cx) * px * px
    sxy = (runs.total(n, row * col_sum) - size * cy * cx) * px * py
    angle = 0.5 * np.arctan2(2 * sxy, sxx - syy)
    # along and across the axes, a run's extremes are at its end pixels
    lab = runs.label
    cos, sin = np.cos(angle[lab]), np.sin(angle[lab])
    y = (row - cy[lab]) * py
    extent = np.zeros((4, n + 1))
    extent[[0, 2]] = np.inf
    extent[[1, 3]] = -np.inf
    for end in (runs.start, runs.stop):
        x = (end - cx[lab]) * px
        along, across = x * cos + y * sin, y * cos - x * sin
        np.minimum.at(extent[0], lab, along)
        np.maximum.at(extent[1], lab, along)
        np.minimum.at(extent[2], lab, across)
        np.maximum.at(extent[3], lab, across)
    pixel = (pixel_size_m[0] + pixel_size_m[1]) / 2
    sides = np.column_stack([extent[1] - extent[0], extent[3] - extent[2]])[ids] + pixel
    return np.sort(sides, axis=1)[:, ::-1].astype(float)
