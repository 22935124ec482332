"""Build a model's exemplar bank from its training data (see ``geochange.model.bank``)."""

from __future__ import annotations

import numpy as np

from geochange.classes import NUM_CLASSES
from geochange.model.bank import ExemplarBank
from geochange.training.crops import CropSource


def build_bank(dataset: CropSource, per_class: int = 3, scan: int | None = None) -> ExemplarBank:
    """The ``per_class`` crops of ``dataset`` holding the most pixels of each class (a crop may
    serve several classes), scanning its first ``scan`` crops (default: all)."""
    count = len(dataset) if scan is None else min(scan, len(dataset))
    shares = np.zeros((count, NUM_CLASSES))
    for index in range(count):
        _, mask = dataset.unaugmented(index)
        shares[index] = np.bincount(mask.numpy().ravel(), minlength=256)[:NUM_CLASSES]
    chosen: list[int] = []
    for cls in range(NUM_CLASSES):
        ranked = [int(i) for i in np.argsort(-shares[:, cls]) if shares[i, cls] > 0]
        chosen += [i for i in ranked[:per_class] if i not in chosen]
    images, classes = [], []
    for index in chosen:
        image, mask = dataset.unaugmented(index)
        images.append(((image.numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8))
        classes.append(mask.numpy().astype(np.uint8))
    return ExemplarBank(np.stack(images), np.stack(classes))
