"""Training crops from a pack file: numpy, torch and json only, so a machine without the GIS
packages (a lent GPU) trains from what ``geochange train pack`` wrote on the CPU.

A pack is an ``np.savez_compressed`` file holding

- ``images``: uint8 (N, 3, H, W), filtered for deflate (see ``encode_images``),
- ``masks``: uint8 (N, H, W), model class indices 0-7 and ``NODATA`` (255),
- ``source``: uint16 (N,), the index of each crop's source in the metadata,
- ``metadata``: a JSON string: format, version, crop size, pixel size, and per source its
  folder, layout, class scheme, held-out rule and files, and the sha256 of every file read.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geochange.classes import NODATA, NUM_CLASSES
from geochange.errors import InputError
from geochange.hashing import file_sha256
from geochange.training.crops import augment, dihedral

PACK_FORMAT = "geochange-pack"
PACK_VERSION = 1
IMAGE_FILTER = "green-difference+up"
"""How ``images`` is stored: red and blue minus green, then each row minus the row above, all
modulo 256. Lossless, and deflate then keeps about 0.45 of the bytes instead of 0.8."""
ARRAYS = ("images", "masks", "source", "metadata")


def encode_images(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 3, H, W) RGB to the ``IMAGE_FILTER`` form."""
    green = images[:, 1:2]
    out = np.concatenate([images[:, :1] - green, green, images[:, 2:] - green], axis=1)
    out[:, :, 1:] -= out[:, :, :-1].copy()
    return out


def decode_images(coded: np.ndarray) -> np.ndarray:
    """The inverse of ``encode_images`` (uint8 arithmetic wraps, as the encoding did)."""
    out = np.cumsum(coded, axis=2, dtype=np.uint8)
    green = out[:, 1:2]
    return np.concatenate([out[:, :1] + green, green, out[:, 2:] + green], axis=1)


def read_pack(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """The decoded images, masks, source indices and metadata of a pack, checked."""
    path = Path(path)
    fix = "make one with `geochange train pack DATA_DIRS... -o PACK.npz`"
    if not path.is_file():
        raise InputError(f"pack {path} does not exist", fix)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [name for name in ARRAYS if name not in npz.files]
            if missing:
                raise InputError(f"{path} is not a geochange pack: no {', '.join(missing)}", fix)
            images, masks, source = npz["images"], npz["masks"], npz["source"]
            metadata = json.loads(str(npz["metadata"]))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(f"cannot read pack {path}: {err}", fix) from err
    if metadata.get("format") != PACK_FORMAT or metadata.get("version") != PACK_VERSION:
        raise InputError(
            f"{path} is not a version-{PACK_VERSION} {PACK_FORMAT} file", f"pack it again: {fix}"
        )
    n, crop = len(images), metadata.get("crop_px")
    shapes_ok = (
        images.dtype == masks.dtype == np.uint8
        and images.shape == (n, 3, crop, crop)
        and masks.shape == (n, crop, crop)
        and source.shape == (n,)
        and n > 0
    )
    if not shapes_ok or metadata.get("image_filter") != IMAGE_FILTER:
        raise InputError(f"pack {path} is damaged: its arrays do not match its metadata", fix)
    known = np.zeros(256, bool)
    known[[*range(NUM_CLASSES), NODATA]] = True
    if not known[masks].all():
        raise InputError(f"pack {path} is damaged: its masks hold codes other than 0-7 and 255")
    return decode_images(images), masks, source, metadata


class PackedData:
    """The crops of a pack as the training loops want them (see ``crops.CropSource``).

    Index ``i`` is pack crop ``i % N``; with a ``crop`` smaller than the pack's, a window of it
    placed by ``(seed, i)``, so ``length`` (default: N, or enough indices to cover each pack crop
    about once) can exceed N. Flips and rotations are drawn per ``(seed, i, variant)`` as for
    folders. Crops are drawn uniformly: the pack's share of crops per source is its mixing.
    """

    def __init__(
        self,
        path: str | Path,
        crop: int | None = None,
        seed: int = 0,
        augment: bool = True,
        length: int | None = None,
    ) -> None:
        self.path = Path(path)
        images, masks, source, self.metadata = read_pack(self.path)
        self.pack_crop = int(self.metadata["crop_px"])
        self.crop = crop or self.pack_crop
        if self.crop > self.pack_crop:
            raise InputError(
                f"--crop {self.crop} is larger than the crops of pack {self.path} "
                f"({self.pack_crop} px)",
                f"use --crop {self.pack_crop} or less, or pack again with a larger --crop",
            )
        self.images, self.masks = torch.from_numpy(images), torch.from_numpy(masks)
        self.source = source
        self.seed, self.augment = seed, augment
        self.length = length or len(images) * (self.pack_crop // self.crop) ** 2

    def __len__(self) -> int:
        return self.length

    def item(self, index: int, variant: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop ``index``; ``variant`` picks its flip and rotation (when augmenting)."""
        image, mask = self.unaugmented(index)
        k, flip = self.augmentation(index, variant)
        return augment(image, k, flip), augment(mask, k, flip)

    def unaugmented(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop ``index`` as packed: images in [-1, 1] exactly as read from the folders."""
        number = index % len(self.images)
        row = col = 0
        if self.crop < self.pack_crop:
            row, col = np.random.default_rng([self.seed, index]).integers(
                0, self.pack_crop - self.crop + 1, 2
            )
        rows, cols = slice(row, row + self.crop), slice(col, col + self.crop)
        # The arithmetic of TileDataset's reads, so that both give the same floats.
        image = self.images[number, :, rows, cols].float() / 255.0 * 2.0 - 1.0
        return image, self.masks[number, rows, cols].long()

    def augmentation(self, index: int, variant: int) -> tuple[int, bool]:
        """Quarter turns and horizontal flip for crop ``index`` at ``variant``."""
        return dihedral(self.seed, index, variant) if self.augment else (0, False)

    def split_info(self) -> dict[str, Any]:
        """The pack's record (sources, held-out rules, files) for the model card; ``folders``
        as ``MixedTiles`` gives them, so the card lists each source."""
        folders = [
            {k: v for k, v in source.items() if k != "sha256"}
            for source in self.metadata["sources"]
        ]
        return {
            "pack": str(self.path),
            "pack_sha256": file_sha256(self.path),
            "mixing": self.metadata["mixing"],
            "heldout": self.metadata["heldout"],
            "gsd_m": self.metadata["gsd_m"],
            "crop_px": self.crop,
            "crops": self.length,
            "folders": folders,
        }
