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


def exemplar_fill(
    rgb: np.ndarray,
    valid: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    rng: np.random.Generator,
    bank: ExemplarBank | None = None,
    search: int = SEARCH,
) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` (3, h, w) with changed pixels filled from real pixels of their new class.

    ``valid`` marks the pixels of ``rgb`` that hold data; ``before``/``after`` are the class
    windows (model indices, ``NODATA``). New buildings take a whole real roof and cast a
    shadow (see ``geochange.sampling.roofs``); other exemplars come from the unchanged land of
    the new class nearby, and what that leaves from the ``bank`` crop of the class whose scene
    looks most like this one, brought to this image's brightness and contrast. Returns the
    filled image and where it was filled (the rest is left to the model).
    """
    base = rgb.copy()
    filled = np.zeros(before.shape, bool)
    changed = (before != after) & (after != NODATA)
    fit_roofs(base, filled, rgb, valid, before, after, rng)
    cast_shadows(base, rgb, valid, before, after)
    for cls in np.unique(after[changed & ~filled]):
        source = _inner(valid & (before == cls) & (after == cls))
        crop = None if bank is None else _nearest_scene(bank, int(cls), rgb, valid)
        if crop is not None:  # one bank crop per class, so that a large patch is one texture
            bank_source = _inner(bank.classes[crop] == cls)
            bank_rgb = _match_scene(bank.images[crop], rgb, valid)
        labels, _ = ndimage.label(changed & ~filled & (after == cls))
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            for rows, cols in _cells(box):
                todo = labels[rows, cols] == index
                r0, c0 = max(rows.start - search, 0), max(cols.start - search, 0)
                around = (slice(r0, rows.stop + search), slice(c0, cols.stop + search))
                home = (rows.start - r0, cols.start - c0)
                _place(base[:, rows, cols], todo, source[around], rgb[(slice(None), *around)], home)
                if todo.any() and crop is not None:
                    anywhere = tuple(rng.integers(0, bank_source.shape))
                    _place(base[:, rows, cols], todo, bank_source, bank_rgb, anywhere)
                filled[rows, cols] |= (labels[rows, cols] == index) & ~todo
    return base, filled


def _scene(rgb: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and spread of an image's pixels (those in ``valid``)."""
    pixels = rgb.reshape(3, -1) if valid is None else rgb[:, valid]
    pixels = pixels.astype(np.float32)
    return pixels.mean(axis=1), pixels.std(axis=1) + 1e-3


def _nearest_scene(bank: ExemplarBank, cls: int, rgb: np.ndarray, valid: np.ndarray) -> int | None:
    """The bank crop holding class ``cls`` whose mean colour is nearest this image's."""
    crops = bank.crops_of(cls)
    if len(crops) == 0 or not valid.any():
        return None
    mean, _ = _scene(rgb, valid)
    distance = [np.abs(_scene(bank.images[k])[0] - mean).sum() for k in crops]
    return int(crops[int(np.argmin(distance))])


def _match_scene(exemplar: np.ndarray, rgb: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``exemplar`` with its scene's per-band mean and spread moved to those of ``rgb``, the
    spread never raised: another sensor, season and sun, undone to first order, while the
    class keeps its place among the scene's colours."""
    mean, spread = _scene(rgb, valid)
    bank_mean, bank_spread = _scene(exemplar)
    gain = np.minimum(spread / bank_spread, 1.0)[:, None, None]
    out = (exemplar - bank_mean[:, None, None]) * gain + mean[:, None, None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


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
