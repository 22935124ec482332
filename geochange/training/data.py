"""Image + mask tiles for training, found by folder layout, with a held-out split by region.

Layouts (the first that matches wins):

- ``openearthmap``: ``images/X.tif`` + ``labels/X.tif`` (codes 1-8, 0 no data; scheme ``oem``).
  Tiles are few and large, so the held-out region is a fixed square inside every tile: its
  bottom-right ``HELDOUT_SIZE``² pixels. Training crops never overlap it.
- ``dubai``: ``tile_*/images/X.jpg`` + ``tile_*/masks/X.png`` (RGB-coded masks; scheme ``dubai``).
- ``plain``: ``images/X.*`` + ``masks/X.png``, or ``img_A/X.png`` + ``mask_A/X.png`` (SECOND
  style; scheme ``oem-index``).

For ``dubai`` and ``plain`` a file is a region: every ``HELDOUT_EVERY``-th file (sorted by path)
is held out, and at least one when there are two or more.

Crops, flips and 90° rotations are a pure function of ``(seed, index, variant)`` so that a run, a
resumed run and a test see the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rasterio.enums import ColorInterp
from rasterio.windows import Window
from torch.utils.data import Dataset

from geochange.classes import ClassScheme, load_scheme, unknown_values_error
from geochange.errors import InputError
from geochange.grid import open_raster

HELDOUT_SIZE = 256
"""Edge in pixels of the held-out square at the bottom-right of each OpenEarthMap tile."""
HELDOUT_EVERY = 10
"""For file-per-region layouts, one file in this many is held out."""
DEFAULT_SCHEMES = {"openearthmap": "oem", "dubai": "dubai", "plain": "oem-index"}
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")

Split = Literal["train", "heldout"]


@dataclass(frozen=True)
class Pair:
    """One image and its mask, with the pixel box crops are drawn from and the box to avoid."""

    image: Path
    mask: Path
    height: int
    width: int
    box: tuple[int, int, int, int]
    """(row0, col0, row1, col1) that crops must lie inside."""
    avoid: tuple[int, int, int, int] | None = None
    """A box crops must not overlap (the held-out square, for training crops)."""


def find_pairs(root: Path) -> tuple[str, list[tuple[Path, Path]]]:
    """The layout name and the (image, mask) files under ``root``."""
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return "openearthmap", _match(root / "images", root / "labels", "*.tif")
    tiles = sorted(p for p in root.glob("tile_*") if (p / "images").is_dir())
    if tiles:
        pairs = [pair for t in tiles for pair in _match(t / "images", t / "masks", "*.png")]
        return "dubai", pairs
    for images, masks in (("images", "masks"), ("img_A", "mask_A")):
        found = sorted(root.rglob(images))
        pairs = [
            pair
            for d in found
            if (d.parent / masks).is_dir()
            for pair in _match(d, d.parent / masks, "*.png")
        ]
        if pairs:
            return "plain", pairs
    raise InputError(
        f"found no image + mask pairs in {root}",
        "use images/ + labels/ (OpenEarthMap), tile_*/images/ + tile_*/masks/ (Dubai), "
        "images/ + masks/ or img_A/ + mask_A/ with the same file names",
    )


def _match(images: Path, masks: Path, mask_glob: str) -> list[tuple[Path, Path]]:
    """Masks paired with the image of the same stem; masks without an image are skipped."""
    by_stem = {p.stem: p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    return [(by_stem[m.stem], m) for m in sorted(masks.glob(mask_glob)) if m.stem in by_stem]


class TileDataset(Dataset):
    """Random crops of image + mask tiles: images (3, c, c) float32 in [-1, 1], masks (c, c)
    int64 class indices with ``NODATA`` (255) kept.

    ``length`` is the number of distinct crops (default: one per quarter-crop stride over the
    split's area, so neighbouring crops overlap and the model sees many framings); crop positions
    depend on ``(seed, index)`` only, augmentations also on ``variant``
    (the training step), so a few crops can be overfit while flips and rotations still vary.
    """

    def __init__(
        self,
        root: str | Path,
        crop: int = 256,
        classes: str | None = None,
        split: Split = "train",
        seed: int = 0,
        augment: bool = True,
        length: int | None = None,
    ) -> None:
        if split not in ("train", "heldout"):
            raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"training data folder {self.root} does not exist")
        self.layout, files = find_pairs(self.root)
        self.scheme: ClassScheme = load_scheme(classes or DEFAULT_SCHEMES[self.layout])
        self.crop, self.split, self.seed, self.augment = crop, split, seed, augment
        self.pairs = self._split_pairs(files)
        if not self.pairs:
            raise InputError(f"the {split} split of {self.root} is empty (crop {crop} px)")
        self._scale: dict[Path, float] = {}
        area = sum((p.box[2] - p.box[0]) * (p.box[3] - p.box[1]) for p in self.pairs)
        self.length = length or max(len(self.pairs), area // max(crop // 4, 1) ** 2)

    def _split_pairs(self, files: list[tuple[Path, Path]]) -> list[Pair]:
        pairs = []
        heldout_files = set()
        if self.layout != "openearthmap" and len(files) >= 2:
            heldout_files = {i for i in range(len(files)) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1}
            heldout_files = heldout_files or {len(files) - 1}
        for i, (image, mask) in enumerate(files):
            with open_raster(mask) as ds:
                h, w = ds.height, ds.width
            if min(h, w) < self.crop:
                continue
            if self.layout == "openearthmap":
                square = (h - HELDOUT_SIZE, w - HELDOUT_SIZE, h, w)
                if self.split == "heldout":
                    pairs.append(Pair(image, mask, h, w, square))
                elif min(h, w) >= HELDOUT_SIZE + self.crop:
                    pairs.append(Pair(image, mask, h, w, (0, 0, h, w), avoid=square))
            elif (i in heldout_files) == (self.split == "heldout"):
                pairs.append(Pair(image, mask, h, w, (0, 0, h, w)))
        return pairs

    def split_info(self) -> dict[str, Any]:
        """What was trained on and what was held out, for the model card."""
        rule = (
            f"bottom-right {HELDOUT_SIZE}x{HELDOUT_SIZE} px of every tile held out"
            if self.layout == "openearthmap"
            else f"every {HELDOUT_EVERY}th file (sorted by path) held out, at least one"
        )
        return {
            "root": str(self.root),
            "layout": self.layout,
            "classes": self.scheme.name,
            "split": self.split,
            "heldout_rule": rule,
            "files": [str(p.image.relative_to(self.root)) for p in self.pairs],
            "crop_px": self.crop,
            "crops": self.length,
        }

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.item(index, 0)

    def item(self, index: int, variant: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop ``index``; ``variant`` picks its flip and rotation (when augmenting)."""
        image, mask = self.unaugmented(index)
        k, flip = self.augmentation(index, variant)
        return augment(image, k, flip), augment(mask, k, flip)

    def unaugmented(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop ``index`` as read (what a latent cache encodes once)."""
        pair, row, col = self.crop_box(index)
        window = Window(col, row, self.crop, self.crop)
        image, mask = self._read_image(pair.image, window), self._read_mask(pair.mask, window)
        return torch.from_numpy(image), torch.from_numpy(mask).long()

    def augmentation(self, index: int, variant: int) -> tuple[int, bool]:
        """Quarter turns and horizontal flip for crop ``index`` at ``variant``."""
        if not self.augment:
            return 0, False
        k, flip = np.random.default_rng([self.seed, index, variant, 1]).integers(0, [4, 2])
        return int(k), bool(flip)

    def crop_box(self, index: int) -> tuple[Pair, int, int]:
        """The pair and top-left pixel (row, col) of crop ``index``."""
        pair = self.pairs[index % len(self.pairs)]
        return pair, *self._position(pair, np.random.default_rng([self.seed, index]))

    def _position(self, pair: Pair, rng: np.random.Generator) -> tuple[int, int]:
        """A crop's top-left corner inside ``pair.box`` and off ``pair.avoid`` (by rejection)."""
        r0, c0, r1, c1 = pair.box
        for _ in range(1000):
            row = int(rng.integers(r0, r1 - self.crop + 1))
            col = int(rng.integers(c0, c1 - self.crop + 1))
            if pair.avoid is None or not _overlaps((row, col, self.crop), pair.avoid):
                return row, col
        raise RuntimeError(f"no crop of {self.crop} px avoids the held-out box of {pair.image}")

    def _read_image(self, path: Path, window: Window) -> np.ndarray:
        """Three bands scaled to [-1, 1]: uint8 by 255, others by the file's 99th percentile."""
        with open_raster(path) as ds:
            bands = list(range(1, min(ds.count, 3) + 1))
            data = ds.read(bands, window=window).astype(np.float32)
            if ds.dtypes[0] == "uint8":
                scale = 255.0
            else:
                if path not in self._scale:
                    overview = ds.read(bands, out_shape=(len(bands), 256, 256))
                    self._scale[path] = float(np.percentile(overview, 99)) or 1.0
                scale = self._scale[path]
        if len(data) < 3:
            data = np.repeat(data[:1], 3, axis=0)
        return np.clip(data / scale, 0.0, 1.0) * 2.0 - 1.0

    def _read_mask(self, path: Path, window: Window) -> np.ndarray:
        """Class indices (``NODATA`` kept); paletted masks are expanded to RGB for colour-coded
        schemes."""
        with open_raster(path) as ds:
            if self.scheme.colours is not None:
                if ds.count == 1 and ds.colorinterp[0] == ColorInterp.palette:
                    lookup = np.zeros((3, 256), np.uint8)
                    for value, rgba in ds.colormap(1).items():
                        lookup[:, value] = rgba[:3]
                    raw = lookup[:, ds.read(1, window=window)]
                else:
                    raw = ds.read([1, 2, 3], window=window)
            else:
                raw = ds.read(1, window=window)
        classes, unknown = self.scheme.classify(raw)
        if unknown:
            raise unknown_values_error(self.scheme, unknown)
        return classes


class MixedTiles:
    """Several tile folders as one dataset, each folder drawn equally often.

    Folders differ in size by orders of magnitude (two OpenEarthMap tiles, 72 Dubai images), so
    index ``i`` picks folder ``i % n`` and crop ``i // n`` in it: a small folder's crops repeat
    rather than drown in a large one's.
    """

    def __init__(self, parts: list[TileDataset]) -> None:
        self.parts = parts
        self.length = len(parts) * max(len(p) for p in parts)

    def __len__(self) -> int:
        return self.length

    def _locate(self, index: int) -> tuple[TileDataset, int]:
        part = self.parts[index % len(self.parts)]
        return part, (index // len(self.parts)) % len(part)

    def item(self, index: int, variant: int) -> tuple[torch.Tensor, torch.Tensor]:
        part, local = self._locate(index)
        return part.item(local, variant)

    def unaugmented(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        part, local = self._locate(index)
        return part.unaugmented(local)

    def augmentation(self, index: int, variant: int) -> tuple[int, bool]:
        part, local = self._locate(index)
        return part.augmentation(local, variant)

    def split_info(self) -> dict[str, Any]:
        return {
            "mixing": "folders drawn equally often",
            "folders": [p.split_info() for p in self.parts],
        }


TrainingData = TileDataset | MixedTiles


def open_tiles(
    roots: list[str | Path],
    crop: int = 256,
    classes: str | None = None,
    split: Split = "train",
    seed: int = 0,
    length: int | None = None,
    augment: bool = True,
) -> TrainingData:
    """One folder as a ``TileDataset``, several as ``MixedTiles`` (each with its own layout)."""
    parts = [TileDataset(r, crop, classes, split, seed, augment, length) for r in roots]
    return parts[0] if len(parts) == 1 else MixedTiles(parts)


def _overlaps(crop: tuple[int, int, int], box: tuple[int, int, int, int]) -> bool:
    """Whether the square crop (row, col, size) intersects the box (row0, col0, row1, col1)."""
    row, col, size = crop
    return row < box[2] and box[0] < row + size and col < box[3] and box[1] < col + size


def augment(tensor: torch.Tensor, quarter_turns: int, flip: bool) -> torch.Tensor:
    """Rotate and flip the last two axes: the same for images, masks and latents."""
    out = torch.rot90(tensor, quarter_turns, dims=(-2, -1))
    return out.flip(-1) if flip else out
