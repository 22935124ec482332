"""The exemplar bank: real crops of each class, kept beside a model for changed land.

Where an image holds no pixels of a changed patch's new class (a forest cleared to bare land
in a town without any), the painter cuts exemplars from these crops instead of leaving the patch
to the model alone (see ``geochange.sampling.exemplars``). The crops come from the model's own
training data, so the bank carries that data's licence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy import ndimage

from geochange.classes import NUM_CLASSES
from geochange.errors import InputError

BANK_FILE = "exemplars.safetensors"
MIN_SHARE = 0.7
"""Least share of a crop, relative to the bank's best, that a class must cover for the crop
to serve as its exemplar: a tiled crop only half of the class leaves holes in a large patch."""
MIN_CLASS_PIXELS = 200
"""Pixels a class needs in a crop for its mean colour to count."""
LIGHT_FIT_ROUNDS = 50
"""Rounds of the alternating fit of class colours and crop light (on the shipped bank the
colours move by less than 0.01 grey levels after 20)."""
MIN_SPREAD = 1e-3
"""Least spread of a class's colour between crops (a class only one crop shows is fitted
exactly, with none)."""
LIGHT_PRIOR = 1.0
"""Weight, in classes, of the prior that a crop's light is the bank's usual: it keeps the
light of a crop showing one class from taking all of that class's colour."""
ROOF_CALM = 0.5
"""Most a labelled building may vary inside, as the median brightness gradient of its inside
over the upper quartile of the gradients along its outline, to count as one roof. A roof is
calm within and edged; a block labelled whole as one building (Dubai's labels hold whole
neighbourhoods of houses and yards) is as busy inside as along its edge. On the 280 crops of
the shipped pack this keeps 95 % of OpenEarthMap's building area, 88 % of LoveDA's, all of
FLAIR's and Potsdam's, and 27 % of Dubai's (mostly large single buildings)."""
ROOF_INSIDE = 2
"""Pixels off its outline where a building's inside starts."""
MIN_INSIDE = 8
"""Inside pixels needed to judge a building; smaller ones are kept as roofs."""


@dataclass(frozen=True)
class ExemplarBank:
    """``images`` (N, 3, S, S) uint8 RGB crops and their ``classes`` (N, S, S) uint8 model
    indices (``NODATA`` where unlabelled)."""

    images: np.ndarray
    classes: np.ndarray
    memo: dict = field(default_factory=dict, compare=False, repr=False)
    """What users of the bank derive from its crops once (roofs, class colours), by key."""

    def __post_init__(self) -> None:
        n, bands, height, width = self.images.shape
        if bands != 3 or self.classes.shape != (n, height, width):
            raise InputError(
                f"an exemplar bank needs (N, 3, S, S) images and (N, S, S) classes, got "
                f"{self.images.shape} and {self.classes.shape}"
            )

    def crops_of(self, cls: int) -> np.ndarray:
        """Indices of the crops that class ``cls`` covers at least ``MIN_SHARE`` as much as the
        crop it covers most: a crop holding a little of it (often mislabelled edges) gives
        poor texture where another is full of it. Found once per class."""
        key = ("crops of", cls)
        if key not in self.memo:
            shares = (self.classes == cls).mean(axis=(1, 2))
            self.memo[key] = np.flatnonzero((shares >= MIN_SHARE * shares.max()) & (shares > 0))
        return self.memo[key]

    def mean_colour(self, crop: int) -> np.ndarray:
        """(3,) float mean RGB of crop ``crop`` (found once)."""
        key = ("mean colour", crop)
        if key not in self.memo:
            self.memo[key] = self.images[crop].reshape(3, -1).mean(axis=1)
        return self.memo[key]

    def class_means(self, crop: int) -> dict[int, np.ndarray]:
        """Per class of crop ``crop`` with at least ``MIN_CLASS_PIXELS``: its (3,) mean
        colour (found once)."""
        key = ("class means", crop)
        if key not in self.memo:
            pixels, sums = class_sums(self.images[crop], self.classes[crop])
            self.memo[key] = {
                int(cls): sums[:, cls] / pixels[cls]
                for cls in np.flatnonzero(pixels >= MIN_CLASS_PIXELS)
            }
        return self.memo[key]

    def class_colours(self) -> tuple[np.ndarray, np.ndarray]:
        """Each class's typical colour and how far crops stray from it: the log mean colour
        of class c in crop k is modelled as ``typical[c] + light[k]`` (per band; the light
        is sensor, sun and season), fitted to the crops by alternating least squares.
        Returns ``typical`` (NUM_CLASSES, 3) of log(colour + 1) and ``spread`` (NUM_CLASSES,),
        the mean squared log residual (inf for a class no crop shows). Found once."""
        key = "class colours"
        if key not in self.memo:
            count = len(self.images)
            logs = np.full((count, NUM_CLASSES, 3), np.nan)
            for crop in range(count):
                for cls, mean in self.class_means(crop).items():
                    logs[crop, cls] = np.log1p(mean)
            seen = ~np.isnan(logs[..., 0])
            typical, light = np.zeros((NUM_CLASSES, 3)), np.zeros((count, 3))
            for _ in range(LIGHT_FIT_ROUNDS):
                typical = np.array(
                    [
                        (logs[seen[:, c], c] - light[seen[:, c]]).mean(axis=0)
                        if seen[:, c].any()
                        else np.zeros(3)
                        for c in range(NUM_CLASSES)
                    ]
                )
                light = np.array(
                    [
                        (logs[k, seen[k]] - typical[seen[k]]).sum(axis=0)
                        / (seen[k].sum() + LIGHT_PRIOR)
                        for k in range(count)
                    ]
                )
            residual = logs - typical[None] - light[:, None]
            spread = np.array(
                [
                    np.mean(residual[seen[:, c], c] ** 2) if seen[:, c].any() else np.inf
                    for c in range(NUM_CLASSES)
                ]
            )
            self.memo[key] = typical, np.maximum(spread, MIN_SPREAD)
        return self.memo[key]

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / BANK_FILE
        save_file({"images": self.images, "classes": self.classes}, str(path))
        return path


def class_sums(rgb: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (NUM_CLASSES,) and colour sums (3, NUM_CLASSES) of each class of ``classes``
    (h, w; model indices below 256, others such as ``NODATA`` left out) in ``rgb`` (3, h, w):
    one count per band, not one mask per class."""
    flat = classes.ravel()
    pixels = np.bincount(flat, minlength=256)[:NUM_CLASSES]
    sums = np.stack([np.bincount(flat, band.ravel(), 256)[:NUM_CLASSES] for band in rgb])
    return pixels, sums


def roof_mask(rgb: np.ndarray, buildings: np.ndarray) -> np.ndarray:
    """Which of ``buildings`` (bool, h x w) look like one roof each in ``rgb`` (3, h, w):
    calm inside against their outline (``ROOF_CALM``). A new house takes one labelled building
    whole, and a block of many houses stretched onto it is a mosaic, not a roof. Buildings too
    small to have an inside are kept."""
    labels, count = ndimage.label(buildings)
    if count == 0:
        return buildings.copy()
    brightness = rgb.astype(np.float32).mean(axis=0)
    gradient = np.hypot(ndimage.sobel(brightness, 0), ndimage.sobel(brightness, 1))
    height, width = buildings.shape
    keep = buildings.copy()
    for number, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        box = (
            slice(max(rows.start - 1, 0), min(rows.stop + 1, height)),
            slice(max(cols.start - 1, 0), min(cols.stop + 1, width)),
        )
        building = labels[box] == number
        inside = ndimage.binary_erosion(building, iterations=ROOF_INSIDE)
        if inside.sum() < MIN_INSIDE:
            continue
        outline = ndimage.binary_dilation(building) & ~ndimage.binary_erosion(building)
        edged = np.percentile(gradient[box][outline], 75)
        if np.median(gradient[box][inside]) > ROOF_CALM * edged:
            keep[box] &= ~building
    return keep


def load_bank(folder: str | Path) -> ExemplarBank | None:
    """The bank of a model folder, or None when it has none (older models)."""
    path = Path(folder) / BANK_FILE
    if not path.is_file():
        return None
    try:
        tensors = load_file(str(path))
        return ExemplarBank(tensors["images"], tensors["classes"])
    except (OSError, KeyError, ValueError) as error:
        raise InputError(
            f"the exemplar bank {path} cannot be read ({error})",
            "rebuild it with `geochange train exemplars`, or delete it to paint without it",
        ) from error
