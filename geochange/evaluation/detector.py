"""A small binary change detector, to measure whether generated pairs teach a detector anything
that transfers to real pairs.

The model is the project's own plain-torch implementation of FC-Siam-diff (Daudt, Le Saux and
Boulch, "Fully convolutional siamese networks for change detection", ICIP 2018): one U-Net
encoder applied to both images with shared weights, skip connections that carry the absolute
difference of the two encoders' features, and a decoder to two-class logits (unchanged,
changed). No pretrained weights and no torchvision, so it trains from scratch on a CPU in
minutes. This module also reads change pairs from folders and scores predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from geochange.errors import InputError
from geochange.evaluation.fitting import fit
from geochange.evaluation.metrics import confusion_matrix, per_class_iou

MULTIPLE = 16
"""Image sides must be multiples of this (four 2x poolings); ``predict`` pads to it."""
BOOTSTRAP_DRAWS = 2000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

LAYOUTS: dict[str, tuple[str, str, str]] = {
    "levir": ("A", "B", "label"),
    "bcd": ("img_A", "img_B", "bcd_mask"),
    "second": ("im1", "im2", "label1"),
}
"""Folder names of the before image, the after image and the change label in each layout.
``levir``: LEVIR-CD (``label`` 0/255); ``bcd``: the SECOND / LsSCD-Ex examples (``bcd_mask``
0/255); ``second``: SECOND (``label1`` and ``label2`` semantic maps; changed where they differ)."""


@dataclass
class ChangePairs:
    """Before/after images ((H, W, 3) uint8) and change masks ((H, W) bool), one per name; for
    the ``second`` layout also the land cover before and after ((H, W), codes as on disk)."""

    names: list[str]
    before: list[np.ndarray]
    after: list[np.ndarray]
    change: list[np.ndarray]
    before_classes: list[np.ndarray] = field(default_factory=list)
    after_classes: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    def change_fraction(self) -> float:
        """Share of changed pixels over all pairs."""
        changed = sum(int(mask.sum()) for mask in self.change)
        return changed / max(sum(mask.size for mask in self.change), 1)


class FCSiamDiff(nn.Module):
    """FC-Siam-diff: images (B, 3, H, W) in [-1, 1], H and W multiples of 16, to logits
    (B, 2, H, W) of unchanged / changed.

    As in the reference: four encoder stages of ``width`` x 1, 2, 4, 8 channels (2, 2, 3 and 3
    convolutions, each with batch norm, ReLU and dropout), max pooling between stages, and a
    decoder that upsamples with transposed convolutions and concatenates |f(A) - f(B)| of the
    matching stage. About 1.35 M parameters at width 16.
    """

    def __init__(self, width: int = 16, dropout: float = 0.2) -> None:
        super().__init__()
        self.width = width
        w = (width, 2 * width, 4 * width, 8 * width)
        self.encoder = nn.ModuleList(
            [
                _stage([3, w[0], w[0]], dropout),
                _stage([w[0], w[1], w[1]], dropout),
                _stage([w[1], w[2], w[2], w[2]], dropout),
                _stage([w[2], w[3], w[3], w[3]], dropout),
            ]
        )
        self.upsample = nn.ModuleList(
            [nn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1) for c in w]
        )
        # Decoder stages from the deepest: input = upsampled + difference skip (2x channels).
        self.decoder = nn.ModuleList(
            [
                _stage([2 * w[3], w[3], w[3], w[2]], dropout),
                _stage([2 * w[2], w[2], w[2], w[1]], dropout),
                _stage([2 * w[1], w[1], w[0]], dropout),
                _stage([2 * w[0], w[0]], dropout),
            ]
        )
        self.head = nn.Conv2d(w[0], 2, 3, padding=1)

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        # Both images go through the encoder as one batch: the same weights, half the calls.
        x = torch.cat([before, after])
        differences = []
        for stage in self.encoder:
            x = stage(x)
            a, b = x.chunk(2)
            differences.append((a - b).abs())
            x = F.max_pool2d(x, 2)
        # The decoder starts from the after image's deepest pooled features, as the reference
        # implementation does; the differences enter through the skips.
        x = x.chunk(2)[1]
        for up, stage, skip in zip(
            reversed(self.upsample), self.decoder, reversed(differences), strict=True
        ):
            x = stage(torch.cat([up(x), skip], 1))
        return self.head(x)


def train_detector(
    pairs: ChangePairs,
    steps: int,
    batch_size: int = 8,
    crop: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    width: int = 16,
    dropout: float = 0.2,
    log: Callable[[str], None] | None = None,
) -> FCSiamDiff:
    """A detector trained from scratch on random crops of ``pairs`` (on the CPU).

    Each step draws ``batch_size`` pairs, a ``crop``-pixel window in each and one of the 8
    flips/rotations from ``default_rng([seed, step])``, so two datasets of the same sizes are
    sampled in exactly the same way. The loss is cross entropy weighted by the other class's
    frequency in ``pairs`` (as Daudt et al. weigh it), so the rare changed pixels are not
    ignored; Adam at ``lr``. ``log`` gets the mean loss every 50 steps.
    """
    if len(pairs) == 0:
        raise InputError("no change pairs to train on", "give a folder with at least one pair")
    if crop % MULTIPLE:
        raise ValueError(f"crop must be a multiple of {MULTIPLE}, got {crop}")
    small = [n for n, m in zip(pairs.names, pairs.change, strict=True) if min(m.shape) < crop]
    if small:
        raise InputError(
            f"{len(small)} pairs are smaller than the {crop} px crop (e.g. {small[0]})",
            "choose a smaller crop",
        )
    changed = min(max(pairs.change_fraction(), 1e-3), 1 - 1e-3)
    weights = torch.tensor([changed, 1 - changed], dtype=torch.float32) * 2
    torch.manual_seed(seed)
    model = FCSiamDiff(width, dropout).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def step_loss(step: int) -> torch.Tensor:
        before, after, change = _batch(pairs, np.random.default_rng([seed, step]), batch_size, crop)
        return F.cross_entropy(model(before, after), change, weight=weights)

    fit("detector", optimizer, steps, step_loss, log)
    return model.eval()


def predict(model: FCSiamDiff, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The change mask (H, W) bool of one pair of (H, W, 3) uint8 images; sides that are not
    multiples of 16 are padded by reflection and the padding cropped off."""
    if before.shape != after.shape or before.ndim != 3 or before.shape[2] != 3:
        raise ValueError(f"need two (H, W, 3) images of one shape: {before.shape}, {after.shape}")
    height, width = before.shape[:2]
    pad = (0, -width % MULTIPLE, 0, -height % MULTIPLE)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        a, b = (F.pad(_as_float(image[None]), pad, mode="reflect") for image in (before, after))
        changed = model(a, b)[0, :, :height, :width].argmax(0).numpy().astype(bool)
    model.train(was_training)
    return changed


def change_confusion(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """2 x 2 pixel counts, rows = truth, columns = prediction, 0 = unchanged, 1 = changed."""
    return confusion_matrix(
        np.asarray(truth, bool).astype(np.uint8), np.asarray(predicted, bool), num_classes=2
    )


def change_scores(confusion: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 and IoU of the changed class from a 2 x 2 confusion matrix (nan
    where a score has a zero denominator, e.g. precision when nothing was predicted changed)."""
    tp, fp, fn = float(confusion[1, 1]), float(confusion[0, 1]), float(confusion[1, 0])
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "iou": float(per_class_iou(confusion)[1]),
    }


def evaluate(model: FCSiamDiff, pairs: ChangePairs) -> dict[str, np.ndarray]:
    """The change confusion matrix of ``model`` on each pair, by name."""
    return {
        name: change_confusion(truth, predict(model, before, after))
        for name, before, after, truth in zip(
            pairs.names, pairs.before, pairs.after, pairs.change, strict=True
        )
    }


def summarize(
    confusions: dict[str, np.ndarray], draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> dict[str, object]:
    """Scores over a set of pairs: pooled over all their pixels (``precision``, ``recall``,
    ``f1``, ``iou``, as LEVIR-CD results are reported) with the pooled ``confusion``; the F1
    of each pair (``per_pair_f1``); and ``f1_interval``, the 2.5 and 97.5 percentiles of the
    pooled F1 over ``draws`` resamplings of the pairs with replacement: how much the figure
    hangs on which pairs were labelled (with a handful of pairs, a rough guide only)."""
    names = list(confusions)
    stack = np.stack([np.asarray(confusions[n], np.int64) for n in names])
    total = stack.sum(0)
    rng = np.random.default_rng(seed)
    resampled = stack[rng.integers(0, len(names), (draws, len(names)))].sum(1)
    tp, fp, fn = resampled[:, 1, 1], resampled[:, 0, 1], resampled[:, 1, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * tp / (2 * tp + fp + fn)
    low, high = np.nanpercentile(f1, [2.5, 97.5]) if np.isfinite(f1).any() else (np.nan,) * 2
    return {
        **change_scores(total),
        "f1_interval": [float(low), float(high)],
        "confusion": total.tolist(),
        "per_pair_f1": {n: change_scores(c)["f1"] for n, c in zip(names, stack, strict=True)},
    }


def detect_layout(folder: str | Path) -> str:
    """The layout whose three folders ``folder`` holds (see ``LAYOUTS``)."""
    folder = Path(folder)
    for name, parts in LAYOUTS.items():
        if all((folder / part).is_dir() for part in parts):
            return name
    expected = "; ".join(f"{name}: {'/'.join(parts)}" for name, parts in LAYOUTS.items())
    raise InputError(
        f"{folder} holds none of the change-pair layouts ({expected})",
        "give the folder that holds the image and label folders (e.g. a LEVIR-CD train/ folder)",
    )


def read_pairs(folder: str | Path, layout: str = "auto") -> ChangePairs:
    """Every pair in ``folder`` (files matched by name across the layout's folders), sorted by
    name. ``layout`` is a key of ``LAYOUTS`` or ``auto`` (the one whose folders exist).

    Labels must hold 0 and 255 (or 0 and 1) only; in the ``second`` layout a pixel is changed
    where ``label1`` and ``label2`` differ."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"change-pair folder {folder} does not exist", "check the path")
    if layout == "auto":
        layout = detect_layout(folder)
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}", f"use one of: auto, {', '.join(LAYOUTS)}")
    parts = LAYOUTS[layout]
    if layout == "second":
        parts = (*parts, "label2")
    files = [_images(folder / part) for part in parts]
    names = sorted(files[0])
    for part, found in zip(parts[1:], files[1:], strict=True):
        missing = sorted(set(names) - set(found))
        if missing:
            raise InputError(
                f"{len(missing)} pairs in {folder} have no file in {part}/ (e.g. {missing[0]})",
                f"give every image in {parts[0]}/ a file of the same name in {part}/",
            )
    pairs = ChangePairs([], [], [], [])
    for name in names:
        before, after = (_read_rgb(found[name]) for found in files[:2])
        if layout == "second":
            classes = [_read(found[name]) for found in files[2:]]
            if classes[0].ndim != 2 or classes[0].shape != classes[1].shape:
                raise InputError(
                    f"pair {name} in {folder}: label1 {classes[0].shape} and label2 "
                    f"{classes[1].shape} are not single-band maps of one size",
                    "give label1/label2 as single-band class maps",
                )
            change = classes[0] != classes[1]
            pairs.before_classes.append(classes[0])
            pairs.after_classes.append(classes[1])
        else:
            change = _read_binary(files[2][name])
        if not before.shape == after.shape or before.shape[:2] != change.shape:
            raise InputError(
                f"pair {name} in {folder}: images {before.shape[:2]} and {after.shape[:2]}, "
                f"label {change.shape} differ in size",
                "give images and labels of one size per pair",
            )
        pairs.names.append(name)
        pairs.before.append(before)
        pairs.after.append(after)
        pairs.change.append(change)
    return pairs


def _stage(channels: Sequence[int], dropout: float) -> nn.Sequential:
    """3x3 convolutions through ``channels``, each followed by batch norm, ReLU and dropout."""
    layers: list[nn.Module] = []
    for inputs, outputs in zip(channels[:-1], channels[1:], strict=True):
        layers += [
            nn.Conv2d(inputs, outputs, 3, padding=1),
            nn.BatchNorm2d(outputs),
            nn.ReLU(inplace=True),
            nn.Dropout2d(dropout),
        ]
    return nn.Sequential(*layers)


def _batch(
    pairs: ChangePairs, rng: np.random.Generator, size: int, crop: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random crops of random pairs, each in one of the 8 flips/rotations."""
    befores, afters, changes = [], [], []
    for index in rng.integers(0, len(pairs), size):
        height, width = pairs.change[index].shape
        row, col = rng.integers(0, height - crop + 1), rng.integers(0, width - crop + 1)
        turns, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
        window = (slice(row, row + crop), slice(col, col + crop))
        for out, image in (
            (befores, pairs.before[index][window]),
            (afters, pairs.after[index][window]),
            (changes, pairs.change[index][window]),
        ):
            image = np.rot90(image, turns)
            out.append(np.ascontiguousarray(image[:, ::-1] if flip else image))
    return (
        _as_float(np.stack(befores)),
        _as_float(np.stack(afters)),
        torch.from_numpy(np.stack(changes).astype(np.int64)),
    )


def _as_float(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 images as (B, 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def _images(folder: Path) -> dict[str, Path]:
    """Image files in ``folder`` by stem."""
    if not folder.is_dir():
        raise InputError(f"folder {folder} does not exist", "check the change-pair layout")
    return {p.stem: p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}


def _read(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.array(image)
    except OSError as error:
        raise InputError(f"cannot read {path} ({error})", "give PNG, JPEG or TIFF files") from error


def _read_rgb(path: Path) -> np.ndarray:
    image = _read(path)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(
            f"{path} is not an 8-bit RGB image (shape {image.shape}, {image.dtype})",
            "give 8-bit RGB images",
        )
    return image


def _read_binary(path: Path) -> np.ndarray:
    label = _read(path)
    if label.ndim == 3:
        if not (label == label[:, :, :1]).all():
            raise InputError(f"{path} is a colour label", "give grey 0/255 change labels")
        label = label[:, :, 0]
    values = set(np.unique(label).tolist())
    if not (values <= {0, 255} or values <= {0, 1}):
        raise InputError(
            f"{path} holds values {sorted(values)[:10]}, not a binary change label",
            "give change labels with 0 (unchanged) and 255 or 1 (changed)",
        )
    return label > 0
