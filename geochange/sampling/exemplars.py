"""Exemplars: fill changed land with real pixels of its new class, cut from nearby.

A small autoencoder cannot draw a sharp roof or a crisp field edge, and a detector learns that
"blurred = changed" when it sees changed land decoded from latents beside real pixels. So each
changed patch first takes the pixels of a real patch of its new class: the placement of the patch
that the most of it fits into, among the unchanged land of that class within ``SEARCH`` pixels,
drawn at random among the near-best ones. What the image cannot give comes from the model's
exemplar bank, brought into this image's colours. The model then harmonizes the result at low
noise (the sampler starts there instead of from the class statistics), SDEdit-style.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from itertools import count

import numpy as np
from scipy import ndimage, signal

from geochange.classes import BUILDING, NODATA
from geochange.model.bank import ExemplarBank, class_sums, roof_mask
from geochange.sampling.compose import coarse_blur
from geochange.sampling.roofs import (
    Roofs,
    Shadow,
    cast_shadows,
    fit_roofs,
    join_roofs,
    roofs_of,
    shadow_of_buildings,
)

SEARCH = 256
"""Pixels around a changed patch in which to look for real pixels of its new class."""
ROUNDS = 4
"""Placements tried per piece; each fills what the ones before left open."""
CELL = 64
"""Largest piece, in pixels a side, that a changed patch is filled with in one placement."""
NEAR_BEST = 0.95
"""Placements covering at least this share of the best one's pixels count as the best; the
nearest of them is taken, as land nearby looks most alike."""
BANK_MARGIN = CELL // 2
"""Pixels a piece may move off its own place in the tiled bank crop to fit its class."""
BORDER = 3
"""Pixels along the edge of a class's land that are not cut as exemplars of it."""
SEAM_SIGMA = 4.0
"""Pixels over which the level of pieces of one fill is evened out across their seams."""
MIN_TIE = 200
"""Pixels a class needs in the image for its mean colour to count."""
GAIN_RANGE = (0.6, 1.5)
"""Bounds of the per-band gain between a bank crop's colours and this image's."""
LIKENESS = 0.1
"""How much less a class the image shows tells of the light a hidden class is in, per unit of
squared distance between their typical log colours: haze and the sensor's curve treat bright and
dark land unequally, so a class of like colour is the better witness. In a LoveDA crop of brown
winter fields, a dark river and a blue roof, the fields alone said "bright light", and bare land
came out white (297, 248, 252); with this it is a pale blue-grey (174, 184, 210)."""
ZOOM_TOLERANCE = 0.1
"""Bank crops are used as they are when their pixels are within this share of the image's."""


def exemplar_fill(
    rgb: np.ndarray,
    valid: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    rng: np.random.Generator,
    bank: ExemplarBank | None = None,
    search: int = SEARCH,
    origin: tuple[int, int] = (0, 0),
    seed: int = 0,
    zoom: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` (3, h, w) with changed pixels filled from real pixels of their new class.

    ``valid`` marks the pixels of ``rgb`` that hold data; ``before``/``after`` are the class
    windows (model indices, ``NODATA``). New buildings take a whole real roof and cast a
    shadow (see ``geochange.sampling.roofs``); other exemplars come from the unchanged land of
    the new class nearby, and what that leaves from the ``bank`` crop whose class is nearest
    the colour that class has, or would have, in this image (in an image with no data, from the
    crop most like one drawn for the run by ``seed``), repeated under the whole region from a
    phase drawn for the run, the window at ``origin`` (row, col) of it: a large patch is one
    continuous texture, across blocks too. ``zoom`` is
    the bank's pixel size over the image's: its crops are resampled by it, so that a 0.5 m
    bank's trees are not drawn at half their size in a 0.2 m image. Returns the filled image
    and where it was filled (the rest is left to the model).
    """
    base = rgb.copy()
    filled = np.zeros(before.shape, bool)
    changed = (before != after) & (after != NODATA)
    scene = np.where(valid, before, NODATA)
    colours = None if bank is None else _SceneColours(rgb, scene)
    new = changed & (after == BUILDING)
    if new.any():  # roofs and shadows are looked for only where buildings are added
        old = valid & (before == BUILDING) & (after == BUILDING)
        roofs = roofs_of(rgb, roof_mask(rgb, old))
        shadow = shadow_of_buildings(rgb, valid, old)
        if bank is not None:
            bank_roofs, bank_shadow = _bank_buildings(bank, colours, zoom)
            roofs, shadow = join_roofs([roofs, bank_roofs]), shadow or bank_shadow
        fit_roofs(base, filled, new, roofs, rng)
        cast_shadows(base, before, after, shadow)
    for cls in np.unique(after[changed & ~filled]):
        pieces, ids = np.zeros(before.shape, np.int32), count(1)
        source = _inner(valid & (before == cls) & (after == cls))
        canvas = None if bank is None else _bank_canvas(bank, int(cls), colours, origin, seed, zoom)
        labels, _ = ndimage.label(changed & ~filled & (after == cls))
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            for rows, cols in _cells(box):
                todo = labels[rows, cols] == index
                r0, c0 = max(rows.start - search, 0), max(cols.start - search, 0)
                around = (slice(r0, rows.stop + search), slice(c0, cols.stop + search))
                home = (rows.start - r0, cols.start - c0)
                target = (base[:, rows, cols], todo, pieces[rows, cols], ids)
                if source.any():
                    _place(*target, source[around], rgb[(slice(None), *around)], home)
                if todo.any() and canvas is not None:
                    # the piece's own place in the repeated crop, give or take BANK_MARGIN
                    reach = (
                        slice(rows.start, rows.stop + 2 * BANK_MARGIN),
                        slice(cols.start, cols.stop + 2 * BANK_MARGIN),
                    )
                    bank_source, repeat = canvas[0][reach], canvas[2][reach]
                    bank_rgb = canvas[1][(slice(None), *reach)]
                    _place(*target, bank_source, bank_rgb, (BANK_MARGIN,) * 2, repeat)
                filled[rows, cols] |= (labels[rows, cols] == index) & ~todo
        _level_seams(base, pieces)
    return base, filled


def _bank_buildings(
    bank: ExemplarBank, colours: _SceneColours, zoom: float
) -> tuple[Roofs, Shadow | None]:
    """The roofs of the bank's building crops (resampled by ``zoom``), each recoloured into
    this image's colours when taken, and the shadows of the first crop that shows them."""
    found, shadow = _bank_roofs(bank, zoom)
    recoloured = [
        replace(roofs, recolour=[partial(colours.of, bank, k, BUILDING)] * len(roofs))
        for k, roofs in found
    ]
    return join_roofs(recoloured), shadow


def _bank_roofs(bank: ExemplarBank, zoom: float) -> tuple[list[tuple[int, Roofs]], Shadow | None]:
    """Per crop of the bank that shows buildings (resampled by ``zoom``) its roofs in the
    crop's own colours, and the shadows of the first crop that shows them: the same for every
    image, so found once per bank and zoom. A roof is taken whole, so any crop's will do, not
    only those full of buildings (one warehouse is the fullest of the bank's)."""
    key = ("roofs", zoom)
    if key not in bank.memo:
        crops = [
            (k, *_zoomed(bank, k, zoom))
            for k in range(len(bank.images))
            if (bank.classes[k] == BUILDING).any()
        ]
        found = [
            (k, roofs_of(image, classes == BUILDING, located=False)) for k, image, classes in crops
        ]
        shadows = (
            shadow_of_buildings(image, classes != NODATA, classes == BUILDING)
            for _, image, classes in crops
        )
        bank.memo[key] = found, next((s for s in shadows if s is not None), None)
    return bank.memo[key]


def _zoomed(bank: ExemplarBank, crop: int, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """Bank crop ``crop``'s image and classes resampled by ``zoom`` (linearly and by the
    nearest pixel; found once), or as they are within ``ZOOM_TOLERANCE``."""
    if abs(zoom - 1) <= ZOOM_TOLERANCE:
        return bank.images[crop], bank.classes[crop]
    key = ("zoomed", crop, zoom)
    if key not in bank.memo:
        image = ndimage.zoom(bank.images[crop].astype(np.float32), (1, zoom, zoom), order=1)
        classes = ndimage.zoom(bank.classes[crop], zoom, order=0)
        bank.memo[key] = np.clip(np.round(image), 0, 255).astype(np.uint8), classes
    return bank.memo[key]


def _bank_canvas(
    bank: ExemplarBank,
    cls: int,
    colours: _SceneColours,
    origin: tuple[int, int],
    seed: int,
    zoom: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The bank crop whose ``cls`` has the colour nearest the one it has, or would have, in
    this image (so that its texture is scaled least; where nothing is known of the scene, the
    crop whose scene looks most like one drawn for the run by ``seed``), resampled by ``zoom``, in
    this image's colours, repeated from a phase drawn by ``seed`` over the whole region, the
    window at ``origin`` plus ``BANK_MARGIN`` on each side: (where it is of the class, its
    pixels, which repeat of the crop each pixel is in). Neighbouring pieces of a large patch
    take neighbouring pixels; the repeats' seams are levelled like those between pieces
    (mirroring them instead showed kaleidoscope stars where the mirror axes cross)."""
    crops = bank.crops_of(cls)
    if len(crops) == 0:
        return None
    phase = np.random.default_rng([seed, cls]).integers(0, bank.images.shape[-1], 2)
    scene = colours.scene
    target = colours.colour_of(bank, cls)
    if target is not None:
        crop = _nearest_colour(bank, crops, cls, target)
    elif colours.mean_colour is not None:
        crop = _nearest_scene(bank, crops, colours.mean_colour)
    else:  # all classes from crops that look like one drawn for the run: one place, one sensor
        look = int(np.random.default_rng(seed).integers(len(bank.images)))
        crop = _nearest_scene(bank, crops, bank.mean_colour(look))
    pixels, classes = _zoomed(bank, crop, zoom)
    image = colours.of(bank, crop, cls, pixels)
    source = _inner(classes == cls)
    rows, cols = (
        np.arange(start + offset - BANK_MARGIN, start + offset + length + BANK_MARGIN)
        for start, offset, length in zip(origin, phase, scene.shape, strict=True)
    )
    size = source.shape[0]
    # Which repeat of the crop each pixel is in (1-4, neighbours differ), for the seams.
    repeat = ((rows // size) % 2)[:, None] * 2 + ((cols // size) % 2)[None, :] + 1
    rows, cols = rows % size, cols % size
    return source[np.ix_(rows, cols)], image[:, rows][:, :, cols], repeat


def _nearest_colour(bank: ExemplarBank, crops: np.ndarray, cls: int, colour: np.ndarray) -> int:
    """The one of the bank's ``crops`` whose mean colour of ``cls`` is nearest ``colour`` (3,)
    in ratio."""
    distance = [
        np.abs(np.log1p(bank.class_means(k)[cls]) - np.log1p(colour)).sum()
        if cls in bank.class_means(k)
        else np.inf
        for k in crops
    ]
    return int(crops[int(np.argmin(distance))])


def _nearest_scene(bank: ExemplarBank, crops: np.ndarray, mean: np.ndarray) -> int:
    """The one of the bank's ``crops`` whose mean colour is nearest ``mean`` (3,)."""
    distance = [np.abs(bank.mean_colour(k) - mean).sum() for k in crops]
    return int(crops[int(np.argmin(distance))])


class _SceneColours:
    """This image's colours, to bring bank crops to its sensor, season and sun. A bank crop
    is scaled, per band, so that its class takes the colour that class has in this image:
    the image's own where it shows the class (at least ``MIN_TIE`` pixels), else the bank's
    typical colour of the class in this image's light, the light being read off the classes
    the image shows, each by how steady its colour is between the bank's crops (see
    ``ExemplarBank.class_colours``) and by its likeness in colour (``LIKENESS``). Hidden from
    the image, a class is filled within 21 grey levels per band of its real mean colour on
    average (90 % within 45), against 33 (69) for the gains and offsets that carried the
    classes both show from crop to image; in places the bank has no crop of, within 38 (72)
    (``benchmarks/bank_colours.py``, ``--leave-out``). With no class known, only the exposure
    is matched. The class means of the image are taken once, by one count of the pixels per
    class and band."""

    def __init__(self, rgb: np.ndarray, scene: np.ndarray) -> None:
        self.scene = scene
        self.pixels, sums = class_sums(rgb, scene)
        self.means = {
            int(cls): sums[:, cls] / self.pixels[cls]
            for cls in np.flatnonzero(self.pixels >= MIN_TIE)
        }
        known = self.pixels.sum()
        self.mean_colour = sums.sum(axis=1) / known if known else None
        """(3,) mean colour of the known pixels; None when none is known."""

    def colour_of(self, bank: ExemplarBank, cls: int) -> np.ndarray | None:
        """(3,) mean colour class ``cls`` has, or would have, in this image; None when no
        class of the image is known."""
        if cls in self.means:
            return self.means[cls]
        typical, spread = bank.class_colours()
        shown = [c for c in self.means if np.isfinite(spread[c])]
        if not shown:
            return None
        likeness = ((typical[shown] - typical[cls]) ** 2).sum(axis=1)
        weight = 1.0 / (spread[shown] + LIKENESS * likeness)
        light = np.log1p(np.array([self.means[c] for c in shown])) - typical[shown]
        return np.expm1(typical[cls] + (weight[:, None] * light).sum(axis=0) / weight.sum())

    def of(self, bank: ExemplarBank, crop: int, cls: int, pixels: np.ndarray) -> np.ndarray:
        """``pixels`` (3, ...) of bank crop ``crop``, which shows ``cls``, in this image's
        colours, uint8."""
        target = self.colour_of(bank, cls)
        if target is not None and cls in bank.class_means(crop):
            gain = (target + 1.0) / (bank.class_means(crop)[cls] + 1.0)
        elif self.mean_colour is not None:
            brightness = float(self.mean_colour.mean())
            gain = np.full(3, brightness / max(float(bank.mean_colour(crop).mean()), 1.0))
        else:
            return pixels
        gain = np.clip(gain, *GAIN_RANGE).reshape((3,) + (1,) * (pixels.ndim - 1))
        return np.clip(np.round(pixels * gain), 0, 255).astype(np.uint8)


def _inner(source: np.ndarray) -> np.ndarray:
    """``source`` without the ``BORDER`` pixels along its edge, which mix in the neighbouring
    class (a label drawn a little off the shore puts quay in the water), or with fewer where
    that would leave nothing."""
    for iterations in range(BORDER, 0, -1):
        inner = ndimage.binary_erosion(source, iterations=iterations)
        if inner.any():
            return inner
    return source


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
    pieces: np.ndarray,
    ids: Iterator[int],
    source: np.ndarray,
    source_rgb: np.ndarray,
    home: tuple[int, int],
    repeats: np.ndarray | None = None,
) -> None:
    """Copy into ``target`` (3, h, w) where ``todo`` (h, w) the ``source_rgb`` pixels of up to
    ``ROUNDS`` placements of ``todo`` over ``source``, each the one nearest to ``home`` (the
    patch's own corner in the source) among the best; clears what it fills from ``todo`` and
    numbers each placement's pixels in ``pieces`` with the next of ``ids`` (times 4, plus the
    source's ``repeats`` (1-4) where the source is a repeated crop)."""
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
        piece = 4 * next(ids)
        pieces[take] = piece if repeats is None else piece + repeats[i : i + h, j : j + w][take]
        todo &= ~take


def _level_seams(image: np.ndarray, pieces: np.ndarray, sigma: float = SEAM_SIGMA) -> None:
    """Even out the steps in brightness and colour where pieces cut from different places meet
    (in ``image``, in place; ``pieces`` numbers them, 0 elsewhere): each piece's local level
    (a Gaussian mean over its own pixels) is moved to that of all pieces around, which leaves
    the middle of a piece and its detail as they were. A seam is an edge that no real land of
    one class has, and a detector would learn it."""
    region = pieces > 0
    if not region.any():
        return
    pixels = image.astype(np.float32)
    shared = _local_mean(pixels, region, sigma)
    correction = np.zeros_like(pixels)
    reach = int(3 * sigma) + 1
    # the numbers are sparse (4 per placement); the unused ones have no box
    for piece, box in enumerate(ndimage.find_objects(pieces), start=1):
        if box is None:
            continue
        grown = (slice(None), *(slice(max(s.start - reach, 0), s.stop + reach) for s in box))
        inside = pieces[grown[1:]] == piece
        own = _local_mean(pixels[grown], inside, sigma)
        correction[grown][:, inside] = shared[grown][:, inside] - own[:, inside]
    image[:, region] = np.clip(np.round(pixels + correction), 0, 255)[:, region]


def _local_mean(pixels: np.ndarray, where: np.ndarray, sigma: float) -> np.ndarray:
    """Per band, the Gaussian-weighted mean of ``pixels`` (3, h, w) over the pixels ``where``
    (the blur on cells, ``coarse_blur``: levels are smooth)."""
    blurred = coarse_blur(np.concatenate([pixels * where, where[None].astype(np.float32)]), sigma)
    return blurred[:3] / np.maximum(blurred[3], 1e-6)
