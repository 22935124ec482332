"""How near the exemplar bank's texture comes to the colour a class has in a real image.

For random 256² crops of labelled source folders, and each class that covers at least
``MIN_PIXELS`` of a crop: that class's pixels are hidden (labelled unknown before, the class
after, as if it had just appeared there), ``exemplar_fill`` fills them from the bank of a model
in the colours of the rest of the crop, and the mean colour of the fill is compared with the
class's real mean colour in the crop. Prints the mean absolute error per band (grey levels),
per source and per class, and its 90th percentile; and how far the fill's ``texture`` (log of
its fine detail's spread over its brightness) is from the real land's. Crops of sources the
bank was cut from (default model: all five labelled sources, held-out regions excepted)
flatter the figure; with
``--leave-out PACK`` each source is instead filled from a bank built (as ``geochange train
exemplars`` builds it) from the pack's crops of the other sources, as an image of a place the
model never saw is (a class only Dubai shows, bare land, is then missing from Dubai's bank).

    .venv/bin/python benchmarks/bank_colours.py ../shared/data/{openearthmap,dubai,loveda,flair}
        [--model default] [--crops 40] [--seed 0] [--leave-out build/pack.npz]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from geochange.classes import CLASS_NAMES, NODATA, NUM_CLASSES
from geochange.dataset import TileSource
from geochange.model.bank import ExemplarBank, load_bank
from geochange.painting import resolve_model
from geochange.sampling import exemplar_fill
from geochange.training.bank import build_bank
from geochange.training.packed import PackedData

SIZE = 256
MIN_PIXELS = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", help="labelled source folders (as for dataset)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--crops", type=int, default=40, help="crops per source (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--leave-out",
        metavar="PACK",
        help="fill each source from a bank of PACK's crops of the other sources",
    )
    args = parser.parse_args()
    bank = load_bank(resolve_model(args.model))
    if bank is None:
        parser.error(f"model {args.model} has no exemplar bank")
    pack = None if args.leave_out is None else PackedData(args.leave_out, augment=False)
    rng = np.random.default_rng(args.seed)
    errors: list[tuple[str, int, float]] = []
    texture_errors: list[tuple[int, float]] = []
    for folder in args.sources:
        if pack is not None:
            bank = _bank_without(pack, folder)
        source = TileSource(folder)
        weights = source.weights(SIZE)
        for _ in range(args.crops):
            tile = int(rng.choice(len(weights), p=weights))
            found = source.tiles[tile]
            row = int(rng.integers(0, found.height - SIZE + 1))
            col = int(rng.integers(0, found.width - SIZE + 1))
            rgb, valid, classes = source.read(tile, row, col, SIZE)
            scene = np.where(valid, classes, NODATA)
            for cls in range(NUM_CLASSES):
                hidden = scene == cls
                if hidden.sum() < MIN_PIXELS or not ((scene != cls) & (scene != NODATA)).any():
                    continue
                before = np.where(hidden, NODATA, scene)
                after = np.where(hidden, cls, before)
                filled, where = exemplar_fill(rgb, valid, before, after, rng, bank)
                if not where[hidden].any():
                    continue
                pixels = hidden & where
                error = np.abs(
                    filled[:, pixels].mean(axis=1) - rgb[:, pixels].astype(float).mean(axis=1)
                ).mean()
                errors.append((folder, cls, float(error)))
                busy, real = texture(filled, pixels), texture(rgb, pixels)
                if busy is not None and real is not None:
                    texture_errors.append((cls, busy - real))
    print("mean absolute error of a hidden class's mean colour, grey levels per band")
    for folder in args.sources:
        found = [e for source, _, e in errors if source == folder]
        print(f"  {folder}: {np.mean(found):.1f} ({len(found)} classes in crops)")
    values = np.array([e for _, _, e in errors])
    print(f"  all: {values.mean():.1f}, 90th percentile {np.percentile(values, 90):.1f}")
    for cls in range(NUM_CLASSES):
        found = [e for _, c, e in errors if c == cls]
        if found:
            print(f"  {CLASS_NAMES[cls]}: {np.mean(found):.1f} ({len(found)})")
    print("texture of the fill minus the real land's (log ratio): mean absolute, mean")
    off = np.array([e for _, e in texture_errors])
    print(f"  all: {np.abs(off).mean():.2f}, {off.mean():+.2f} ({len(off)})")
    for cls in range(NUM_CLASSES):
        found = np.array([e for c, e in texture_errors if c == cls])
        if len(found):
            print(f"  {CLASS_NAMES[cls]}: {np.abs(found).mean():.2f}, {found.mean():+.2f}")


def texture(rgb: np.ndarray, where: np.ndarray) -> float | None:
    """How busy the land ``where`` is in ``rgb`` (3, h, w): the log of the spread of its
    brightness about a local mean (sigma 2 px) over its mean brightness, 3 px in from its edge;
    None with under ``MIN_PIXELS`` / 10 pixels there."""
    inner = ndimage.binary_erosion(where, iterations=3)
    if inner.sum() < MIN_PIXELS // 10:
        return None
    brightness = rgb.astype(np.float32).mean(axis=0)
    detail = brightness - ndimage.gaussian_filter(brightness, 2.0)
    return float(np.log(detail[inner].std() + 1.0) - np.log(brightness[inner].mean() + 1.0))


class _Others:
    """The crops of a pack that did not come from one of its sources (``build_bank``'s view)."""

    def __init__(self, pack: PackedData, left_out: int) -> None:
        self.pack = pack
        self.indices = np.flatnonzero(pack.source != left_out)

    def __len__(self) -> int:
        return len(self.indices)

    def unaugmented(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pack.unaugmented(int(self.indices[index]))


def _bank_without(pack: PackedData, folder: str) -> ExemplarBank:
    """The bank built from ``pack`` without the crops of source ``folder`` (matched by name)."""
    roots = [Path(source["root"]).name for source in pack.metadata["sources"]]
    left_out = roots.index(Path(folder).name) if Path(folder).name in roots else -1
    return build_bank(_Others(pack, left_out))


if __name__ == "__main__":
    main()
