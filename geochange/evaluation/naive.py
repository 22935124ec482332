"""The naive baseline that generated pairs must beat: t2 = t1 with each changed region filled by
texture of its new class cut from elsewhere, no diffusion.

Given the same t1 images and land-cover maps as a geochange dataset, it changes exactly the
pixels the geochange labels mark as changed, and nothing else, so a detector trained on it sees
the same change masks and differs only in how t2 was painted.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import find_objects, label
from scipy.signal import fftconvolve

from geochange.classes import (
    AGRICULTURE,
    BARELAND,
    BUILDING,
    DEVELOPED,
    NODATA,
    RANGELAND,
    ROAD,
    TREE,
)
from geochange.errors import InputError
from geochange.evaluation.detector import ChangePairs, read_pairs
from geochange.writing.folder import OutputFolder

MAX_PATCHES = 32
"""Patches tried per region before its last pixels are filled one donor pixel at a time."""
EXTRA_DONORS = 3
"""Other images of the dataset a pair may take texture from, besides its own t1."""
LOOKALIKES: dict[int, tuple[int, ...]] = {
    BARELAND: (RANGELAND, DEVELOPED),
    RANGELAND: (AGRICULTURE, BARELAND),
    DEVELOPED: (ROAD, BARELAND),
    ROAD: (DEVELOPED,),
    TREE: (RANGELAND, AGRICULTURE),
    AGRICULTURE: (RANGELAND, BARELAND),
    BUILDING: (DEVELOPED, ROAD),
}
"""Classes (model indices) whose texture stands in, in this order, for one no donor shows:
OpenEarthMap tiles have no bareland or agriculture, for instance."""


@dataclass
class Donor:
    """An image ((H, W, 3) uint8) and its land cover ((H, W)), to cut texture from."""

    image: np.ndarray
    classes: np.ndarray


@dataclass
class PasteCounts:
    """How the changed pixels were filled: by patches (shifted copies of a donor area of the
    new class) or, where no patch fitted, by single donor pixels of that class."""

    regions: int = 0
    patch_pixels: int = 0
    single_pixels: int = 0
    substituted_pixels: int = 0


def paste_changes(
    image: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    donors: Sequence[Donor],
    rng: np.random.Generator,
    counts: PasteCounts | None = None,
    ignore: int | None = None,
) -> np.ndarray:
    """t2 for one pair: ``image`` with every pixel where ``before != after`` replaced by a pixel
    of class ``after`` taken from a donor (``before`` is the land cover of ``image``).

    Each connected region of one new class is filled greedily: the donor position (any donor,
    any shift that keeps the region's box inside it) where the most still-unfilled region pixels
    land on that class is copied there, and again for the rest, up to ``MAX_PATCHES`` patches;
    pixels left over then take random single pixels of the class. Ties between positions are
    broken by ``rng``. The image's own t1 may be among the donors: its changed region never has
    the new class, so a region is never copied onto itself.

    A new class that no donor shows (e.g. agriculture in a dataset without farmland) takes the
    texture of a look-alike class (``LOOKALIKES``, for classes as model indices) or else of the
    class most donor pixels have, never one the region had before nor ``ignore`` (no data);
    such pixels are counted as substituted.
    """
    if image.shape[:2] != before.shape or before.shape != after.shape:
        raise ValueError(f"image {image.shape}, before {before.shape}, after {after.shape}")
    counts = counts if counts is not None else PasteCounts()
    result = image.copy()
    changed = before != after
    for new_class in np.unique(after[changed]):
        target = changed & (after == new_class)
        texture = new_class
        if not any((d.classes == new_class).any() for d in donors):
            old = set(np.unique(before[target]).tolist())
            texture = _substitute(donors, int(new_class), old, ignore)
            counts.substituted_pixels += int(target.sum())
        sources = [d for d in donors if (d.classes == texture).any()]
        masks = [(d.classes == texture).astype(np.float64) for d in sources]
        regions, _ = label(target)
        for number, box in enumerate(find_objects(regions), start=1):
            counts.regions += 1
            todo = regions[box] == number
            for _ in range(MAX_PATCHES):
                placed = _best_patch(todo, masks, rng)
                if placed is None:
                    break
                index, row, col = placed
                height, width = todo.shape
                window = (slice(row, row + height), slice(col, col + width))
                fill = todo & (masks[index][window] > 0)
                result[box][fill] = sources[index].image[window][fill]
                counts.patch_pixels += int(fill.sum())
                todo &= ~fill
                if not todo.any():
                    break
            if todo.any():
                counts.single_pixels += int(todo.sum())
                result[box][todo] = _single_pixels(sources, texture, int(todo.sum()), rng)
    return result


def naive_pairs(
    pairs: ChangePairs, seed: int = 0, extra_donors: int = EXTRA_DONORS, ignore: int | None = NODATA
) -> tuple[ChangePairs, PasteCounts]:
    """The naive twin of a dataset read in the ``second`` layout: the same names, t1 images and
    change masks, t2 pasted by ``paste_changes`` from the pair's own t1 and ``extra_donors``
    other t1 images of the dataset (drawn with the pair's own ``default_rng([seed, i])``, so the
    result does not depend on the order work is done in). ``ignore``: the land cover's no-data
    code, never used as a substitute texture."""
    if len(pairs.before_classes) != len(pairs):
        raise InputError(
            "the naive baseline needs the land cover before and after of each pair",
            "make the geochange pairs with --layout second (im1, im2, label1, label2)",
        )
    counts = PasteCounts()
    present = [set(np.unique(classes).tolist()) for classes in pairs.before_classes]
    pasted = []
    for i in range(len(pairs)):
        rng = np.random.default_rng([seed, i])
        others = [j for j in range(len(pairs)) if j != i]
        chosen = rng.choice(others, min(extra_donors, len(others)), replace=False) if others else []
        donors = [i, *(int(j) for j in chosen)]
        # A class no chosen donor has is looked for in the whole dataset, in a fixed order.
        missing = set(np.unique(pairs.after_classes[i][pairs.change[i]]).tolist())
        missing -= set().union(*(present[j] for j in donors))
        for j in others:
            if not missing:
                break
            if missing & present[j]:
                donors.append(j)
                missing -= present[j]
        pasted.append(
            paste_changes(
                pairs.before[i],
                pairs.before_classes[i],
                pairs.after_classes[i],
                [Donor(pairs.before[j], pairs.before_classes[j]) for j in donors],
                rng,
                counts,
                ignore,
            )
        )
    naive = ChangePairs(
        list(pairs.names),
        list(pairs.before),
        pasted,
        list(pairs.change),
        list(pairs.before_classes),
        list(pairs.after_classes),
    )
    return naive, counts


def read_geochange(
    root: str | Path, splits: Sequence[str] = ("train", "val", "test")
) -> ChangePairs:
    """The pairs of a ``geochange dataset --layout second`` folder (names ``split/file``), with
    the whole land cover before and after each pair as class indices (``NODATA`` 255).

    The SECOND labels hold classes only where they changed; the rest of the t1 land cover is
    read again from the source tile at the crop position ``pairs.csv`` records (the source
    folder named in ``dataset.json`` must still be there), and checked against the pair: the
    crop's image must equal ``im1`` and its classes ``label1`` where that is set.
    """
    from geochange.dataset import TileSource

    root = Path(root)
    fix = "give the folder written by geochange dataset --layout second"
    try:
        summary = json.loads((root / "dataset.json").read_text())
        with open(root / "pairs.csv", newline="") as stream:
            rows = {(r["split"], Path(r["name"]).stem): r for r in csv.DictReader(stream)}
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read the geochange dataset in {root} ({error})", fix) from error
    if summary.get("layout") != "second":
        raise InputError(f"{root} holds {summary.get('layout')!r} pairs, not 'second' ones", fix)
    source_root = Path(summary["source"]["root"])
    if not source_root.is_dir():
        raise InputError(
            f"the source folder {source_root} of {root} is gone; the t1 land cover is read there",
            "make it available at that path again",
        )
    source = TileSource(source_root, summary["source"]["classes"])
    tiles = {t.image.relative_to(source_root).as_posix(): i for i, t in enumerate(source.tiles)}
    size = int(summary["tile_size"])
    pairs = ChangePairs([], [], [], [], [], [])
    for split in splits:
        if not summary["splits"].get(split):
            continue
        found = read_pairs(root / split, "second")
        for i, name in enumerate(found.names):
            row = rows[(split, name)]
            rgb, _, before = source.read(
                tiles[row["source_image"]], int(row["row"]), int(row["col"]), size
            )
            label1, label2 = found.before_classes[i], found.after_classes[i]
            set1 = label1 > 0
            if not np.array_equal(rgb.transpose(1, 2, 0), found.before[i]) or not np.array_equal(
                before[set1] + 1, label1[set1]
            ):
                raise InputError(
                    f"pair {split}/{name} of {root} does not match its source crop in "
                    f"{row['source_image']}",
                    "use the source folder the pairs were made from, unchanged",
                )
            pairs.names.append(f"{split}/{name}")
            pairs.before.append(found.before[i])
            pairs.after.append(found.after[i])
            pairs.change.append(found.change[i])
            pairs.before_classes.append(before)
            pairs.after_classes.append(
                np.where(found.change[i], label2 - 1, before).astype(np.uint8)
            )
    return pairs


def write_levir(pairs: ChangePairs, folder: str | Path, overwrite: bool = False) -> Path:
    """Write ``pairs`` as one LEVIR-CD folder (``A``, ``B``, ``label`` PNGs, labels 0/255), to
    look at them or train other detectors on them; a ``/`` in a name becomes ``_``."""
    output = OutputFolder(folder, overwrite=overwrite)
    with output as partial:
        for part in ("A", "B", "label"):
            (partial / part).mkdir()
        for name, before, after, change in zip(
            pairs.names, pairs.before, pairs.after, pairs.change, strict=True
        ):
            file = name.replace("/", "_") + ".png"
            Image.fromarray(before).save(partial / "A" / file)
            Image.fromarray(after).save(partial / "B" / file)
            Image.fromarray(change.astype(np.uint8) * 255).save(partial / "label" / file)
    return output.path


def _best_patch(
    todo: np.ndarray, masks: list[np.ndarray], rng: np.random.Generator
) -> tuple[int, int, int] | None:
    """(donor, row, col) of the shift that puts the most ``todo`` pixels on the class, or None
    when no shift puts any there."""
    kernel = todo[::-1, ::-1].astype(np.float64)
    best, candidates = 0.5, []
    for index, mask in enumerate(masks):
        if mask.shape[0] < todo.shape[0] or mask.shape[1] < todo.shape[1]:
            continue
        hits = np.rint(fftconvolve(mask, kernel, mode="valid"))
        top = hits.max()
        if top > best:
            best, candidates = top, []
        if top == best:
            candidates.append((index, np.flatnonzero(hits == top), hits.shape[1]))
    if not candidates:
        return None
    ends = np.cumsum([len(found) for _, found, _ in candidates])
    pick = int(rng.integers(ends[-1]))
    which = int(np.searchsorted(ends, pick, side="right"))
    index, found, width = candidates[which]
    row, col = divmod(int(found[pick - (ends[which - 1] if which else 0)]), width)
    return index, row, col


def _substitute(donors: Sequence[Donor], new_class: int, old: set[int], ignore: int | None) -> int:
    """The stand-in texture for a class no donor shows: the first of its ``LOOKALIKES`` that a
    donor has, else the class with the most donor pixels; never an ``old`` class or ``ignore``."""
    found: dict[int, int] = {}
    for donor in donors:
        values, sizes = np.unique(donor.classes, return_counts=True)
        for value, size in zip(values.tolist(), sizes.tolist(), strict=True):
            found[value] = found.get(value, 0) + size
    choices = {v: n for v, n in found.items() if v not in old and v != ignore}
    for lookalike in LOOKALIKES.get(new_class, ()):
        if lookalike in choices:
            return lookalike
    if not choices:
        raise InputError(
            "a change needs texture, but the donor images show no class other than the old one",
            "make the pairs from images with more than one land-cover class",
        )
    return max(sorted(choices), key=choices.__getitem__)


def _single_pixels(
    donors: Sequence[Donor], new_class: int, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` random donor pixels (count, 3) of ``new_class``."""
    pool = np.concatenate([d.image[d.classes == new_class] for d in donors])
    return pool[rng.integers(0, len(pool), count)]
