"""Image + mask tiles for training, found by folder layout, with a held-out split by region.

Layouts (the first that matches wins):

- ``openearthmap``: ``images/X.tif`` + ``labels/X.tif`` (codes 1-8, 0 no data; scheme ``oem``).
  Tiles are few and large, so the held-out region is a fixed square inside every tile: its
  bottom-right ``HELDOUT_SIZE``² pixels. Training crops never overlap it.
- ``loveda`` and ``potsdam``: ``images/X.png`` + ``labels/X.png`` in a folder named after the
  source (their codes differ and nothing else tells them apart; schemes ``loveda``, ``potsdam``).
- ``flair``: ``images/IMG_N.png`` + ``masks/MSK_N.png`` (RGB-coded masks; scheme ``flair``).
- ``dubai``: ``tile_*/images/X.jpg`` + ``tile_*/masks/X.png`` (RGB-coded masks; scheme ``dubai``).
- ``plain``: ``images/X.*`` + ``masks/X.png``, or ``img_A/X.png`` + ``mask_A/X.png`` (SECOND
  style; scheme ``oem-index``).

Outside OpenEarthMap a file is a region: every ``HELDOUT_EVERY``-th file (sorted by path) is
held out, and at least one when there are two or more.

Layouts whose files have a known pixel size other than the model's (``LAYOUT_GSD``) are
resampled to it when read: images by area averaging, masks by the class that covers most of each
new pixel. A file smaller than a crop (after resampling) is mirrored out to the crop's size,
image and mask alike, so that small sources still count.

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

from geochange.classes import NODATA, NUM_CLASSES, ClassScheme, load_scheme, unknown_values_error
from geochange.errors import InputError
from geochange.grid import open_raster
from geochange.training.crops import augment, dihedral

HELDOUT_SIZE = 256
"""Edge in pixels of the held-out square at the bottom-right of each OpenEarthMap tile."""
HELDOUT_EVERY = 10
"""For file-per-region layouts, one file in this many is held out."""
DEFAULT_SCHEMES = {
    "openearthmap": "oem",
    "loveda": "loveda",
    "potsdam": "potsdam",
    "flair": "flair",
    "dubai": "dubai",
    "plain": "oem-index",
}
LAYOUT_GSD = {"loveda": 0.3, "flair": 0.2, "potsdam": 0.05}
"""Pixel size in metres of layouts whose files do not carry it and differ from the model's.
Others are read at their own pixel size (OpenEarthMap ~0.5 m; Dubai and plain pairs unknown)."""
MODEL_GSD = 0.5
"""The pixel size training reads at unless told otherwise: the default model's."""
NAMED_LAYOUTS = ("loveda", "potsdam")
"""Layouts of ``images/`` + ``labels/`` PNG pairs, told apart by the folder's name."""
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
    scale: float = 1.0
    """Pixels read per pixel of the file (below 1: resampled to a coarser pixel size);
    ``height`` and ``width`` are after resampling."""

    @property
    def whole(self) -> bool:
        """Whether the file is read whole (resampled or mirrored out) rather than by window."""
        return self.scale != 1.0 or (self.box[2], self.box[3]) != (self.height, self.width)


def find_pairs(root: Path) -> tuple[str, list[tuple[Path, Path]]]:
    """The layout name and the (image, mask) files under ``root``."""
    images, labels, masks = root / "images", root / "labels", root / "masks"
    if images.is_dir() and labels.is_dir():
        if any(labels.glob("*.tif")):
            return "openearthmap", _match(images, labels, "*.tif")
        named = [n for n in NAMED_LAYOUTS if n in root.name.lower()]
        if len(named) != 1:
            raise InputError(
                f"{root} holds images/ + labels/ PNG pairs, which is how LoveDA and Potsdam come, "
                "but its name says neither (their label codes and pixel sizes differ)",
                "rename the folder so that its name contains 'loveda' or 'potsdam'",
            )
        return named[0], _match(images, labels, "*.png")
    if images.is_dir() and masks.is_dir() and any(masks.glob("MSK_*.png")):
        return "flair", _match(images, masks, "MSK_*.png", ("IMG_", "MSK_"))
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
        "use images/ + labels/ (OpenEarthMap; LoveDA, Potsdam), images/IMG_N + masks/MSK_N "
        "(FLAIR), tile_*/images/ + tile_*/masks/ (Dubai), images/ + masks/ or img_A/ + mask_A/ "
        "with the same file names",
    )


def _match(
    images: Path, masks: Path, mask_glob: str, prefixes: tuple[str, str] = ("", "")
) -> list[tuple[Path, Path]]:
    """Masks paired with the image of the same stem (less the image and mask ``prefixes``, as
    FLAIR's IMG_N and MSK_N); masks without an image are skipped."""
    by_key = {
        p.stem.removeprefix(prefixes[0]): p
        for p in images.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES
    }
    pairs = [(m.stem.removeprefix(prefixes[1]), m) for m in sorted(masks.glob(mask_glob))]
    return [(by_key[key], m) for key, m in pairs if key in by_key]


def heldout_indices(layout: str, count: int) -> set[int]:
    """Which of ``count`` files (sorted by path) are held out whole: none for OpenEarthMap
    (a square of each tile is), else every ``HELDOUT_EVERY``-th, at least one of two or more."""
    if layout == "openearthmap" or count < 2:
        return set()
    chosen = {i for i in range(count) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1}
    return chosen or {count - 1}


class TileDataset(Dataset):
    """Random crops of image + mask tiles: images (3, c, c) float32 in [-1, 1], masks (c, c)
    int64 class indices with ``NODATA`` (255) kept, at ``gsd`` metres per pixel where the
    layout's own pixel size is known (``LAYOUT_GSD``).

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
        gsd: float = MODEL_GSD,
    ) -> None:
        if split not in ("train", "heldout"):
            raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"training data folder {self.root} does not exist")
        self.layout, files = find_pairs(self.root)
        self.scheme: ClassScheme = load_scheme(classes or DEFAULT_SCHEMES[self.layout])
        self.crop, self.split, self.seed, self.augment = crop, split, seed, augment
        self.gsd = gsd
        self.source_gsd = LAYOUT_GSD.get(self.layout)
        self.files = files
        self.pairs = self._split_pairs(files)
        if not self.pairs:
            raise InputError(f"the {split} split of {self.root} is empty (crop {crop} px)")
        self._scale: dict[Path, float] = {}
        self._whole: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
        area = sum((p.box[2] - p.box[0]) * (p.box[3] - p.box[1]) for p in self.pairs)
        self.length = length or max(len(self.pairs), area // max(crop // 4, 1) ** 2)

    def _split_pairs(self, files: list[tuple[Path, Path]]) -> list[Pair]:
        pairs = []
        heldout_files = heldout_indices(self.layout, len(files))
        scale = 1.0 if self.source_gsd is None else self.source_gsd / self.gsd
        for i, (image, mask) in enumerate(files):
            with open_raster(mask) as ds:
                h, w = max(1, round(ds.height * scale)), max(1, round(ds.width * scale))
            if self.layout == "openearthmap":
                if min(h, w) < self.crop:
                    continue
                square = (h - HELDOUT_SIZE, w - HELDOUT_SIZE, h, w)
                if self.split == "heldout":
                    pairs.append(Pair(image, mask, h, w, square))
                elif min(h, w) >= HELDOUT_SIZE + self.crop:
                    pairs.append(Pair(image, mask, h, w, (0, 0, h, w), avoid=square))
            elif (i in heldout_files) == (self.split == "heldout"):
                box = (0, 0, max(h, self.crop), max(w, self.crop))
                pairs.append(Pair(image, mask, h, w, box, scale=scale))
        return pairs

    def split_info(self) -> dict[str, Any]:
        """What was trained on and what was held out, for the model card."""
        rule = (
            f"bottom-right {HELDOUT_SIZE}x{HELDOUT_SIZE} px of every tile held out"
            if self.layout == "openearthmap"
            else f"every {HELDOUT_EVERY}th file (sorted by path) held out, at least one"
        )
        heldout = heldout_indices(self.layout, len(self.files))
        return {
            "root": str(self.root),
            "layout": self.layout,
            "classes": self.scheme.name,
            "split": self.split,
            "heldout_rule": rule,
            "heldout_files": [
                str(self.files[i][0].relative_to(self.root)) for i in sorted(heldout)
            ],
            "files": [str(p.image.relative_to(self.root)) for p in self.pairs],
            "source_gsd_m": self.source_gsd,
            "resampled_to_gsd_m": None if self.source_gsd is None else self.gsd,
            "mirrored_files": [
                str(p.image.relative_to(self.root))
                for p in self.pairs
                if min(p.height, p.width) < self.crop
            ],
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
        if pair.whole:
            whole_image, whole_mask = self._read_whole(pair)
            rows, cols = slice(row, row + self.crop), slice(col, col + self.crop)
            image, mask = whole_image[:, rows, cols], whole_mask[rows, cols]
        else:
            window = Window(col, row, self.crop, self.crop)
            image, mask = self._read_image(pair.image, window), self._read_mask(pair.mask, window)
        return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(mask).long()

    def augmentation(self, index: int, variant: int) -> tuple[int, bool]:
        """Quarter turns and horizontal flip for crop ``index`` at ``variant``."""
        return dihedral(self.seed, index, variant) if self.augment else (0, False)

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

    def _read_whole(self, pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        """The file's image and classes at the dataset's pixel size, mirrored out to
        ``pair.box`` (kept: such files are small)."""
        if pair.image not in self._whole:
            image, mask = self._read_image(pair.image), self._read_mask(pair.mask)
            shape = (pair.height, pair.width)
            if mask.shape != shape:
                image = area_resample(image, shape)
                mask = mode_resample(mask, shape)
            pad = ((0, pair.box[2] - pair.height), (0, pair.box[3] - pair.width))
            image = np.pad(image, ((0, 0), *pad), mode="symmetric")
            self._whole[pair.image] = image, np.pad(mask, pad, mode="symmetric")
        return self._whole[pair.image]

    def _read_image(self, path: Path, window: Window | None = None) -> np.ndarray:
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

    def _read_mask(self, path: Path, window: Window | None = None) -> np.ndarray:
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
        self.crop = parts[0].crop
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
    gsd: float = MODEL_GSD,
) -> TrainingData:
    """One folder as a ``TileDataset``, several as ``MixedTiles`` (each with its own layout)."""
    parts = [TileDataset(r, crop, classes, split, seed, augment, length, gsd) for r in roots]
    return parts[0] if len(parts) == 1 else MixedTiles(parts)


def _overlaps(crop: tuple[int, int, int], box: tuple[int, int, int, int]) -> bool:
    """Whether the square crop (row, col, size) intersects the box (row0, col0, row1, col1)."""
    row, col, size = crop
    return row < box[2] and box[0] < row + size and col < box[3] and box[1] < col + size


def area_resample(planes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(c, h, w) values to (c, *shape), each new pixel the area-weighted mean of the old pixels
    it covers (what GDAL calls ``average``)."""
    return _area_axis(_area_axis(planes, shape[0], 1), shape[1], 2).astype(planes.dtype)


def mode_resample(classes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) class indices (``NODATA`` too) to ``shape``, each new pixel the class covering
    most of it: an average of class fractions, never a blend of class numbers."""
    values = [*range(NUM_CLASSES), NODATA]
    fractions = area_resample(np.stack([classes == v for v in values]).astype(np.float32), shape)
    return np.asarray(values, np.uint8)[fractions.argmax(0)]


def _area_axis(data: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Area-average resampling along one axis, through the running sum: each output pixel is
    the integral of the input over its span divided by the span's length."""
    moved = np.moveaxis(data, axis, -1).astype(np.float64)
    count = moved.shape[-1]
    total = np.concatenate([np.zeros((*moved.shape[:-1], 1)), np.cumsum(moved, -1)], -1)
    edges = np.arange(size + 1) * (count / size)
    whole = np.minimum(edges.astype(int), count - 1)
    integral = total[..., whole] + (edges - whole) * moved[..., whole]
    return np.moveaxis(np.diff(integral, axis=-1) / (count / size), -1, axis)
