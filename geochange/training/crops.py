"""What the training loops need of a crop source, with no GIS import.

Both sources of crops, tiles read from folders (``geochange.training.data``, through rasterio)
and a pack file (``geochange.training.packed``, numpy only), share the dihedral augmentation
defined here, so a model trained from a pack sees what it would have seen from the folders.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch


class CropSource(Protocol):
    """Crops addressed by index: images (3, c, c) float32 in [-1, 1], masks (c, c) int64 class
    indices with ``NODATA`` (255)."""

    crop: int
    """Crop edge in pixels."""

    def __len__(self) -> int: ...

    def item(self, index: int, variant: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop ``index`` augmented as ``variant`` (the training step) asks."""
        ...

    def unaugmented(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop ``index`` as read (what a latent cache encodes once)."""
        ...

    def augmentation(self, index: int, variant: int) -> tuple[int, bool]:
        """Quarter turns and horizontal flip of crop ``index`` at ``variant``."""
        ...

    def split_info(self) -> dict[str, Any]:
        """What was trained on and what was held out, for the model card."""
        ...


def dihedral(seed: int, index: int, variant: int) -> tuple[int, bool]:
    """One of the 8 rotations and flips, a pure function of ``(seed, index, variant)`` so that a
    run, a resumed run and a test draw the same."""
    k, flip = np.random.default_rng([seed, index, variant, 1]).integers(0, [4, 2])
    return int(k), bool(flip)


def spread_indices(length: int, count: int) -> list[int]:
    """Up to ``count`` indices at even steps through ``length`` crops: a pack holds its sources
    one after another, so its first crops would all come from one."""
    return np.unique(np.linspace(0, length - 1, min(count, length)).round()).astype(int).tolist()


def augment(tensor: torch.Tensor, quarter_turns: int, flip: bool) -> torch.Tensor:
    """Rotate and flip the last two axes: the same for images, masks and latents."""
    out = torch.rot90(tensor, quarter_turns, dims=(-2, -1))
    return out.flip(-1) if flip else out
