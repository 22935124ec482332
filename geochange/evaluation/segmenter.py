"""A small U-Net that reads land cover from an image, to check that generated images show the
classes their masks ask for (semantic fidelity).

It is the project's own code in plain torch, with no pretrained weights, so that it trains on
the same crops as the diffusion model in minutes on a CPU and adds no dependency.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from geochange.classes import NODATA, NUM_CLASSES
from geochange.errors import InputError
from geochange.evaluation.fitting import fit

SEGMENTER_KIND = "geochange-segmenter"
"""The ``kind`` in a saved segmenter's metadata, to tell it from other safetensors files."""
MULTIPLE = 8
"""Image sides must be multiples of this (three 2x poolings); ``predict`` pads to it."""


class LabelledCrops(Protocol):
    """What ``train_segmenter`` reads: ``geochange.training.data.TileDataset`` fits."""

    def __len__(self) -> int: ...

    def item(self, index: int, variant: int) -> tuple[torch.Tensor, torch.Tensor]: ...


class Segmenter(nn.Module):
    """A compact U-Net: images (B, 3, H, W) in [-1, 1], H and W multiples of 8, to class logits
    (B, 8, H, W). Channels ``width``, 2, 4 and 4 x ``width`` at 1, 1/2, 1/4 and 1/8 of the
    resolution: about 0.84 M parameters at width 32, and a receptive field of about 100 px."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = width
        w = width
        self.down1, self.down2, self.down3 = _block(3, w), _block(w, 2 * w), _block(2 * w, 4 * w)
        self.bottom = _block(4 * w, 4 * w)
        self.up3, self.up2, self.up1 = _block(8 * w, 2 * w), _block(4 * w, w), _block(2 * w, w)
        self.head = nn.Conv2d(w, NUM_CLASSES, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        full = self.down1(images)
        half = self.down2(F.max_pool2d(full, 2))
        quarter = self.down3(F.max_pool2d(half, 2))
        x = self.bottom(F.max_pool2d(quarter, 2))
        x = self.up3(torch.cat([_upsample(x), quarter], 1))
        x = self.up2(torch.cat([_upsample(x), half], 1))
        x = self.up1(torch.cat([_upsample(x), full], 1))
        return self.head(x)


def train_segmenter(
    dataset: LabelledCrops,
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    width: int = 32,
    device: str | torch.device = "cpu",
) -> Segmenter:
    """A segmenter trained from scratch on ``dataset``'s crops (no-data pixels ignored).

    Batches are drawn as the diffusion training loop draws them (indices from
    ``default_rng([seed, step])``, augmentation ``variant=step``), so a seed gives the same
    segmenter every time. ``log`` gets the mean loss every 50 steps.
    """
    torch.manual_seed(seed)
    device = torch.device(device)
    segmenter = Segmenter(width).to(device).train()
    optimizer = torch.optim.AdamW(segmenter.parameters(), lr=lr)

    def step_loss(step: int) -> torch.Tensor:
        indices = np.random.default_rng([seed, step]).integers(0, len(dataset), batch_size)
        items = [dataset.item(int(i), step) for i in indices]
        images = torch.stack([image for image, _ in items]).to(device)
        masks = torch.stack([mask for _, mask in items]).to(device)
        logits = segmenter(images)
        # A sum over the labelled pixels, not a mean: a batch of no data alone gives 0, not nan.
        loss = F.cross_entropy(logits, masks, ignore_index=NODATA, reduction="sum")
        return loss / (masks != NODATA).sum().clamp(min=1)

    fit("segmenter", optimizer, steps, step_loss, log)
    return segmenter.eval()


def predict(
    segmenter: Segmenter, images: torch.Tensor | np.ndarray, batch_size: int = 8
) -> np.ndarray:
    """Class maps (B, H, W) int64 for images (B, 3, H, W): a float tensor in [-1, 1] or a uint8
    array (as written to disk). Sides that are not multiples of 8 are padded by reflection and
    the padding cropped off."""
    if isinstance(images, np.ndarray) and images.dtype != np.uint8:
        raise TypeError(f"numpy images must be uint8, got {images.dtype}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images.shape)}")
    count, _, height, width = images.shape
    if min(height, width) < MULTIPLE:
        raise ValueError(f"images must be at least {MULTIPLE} px a side, got {height}x{width}")
    pad = (0, -width % MULTIPLE, 0, -height % MULTIPLE)
    device = next(segmenter.parameters()).device
    was_training = segmenter.training
    segmenter.eval()
    classes = np.empty((count, height, width), np.int64)
    with torch.no_grad():
        for start in range(0, count, batch_size):
            batch = _as_float(images[start : start + batch_size]).to(device)
            logits = segmenter(F.pad(batch, pad, mode="reflect"))[:, :, :height, :width]
            classes[start : start + batch_size] = logits.argmax(1).cpu().numpy()
    segmenter.train(was_training)
    return classes


def save_segmenter(segmenter: Segmenter, path: str | Path) -> None:
    """Write the weights to a safetensors file, with the width in its metadata."""
    state = {name: tensor.contiguous() for name, tensor in segmenter.state_dict().items()}
    metadata = {"kind": SEGMENTER_KIND, "width": str(segmenter.width)}
    save_file(state, str(path), metadata=metadata)


def load_segmenter(path: str | Path) -> Segmenter:
    """The segmenter saved at ``path`` (on the CPU, in eval mode)."""
    path = Path(path)
    fix = "give the .safetensors file written by geochange.evaluation.segmenter.save_segmenter"
    if not path.is_file():
        raise InputError(f"segmenter file {path} does not exist", fix)
    try:
        with safe_open(str(path), "pt") as file:
            metadata = file.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise InputError(f"{path} is not a safetensors file ({error})", fix) from error
    if metadata.get("kind") != SEGMENTER_KIND or not metadata.get("width", "").isdigit():
        raise InputError(f"{path} is not a geochange segmenter (its metadata: {metadata})", fix)
    segmenter = Segmenter(int(metadata["width"]))
    try:
        segmenter.load_state_dict(state)
    except RuntimeError as error:
        raise InputError(f"{path} holds weights of another shape ({error})", fix) from error
    return segmenter.eval()


def _block(inputs: int, outputs: int) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by GroupNorm and SiLU."""
    groups = math.gcd(8, outputs)
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1),
        nn.GroupNorm(groups, outputs),
        nn.SiLU(),
        nn.Conv2d(outputs, outputs, 3, padding=1),
        nn.GroupNorm(groups, outputs),
        nn.SiLU(),
    )


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def _as_float(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Images as float32 in [-1, 1]."""
    if isinstance(images, np.ndarray):
        return torch.from_numpy(images).float() / 127.5 - 1
    return images.float()
