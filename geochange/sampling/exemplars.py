"""Exemplars: fill changed land with real pixels of its new class, cut from nearby.

A small autoencoder cannot draw a sharp roof or a crisp field edge, and a detector learns that
"blurred = changed" when it sees changed land decoded from latents beside real pixels. So each
changed patch first takes the pixels of a real patch of its new class: the placement of the patch
that the most of it fits into, among the unchanged land of that class within ``SEARCH`` pixels,
drawn at random among the near-best ones. The model then harmonizes the result at low noise
(the sampler starts there instead of from the class statistics), SDEdit-style.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

from geochange.classes import NODATA
from geochange.model.bank import ExemplarBank
from geochange.sampling.roofs import cast_shadows, fit_roofs

SEARCH = 256
"""Pixels around a changed patch in which to look for real pixels of its new class."""
ROUNDS = 4
"""Placements tried per piece; each fills what the ones before left open."""
CELL = 64
"""Largest piece, in pixels a side, that a changed patch is filled with in one placement."""
NEAR_BEST = 0.95
"""Placements covering at least this share of the best one's pixels count as the best; the
nearest of them is taken, as land nearby looks most alike."""
DETAIL_SIGMA = 2.0
"""Blur (pixels) whose residual is a bank exemplar's detail."""


def exemplar_fill(
    rgb: np.ndarray,
    valid: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    rng: np.random.Generator,
    bank: ExemplarBank | None = None,
    search: int = SEARCH,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rgb`` (3, h, w) with changed pixels filled from real pixels of their new class.

    ``valid`` marks the pixels of ``rgb`` that hold data; ``before``/``after`` are the class
    windows (model indices, ``NODATA``). New buildings take a whole real roof and cast a
    shadow (see ``geochange.sampling.roofs``); other exemplars come from the unchanged land of
    the new class nearby. Returns the filled image, where it was filled, and the detail (float
    (3, h, w), zero elsewhere) of a ``bank`` crop of the new class for the changed pixels left
    over: they are the model's, and another image's colours would not match this one, but its
    texture lends them the sharpness of real land.
    """
    base = rgb.copy()
    filled = np.zeros(before.shape, bool)
    detail = np.zeros(rgb.shape, np.float32)
    changed = (before != after) & (after != NODATA)
    fit_roofs(base, filled, rgb, valid, before, after, rng)
    cast_shadows(base, rgb, valid, before, after)
    for cls in np.unique(after[changed & ~filled]):
        source = _inner(valid & (before == cls) & (after == cls))
        crops = np.array([], int) if bank is None else bank.crops_of(int(cls))
        if len(crops):  # one bank crop per class, so that a large patch is of one texture
            k = crops[rng.integers(len(crops))]
            bank_source = _inner(bank.classes[k] == cls)
            bank_detail = _high_pass(bank.images[k]) * _detail_gain(rgb, bank.images[k])
        labels, _ = ndimage.label(changed & ~filled & (after == cls))
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            for rows, cols in _cells(box):
                todo = labels[rows, cols] == index
                r0, c0 = max(rows.start - search, 0), max(cols.start - search, 0)
                around = (slice(r0, rows.stop + search), slice(c0, cols.stop + search))
                home = (rows.start - r0, cols.start - c0)
                _place(base[:, rows, cols], todo, source[around], rgb[(slice(None), *around)], home)
                filled[rows, cols] |= (labels[rows, cols] == index) & ~todo
                if todo.any() and len(crops):
                    anywhere = tuple(rng.integers(0, bank_source.shape))
                    _place(detail[:, rows, cols], todo, bank_source, bank_detail, anywhere)
    return base, filled, detail


def _high_pass(rgb: np.ndarray) -> np.ndarray:
    """The detail of an RGB image: itself minus its blur at ``DETAIL_SIGMA`` pixels."""
    pixels = rgb.astype(np.float32)
    return pixels - ndimage.gaussian_filter(pixels, (0, DETAIL_SIGMA, DETAIL_SIGMA))


def _detail_gain(rgb: np.ndarray, exemplar: np.ndarray) -> float:
    """How much to soften an exemplar's detail so it is no sharper than the image it goes
    into: another sensor's crisp sand would give the change away as a blur would."""

    def energy(image: np.ndarray) -> float:
        luminance = image.astype(np.float32).mean(axis=0)
        return float(np.mean(np.diff(luminance, axis=0) ** 2) + np.mean(np.diff(luminance) ** 2))

    return min(1.0, (energy(rgb) / max(energy(exemplar), 1e-6)) ** 0.5)


def _inner(source: np.ndarray) -> np.ndarray:
    """``source`` without its boundary pixels, which mix in the neighbouring class (unless
    that would leave nothing)."""
    inner = ndimage.binary_erosion(source)
    return inner if inner.any() else source


def _cells(box: tuple[slice, slice]) -> list[tuple[slice, slice]]:
    """``box`` cut into cells of at most ``CELL`` pixels a side: a large or ragged change (a
    flood along a shore) fits nowhere whole, but each of its pieces does."""
    rows, cols = box
    return [
        (slice(r, min(r + CELL, rows.stop)), slice(c, min(c + CELL, cols.stop)))
        for r in range(rows.start, rows.stop, CELL)
        for c in range(cols.start, cols.stop, CELL)
    ]


def _place(
    target: np.ndarray,
    todo: np.ndarray,
    source: np.ndarray,
    source_rgb: np.ndarray,
    home: tuple[int, int],
) -> None:
    """Copy into ``target`` (3, h, w) where ``todo`` (h, w) the ``source_rgb`` pixels of up to
    ``ROUNDS`` placements of ``todo`` over ``source``, each the one nearest to ``home`` (the
    patch's own corner in the source) among the best; clears what it fills from ``todo``."""
    h, w = todo.shape
    if source.shape[0] < h or source.shape[1] < w:
        return
    area = source.astype(np.float32)
    for _ in range(ROUNDS):
        if not todo.any():
            return
        # hits[i, j]: pixels of ``todo`` that land on the source with its corner at (i, j).
        hits = signal.fftconvolve(area, todo[::-1, ::-1].astype(np.float32), mode="valid")
        best = hits.max()
        if best < 0.5:
            return
        candidates = np.argwhere(hits >= max(best * NEAR_BEST, best - 0.5))
        i, j = candidates[np.argmin(np.abs(candidates - home).sum(axis=1))]
        take = todo & source[i : i + h, j : j + w]
        target[:, take] = source_rgb[:, i : i + h, j : j + w][:, take]
        todo &= ~take
