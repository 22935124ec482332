"""Pack training crops of labelled folders into one compact file, on a machine with the GIS
packages, for training where there are none (see ``geochange.training.packed``).

Crops are read by ``TileDataset`` exactly as training from the folders reads them: same
layouts, class schemes, resampling to the model's pixel size, and the same held-out regions,
which are never packed.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geochange import __version__
from geochange.errors import InputError
from geochange.hashing import file_sha256
from geochange.training.data import HELDOUT_EVERY, HELDOUT_SIZE, MODEL_GSD, TileDataset
from geochange.training.packed import (
    IMAGE_FILTER,
    PACK_FORMAT,
    PACK_VERSION,
    encode_images,
)

CROPS_AT_256 = 280
"""Default crops in a pack of 256² crops (about 24 MB, so that the working tree, the pack and
the diffusers wheel fit the 64 MiB a lent GPU takes); smaller crops get more, by area."""
OVERLAP = 2
"""A source offers about this many crops per crop-sized area of its training pixels (half
overlapping), and at least one per file."""


def default_crops(crop: int) -> int:
    """``CROPS_AT_256`` scaled by area, so a pack's size hardly depends on ``crop``."""
    return max(1, round(CROPS_AT_256 * (256 / crop) ** 2))


@dataclass(frozen=True)
class PackResult:
    """What was written: the file, its size and the crops per source folder."""

    path: Path
    bytes: int
    crops: dict[str, int]


def capacity(dataset: TileDataset) -> int:
    """Distinct crops worth packing from a source: ``OVERLAP`` per crop area of each file's
    training box, at least one per file (a file as small as a crop has one crop to give)."""
    crop_area = dataset.crop**2
    return sum(
        max(1, math.ceil(OVERLAP * (p.box[2] - p.box[0]) * (p.box[3] - p.box[1]) / crop_area) - 1)
        for p in dataset.pairs
    )


def allocate(total: int, capacities: list[int]) -> list[int]:
    """Share ``total`` crops equally among sources, none beyond its capacity; what a small
    source cannot take goes to the others."""
    shares = [0] * len(capacities)
    left = total
    while left > 0:
        open_ = [i for i, c in enumerate(capacities) if shares[i] < c]
        if not open_:
            break
        each = max(1, left // len(open_))
        for i in open_:
            give = min(each, capacities[i] - shares[i], left)
            shares[i] += give
            left -= give
    return shares


def pack(
    data_dirs: list[str | Path],
    output: str | Path,
    crop: int = 256,
    crops: int | None = None,
    classes: str | None = None,
    seed: int = 0,
    gsd: float = MODEL_GSD,
    overwrite: bool = False,
) -> PackResult:
    """Write ``crops`` training crops (default ``default_crops(crop)``) of ``data_dirs`` to
    ``output`` (a ``.npz``), shared among the folders by ``allocate``; atomic."""
    output = Path(output)
    if output.suffix != ".npz":
        raise InputError(f"the pack {output} must end in .npz", f"write -o {output.stem}.npz")
    if output.exists() and not overwrite:
        raise InputError(f"{output} exists", "pass --overwrite to replace it")
    if not output.parent.is_dir():
        raise InputError(f"the folder of {output} does not exist", "create it first")
    total = crops or default_crops(crop)
    if total < len(data_dirs):
        raise InputError(
            f"--crops {total} is fewer than the {len(data_dirs)} folders",
            "give every folder at least one crop",
        )
    sources = [
        TileDataset(root, crop, classes, "train", seed, augment=False, gsd=gsd)
        for root in data_dirs
    ]
    shares = allocate(total, [capacity(s) for s in sources])
    images, masks, source, records = [], [], [], []
    for number, (dataset, share) in enumerate(zip(sources, shares, strict=True)):
        for index in range(share):
            image, mask = dataset.unaugmented(index)
            images.append(((image.numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8))
            masks.append(mask.numpy().astype(np.uint8))
        source += [number] * share
        records.append(_record(dataset, share))
    metadata = {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "created_by": f"geochange {__version__}",
        "crop_px": crop,
        "gsd_m": gsd,
        "seed": seed,
        "image_filter": IMAGE_FILTER,
        "classes": "model indices 0-7 (OpenEarthMap order), 255 no data",
        "heldout": (
            f"never packed: the bottom-right {HELDOUT_SIZE}x{HELDOUT_SIZE} px of every "
            f"OpenEarthMap tile; elsewhere every {HELDOUT_EVERY}th file sorted by path (at "
            "least one of two or more)"
        ),
        "mixing": "each folder an equal share of the crops, up to about two per crop area of "
        "its training pixels; crops drawn uniformly",
        "sources": records,
    }
    partial = output.with_name(f".{output.name}.partial-{os.getpid()}")
    try:
        with partial.open("wb") as f:
            np.savez_compressed(
                f,
                images=encode_images(np.stack(images)),
                masks=np.stack(masks),
                source=np.asarray(source, np.uint16),
                metadata=np.asarray(json.dumps(metadata)),
            )
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    names = [Path(d).name for d in data_dirs]
    return PackResult(output, output.stat().st_size, dict(zip(names, shares, strict=True)))


def _record(dataset: TileDataset, share: int) -> dict:
    """A source's entry in the pack's metadata: ``split_info`` plus the files' hashes."""
    info = dataset.split_info()
    used = [path for p in dataset.pairs for path in (p.image, p.mask)]
    return {
        **{k: v for k, v in info.items() if k not in ("split", "crops")},
        "crops": share,
        "sha256": {str(path.relative_to(dataset.root)): file_sha256(path) for path in used},
    }
