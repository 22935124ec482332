"""New buildings as buildings: a real roof fitted to each new footprint, and its shadow.

Filling a footprint with roof pixels cut at random gives a patchwork of roofs, and a building
without a shadow looks painted on. So each new footprint takes one real building of the image
(the one nearby most alike in size and elongation), turned and stretched onto the footprint's
axes; then every new building casts a shadow in the direction, length and darkness that the
image's own buildings show.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from geochange.classes import BUILDING, NODATA

MIN_ROOF = 16
"""Smallest building (pixels) worth taking a roof from."""
CHOICES = 3
"""A roof is drawn among this many best-matching buildings, so new houses are not all alike."""
SHADOW_REACH = 10
"""Longest shadow (pixels) looked for beside the image's buildings."""
SHADOW_MIN_PIXELS = 200
"""Building pixels needed to read the shadows off an image; fewer: no shadows are cast."""
DIRECTIONS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def _moments(labels: np.ndarray, count: int) -> tuple[np.ndarray, ...]:
    """Per label 1..count: pixel count, centroid (row, col) and 2x2 covariance."""
    index = np.arange(1, count + 1)
    rows, cols = np.indices(labels.shape, dtype=np.float64)
    n = ndimage.sum_labels(np.ones_like(rows), labels, index)
    cy = ndimage.sum_labels(rows, labels, index) / n
    cx = ndimage.sum_labels(cols, labels, index) / n
    syy = ndimage.sum_labels(rows * rows, labels, index) / n - cy * cy
    sxx = ndimage.sum_labels(cols * cols, labels, index) / n - cx * cx
    sxy = ndimage.sum_labels(rows * cols, labels, index) / n - cy * cx
    cov = np.stack([np.stack([syy, sxy], -1), np.stack([sxy, sxx], -1)], -2)
    return n, np.stack([cy, cx], -1), cov


def _axes(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spreads (major, minor; pixels) and axes (columns) of a covariance."""
    values, vectors = np.linalg.eigh(cov)
    return np.sqrt(np.maximum(values[::-1], 0.25)), vectors[:, ::-1]


def fit_roofs(
    base: np.ndarray,
    filled: np.ndarray,
    rgb: np.ndarray,
    valid: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Fill each new building footprint with one real roof of ``rgb``, in ``base``; marks the
    pixels in ``filled``. Footprints the roof does not quite cover take its nearest pixel."""
    new = (before != after) & (after == BUILDING)
    roofs, count = ndimage.label(valid & (before == BUILDING) & (after == BUILDING))
    if not new.any() or count == 0:
        return
    area, centre, cov = _moments(roofs, count)
    usable = np.flatnonzero(area >= MIN_ROOF)
    if len(usable) == 0:
        return
    spreads = np.array([_axes(c)[0] for c in cov])
    roof_boxes = ndimage.find_objects(roofs)
    footprints, n_new = ndimage.label(new)
    f_area, f_centre, f_cov = _moments(footprints, n_new)
    for k, box in enumerate(ndimage.find_objects(footprints)):
        f_spread, f_axes = _axes(f_cov[k])
        elongation = np.log(spreads[usable, 0] / spreads[usable, 1])
        misfit = np.abs(np.log(area[usable] / f_area[k])) + np.abs(
            elongation - np.log(f_spread[0] / f_spread[1])
        )
        distance = np.hypot(*(centre[usable] - f_centre[k]).T)
        best = usable[np.lexsort((distance, misfit))[:CHOICES]]
        roof = best[rng.integers(len(best))]
        r_spread, r_axes = _axes(cov[roof])
        matrix = r_axes @ np.diag(r_spread / f_spread) @ f_axes.T
        rows, cols = roof_boxes[roof]
        corner = np.array([rows.start, cols.start], np.float64)
        origin = np.array([box[0].start, box[1].start], np.float64)
        offset = centre[roof] - corner - matrix @ (f_centre[k] - origin)
        shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
        inside = ndimage.affine_transform(
            (roofs[rows, cols] == roof + 1).astype(np.float32), matrix, offset, shape, order=0
        )
        footprint = footprints[box] == k + 1
        take = footprint & (inside > 0.5)
        if not take.any():
            continue
        pixels = np.stack(
            [
                ndimage.affine_transform(
                    band[rows, cols].astype(np.float32), matrix, offset, shape, order=1
                )
                for band in rgb
            ]
        )
        _, nearest = ndimage.distance_transform_edt(~take, return_indices=True)
        pixels = pixels[:, nearest[0], nearest[1]]  # the uncovered rim: nearest roof pixel
        target = base[:, box[0], box[1]]
        target[:, footprint] = np.clip(np.round(pixels[:, footprint]), 0, 255).astype(np.uint8)
        filled[box] |= footprint


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``mask`` moved by (dy, dx) pixels, what leaves the frame dropped."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def shadow_of_buildings(
    rgb: np.ndarray, valid: np.ndarray, buildings: np.ndarray
) -> tuple[tuple[int, int], int, float] | None:
    """The image's building shadows as (direction (dy, dx), length in steps, darkness factor),
    read off the land beside its ``buildings``: the side darkest just off the walls, as far as
    it stays darker than the other sides. None where too few buildings or no clear side."""
    if buildings.sum() < SHADOW_MIN_PIXELS:
        return None
    luminance = rgb.astype(np.float32).mean(axis=0)
    ground = valid & ~buildings
    profiles = []
    for dy, dx in DIRECTIONS:
        profile, reached = [], buildings
        for step in range(1, SHADOW_REACH + 1):
            shifted = _shift(buildings, dy * step, dx * step)
            ring = shifted & ~reached & ground  # the land exactly ``step`` away on this side
            reached = reached | shifted
            profile.append(luminance[ring].mean() if ring.any() else np.nan)
        profiles.append(profile)
    profiles = np.array(profiles)
    if np.isnan(profiles).any():
        return None
    reference = np.median(profiles, axis=0)
    darkness = profiles / reference
    side = int(np.argmin(darkness[:, 0]))
    factor = float(darkness[side, 0])
    if factor > 0.9:
        return None
    length = int(np.argmax(darkness[side] > 1 - (1 - factor) / 2)) or SHADOW_REACH
    return DIRECTIONS[side], length, factor


def cast_shadows(
    base: np.ndarray,
    rgb: np.ndarray,
    valid: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
) -> np.ndarray:
    """Darken ``base`` where the new buildings' shadows fall, as the image's own buildings'
    do; returns where it did (land that keeps its class: the shadow is not a change)."""
    old = valid & (before == BUILDING) & (after == BUILDING)
    shadow = shadow_of_buildings(rgb, valid, old)
    new = (before != after) & (after == BUILDING)
    dark = np.zeros(new.shape, bool)
    if shadow is None or not new.any():
        return dark
    (dy, dx), length, factor = shadow
    for step in range(1, length + 1):
        dark |= _shift(new, dy * step, dx * step)
    dark &= (after != BUILDING) & (after != NODATA)
    base[:, dark] = np.round(base[:, dark] * factor).astype(np.uint8)
    return dark
