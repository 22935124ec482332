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

from geochange.errors import InputError

BANK_FILE = "exemplars.safetensors"
MIN_SHARE = 0.7
"""Least share of a crop, relative to the bank's best, that a class must cover for the crop
to serve as its exemplar: a tiled crop only half of the class leaves holes in a large patch."""


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

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / BANK_FILE
        save_file({"images": self.images, "classes": self.classes}, str(path))
        return path


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
