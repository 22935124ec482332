"""New buildings as buildings: a real roof fitted to each new footprint, and its shadow.

Filling a footprint with roof pixels cut at random gives a patchwork of roofs, and a building
without a shadow looks painted on. So each new footprint takes one real building (the one of
the image nearby most alike in size and elongation; where the image has none, one of the
exemplar bank's), turned and stretched onto the footprint's axes; then every new building casts
a shadow in the direction, length and darkness that the image's own buildings show (or, in an
image without buildings, those of the bank crop its roofs came from: their lit and shaded sides
go with that sun).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy import ndimage

from geochange.classes import BUILDING, NODATA

MIN_ROOF = 16
"""Smallest building (pixels) worth taking a roof from."""
CHOICES = 3
"""A roof is drawn among this many best-matching buildings, so new houses are not all alike."""
FOREIGN = 1.0
"""How much worse a fit a roof from elsewhere (the bank) counts than one of the image, in the
misfit's units (log area ratio + log elongation ratio): the image's own roofs look the part,
but one small shed stretched over a whole block does not."""
SHADOW_REACH = 10
"""Longest shadow (pixels) looked for beside the image's buildings."""
SHADOW_MIN_PIXELS = 200
"""Building pixels needed to read the shadows off an image; fewer: no shadows are cast."""
DIRECTIONS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]

Shadow = tuple[tuple[int, int], int, float]
"""Direction (dy, dx) a shadow falls, its length in steps and the factor it darkens land by."""


@dataclass(frozen=True)
class Roofs:
    """Buildings a new footprint can take its roof from: per roof the pixels of its bounding
    box (3, h, w), which of them are roof, and its shape's moments."""

    pixels: list[np.ndarray]
    inside: list[np.ndarray]
    area: np.ndarray
    centre: np.ndarray
    """(n, 2) centroid within its box."""
    position: np.ndarray
    """(n, 2) centroid in the image (infinitely far for a bank's roofs)."""
    spreads: np.ndarray
    """(n, 2) spread along the major and minor axis, pixels."""
    axes: np.ndarray
    """(n, 2, 2) the axes, as columns."""
    recolour: list[Callable[[np.ndarray], np.ndarray] | None] | None = None
    """Per roof, what brings its pixels into the image's colours (None: they are in them).
    Applied to the roofs taken alone: recolouring all of a bank's roofs for each image took
    over a quarter of the exemplar fill."""

    def __len__(self) -> int:
        return len(self.area)


def _moments(labels: np.ndarray, count: int) -> tuple[np.ndarray, ...]:
    """Per label 1..count: pixel count, centroid (row, col) and 2x2 covariance."""
    rows, cols = np.nonzero(labels)  # sums over the labelled pixels alone, in one pass each
    which = labels[rows, cols]
    rows, cols = rows.astype(np.float64), cols.astype(np.float64)

    def total(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(which, weights, minlength=count + 1)[1:].astype(np.float64)

    n = total(None)
    cy, cx = total(rows) / n, total(cols) / n
    syy = total(rows * rows) / n - cy * cy
    sxx = total(cols * cols) / n - cx * cx
    sxy = total(rows * cols) / n - cy * cx
    cov = np.stack([np.stack([syy, sxy], -1), np.stack([sxy, sxx], -1)], -2)
    return n, np.stack([cy, cx], -1), cov


def _axes(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spreads (major, minor; pixels) and axes (columns) of a covariance."""
    values, vectors = np.linalg.eigh(cov)
    return np.sqrt(np.maximum(values[::-1], 0.25)), vectors[:, ::-1]


def roofs_of(rgb: np.ndarray, buildings: np.ndarray, located: bool = True) -> Roofs:
    """The roofs of the ``buildings`` of ``rgb`` (3, h, w) of at least ``MIN_ROOF`` pixels;
    ``located``: their place in ``rgb`` counts (a new house takes a roof from nearby)."""
    labels, count = ndimage.label(buildings)
    if count:
        area, centre, cov = _moments(labels, count)
    else:
        area, centre, cov = np.zeros(0), np.zeros((0, 2)), np.zeros((0, 2, 2))
    keep = [k for k in range(count) if area[k] >= MIN_ROOF]
    boxes = ndimage.find_objects(labels)
    corners = np.array([[boxes[k][0].start, boxes[k][1].start] for k in keep], np.float64)
    shapes = [_axes(cov[k]) for k in keep]
    return Roofs(
        pixels=[rgb[(slice(None), *boxes[k])].astype(np.float32) for k in keep],
        inside=[labels[boxes[k]] == k + 1 for k in keep],
        area=area[keep],
        centre=centre[keep] - corners.reshape(-1, 2),
        position=centre[keep] if located else np.full((len(keep), 2), np.inf),
        spreads=np.array([s for s, _ in shapes]).reshape(-1, 2),
        axes=np.array([a for _, a in shapes]).reshape(-1, 2, 2),
    )


def join_roofs(parts: list[Roofs]) -> Roofs:
    """One set of roofs from several images' (the crops of a bank)."""
    parts = parts or [roofs_of(np.zeros((3, 1, 1), np.uint8), np.zeros((1, 1), bool))]
    return Roofs(
        pixels=[p for part in parts for p in part.pixels],
        inside=[i for part in parts for i in part.inside],
        area=np.concatenate([part.area for part in parts]),
        centre=np.concatenate([part.centre for part in parts]).reshape(-1, 2),
        position=np.concatenate([part.position for part in parts]).reshape(-1, 2),
        spreads=np.concatenate([part.spreads for part in parts]).reshape(-1, 2),
        axes=np.concatenate([part.axes for part in parts]).reshape(-1, 2, 2),
        recolour=[r for part in parts for r in (part.recolour or [None] * len(part))],
    )


def fit_roofs(
    base: np.ndarray,
    filled: np.ndarray,
    new: np.ndarray,
    roofs: Roofs,
    rng: np.random.Generator,
) -> None:
    """Fill each footprint of ``new`` (bool, h x w) with one of ``roofs``, in ``base``; marks
    the pixels in ``filled``. Footprints the roof does not quite cover take its nearest
    pixel."""
    footprints, n_new = ndimage.label(new)
    if n_new == 0 or len(roofs) == 0:
        return
    f_area, f_centre, f_cov = _moments(footprints, n_new)
    elongation = np.log(roofs.spreads[:, 0] / roofs.spreads[:, 1])
    for k, box in enumerate(ndimage.find_objects(footprints)):
        f_spread, f_axes = _axes(f_cov[k])
        distance = np.hypot(*(roofs.position - f_centre[k]).T)
        misfit = (
            np.abs(np.log(roofs.area / f_area[k]))
            + np.abs(elongation - np.log(f_spread[0] / f_spread[1]))
            + FOREIGN * np.isinf(distance)
        )
        best = np.lexsort((distance, misfit))[:CHOICES]
        roof = best[rng.integers(len(best))]
        matrix = roofs.axes[roof] @ np.diag(roofs.spreads[roof] / f_spread) @ f_axes.T
        origin = np.array([box[0].start, box[1].start], np.float64)
        offset = roofs.centre[roof] - matrix @ (f_centre[k] - origin)
        shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)

        warp = partial(ndimage.affine_transform, matrix=matrix, offset=offset, output_shape=shape)
        footprint = footprints[box] == k + 1
        take = footprint & (warp(roofs.inside[roof].astype(np.float32), order=0) > 0.5)
        if not take.any():
            continue
        recolour = roofs.recolour[roof] if roofs.recolour else None
        own = roofs.pixels[roof] if recolour is None else recolour(roofs.pixels[roof])
        pixels = np.stack([warp(band.astype(np.float32), order=1) for band in own])
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


def shadow_of_buildings(rgb: np.ndarray, valid: np.ndarray, buildings: np.ndarray) -> Shadow | None:
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
    base: np.ndarray, before: np.ndarray, after: np.ndarray, shadow: Shadow | None
) -> np.ndarray:
    """Darken ``base`` where the new buildings' ``shadow`` falls; returns where it did (land
    that keeps its class: the shadow is not a change)."""
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
