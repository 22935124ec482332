"""Build a model's exemplar bank from its training data (see ``geochange.model.bank``)."""

from __future__ import annotations

import numpy as np

from geochange.classes import BUILDING, NODATA, NUM_CLASSES
from geochange.model.bank import MIN_SHARE, ExemplarBank, roof_mask
from geochange.training.crops import CropSource

BUSY = 1.5
"""Spread of a class's brightness in a crop, relative to the candidates' median, above which
the crop is taken for mislabelled."""


def build_bank(dataset: CropSource, per_class: int = 6, scan: int | None = None) -> ExemplarBank:
    """Per class, ``per_class`` crops of ``dataset`` full of it and unlike each other in its
    colour (a crop may serve several classes), scanning its first ``scan`` crops (default:
    all). The painter takes the crop nearest an image's colours, so the bank should span the
    looks a class has (sand and soil, lawn and steppe), not the same field thrice. Crops whose
    class is far busier than in the other candidates (more than ``BUSY`` times their median
    spread of brightness) are left out: that is a label gone wrong (a harbour's roofs labelled
    water), and the search for unlike colours would pick it first. Buildings that do not look
    like one roof each (``roof_mask``: blocks labelled whole) are unlabelled in the bank."""
    count = len(dataset) if scan is None else min(scan, len(dataset))
    shares = np.zeros((count, NUM_CLASSES))
    colours = np.zeros((count, NUM_CLASSES, 3))
    spreads = np.zeros((count, NUM_CLASSES))
    for index in range(count):
        image, mask = _crop(dataset, index)
        if _mirrored(image):
            continue  # a small file mirrored out to the crop size: a kaleidoscope, not a place
        for cls in range(NUM_CLASSES):
            where = mask == cls
            shares[index, cls] = where.mean()
            if where.any():
                colours[index, cls] = image[:, where].mean(axis=1)
                spreads[index, cls] = image[:, where].mean(axis=0).std()
    chosen: list[int] = []
    for cls in range(NUM_CLASSES):
        least = max(MIN_SHARE * shares[:, cls].max(), 1e-9)
        full = [int(i) for i in np.argsort(-shares[:, cls]) if shares[i, cls] >= least]
        if not full:
            continue  # no crop shows the class
        busy = BUSY * np.median(spreads[full, cls])
        full = [i for i in full if spreads[i, cls] <= busy]
        chosen += [i for i in _unlike(full, colours[:, cls], per_class) if i not in chosen]
    crops = [_crop(dataset, index) for index in chosen]
    return ExemplarBank(np.stack([c[0] for c in crops]), np.stack([c[1] for c in crops]))


def _crop(dataset: CropSource, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``index`` as the bank keeps it: (3, S, S) uint8 RGB and (S, S) uint8 classes, its
    buildings that are not one roof each unlabelled."""
    image, mask = dataset.unaugmented(index)
    rgb = ((image.numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
    classes = mask.numpy().astype(np.uint8)
    buildings = classes == BUILDING
    classes[buildings & ~roof_mask(rgb, buildings)] = NODATA
    return rgb, classes


def _mirrored(image: np.ndarray) -> bool:
    """Whether two neighbouring rows or columns of ``image`` (3, h, w) are identical, the trace
    of symmetric padding (never seen in a real photo's full width)."""
    rows = (image[:, 1:] == image[:, :-1]).all(axis=(0, 2))
    cols = (image[:, :, 1:] == image[:, :, :-1]).all(axis=(0, 1))
    return bool(rows.any() or cols.any())


def _unlike(ranked: list[int], colours: np.ndarray, count: int) -> list[int]:
    """Up to ``count`` of ``ranked`` (best first): the best, then each time the one whose colour
    is farthest from all taken so far."""
    taken = ranked[:1]
    rest = ranked[1:]
    while rest and len(taken) < count:
        gaps = [min(np.abs(colours[i] - colours[j]).sum() for j in taken) for i in rest]
        taken.append(rest.pop(int(np.argmax(gaps))))
    return taken
