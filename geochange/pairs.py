"""Change-detection pairs from arrays: events on a crop's mask, t2 painted from its image.

A pair is a crop of a real image and its mask (t1); the change events edit the mask into the t2
land cover and the painter paints t2 from the image with the ChangeAnywhere rule; the pair's
files are PNGs in the LEVIR-CD or SECOND layout. Everything here works on arrays and imports no
GIS package, so pairs can be made where only the model's stack is installed (a GPU machine);
reading the crops from georeferenced tiles is ``geochange.dataset``'s.

Every pair's randomness (events, noise, acquisition) comes from ``(seed, pair index)``.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from geochange.acquisition import Acquisition, apply_acquisition
from geochange.classes import NODATA, NUM_CLASSES, PALETTE
from geochange.events.base import Event, EventWindow, RegionStats
from geochange.events.stats import measure_buildings
from geochange.painting import BlockJob, Painter, PainterSpec, built, paint_task, torch_threads
from geochange.plan import Block
from geochange.sampling.lockstep import Lockstep, Member
from geochange.seeds import ACQUISITION, child_seed

LAYOUTS: dict[str, tuple[str, ...]] = {
    "levir": ("A", "B", "label"),
    "second": ("im1", "im2", "label1", "label2"),
}
"""The folders of one split in each layout: t1 image, t2 image, then the labels."""
SPLIT_CYCLE = ("train", "test", "train", "val", "train", "train", "test", "train", "train", "train")
"""Split of pair i is ``SPLIT_CYCLE[i % 10]``: 70/10/20 as LEVIR-CD, every split present from
four pairs on, and a pair's split (and file name) does not depend on ``--pairs``."""
SPLITS = ("train", "val", "test")
PAIR_BATCH = {"cpu": 1, "cuda": 64}
"""Pairs painted together by default. On 2 CPU cores batches gave no speed (the UNet's time
per pair fell 4 %, the autoencoder's rose 20-40 % at batch 4), so one at a time; a GPU needs
large batches (issue 16: 51-74 pairs/s of model alone at batch 16, 566 at 256)."""
DATASET_STEPS = 10
"""Denoising steps of a pair (4 of them run, as sampling starts 60 % of the way in): half of
``synth``'s 20. With 10, `geochange evaluate`'s change-realism and generated-image figures were
those of 20 (2026-12-05, model card), and pairs were made 30-45 % faster."""
PNG_LEVEL = 1
"""zlib level of the PNGs: 6 (Pillow's default) took five times as long for 5 % smaller files."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECOND_PALETTE = bytes([0, 0, 0, *(v for rgb in PALETTE for v in rgb)]).ljust(768, b"\0")
"""SECOND labels: 0 no change (black; OpenEarthMap's road is white), 1-8 the OpenEarthMap codes
in their colours; the rest of the 256 entries black, so the PNG stays 8-bit."""


def split_of(index: int) -> tuple[str, int]:
    """Pair ``index``'s split and its number (from 1) among that split's pairs."""
    cycle = len(SPLIT_CYCLE)
    split = SPLIT_CYCLE[index % cycle]
    before = SPLIT_CYCLE[: index % cycle].count(split)
    return split, (index // cycle) * SPLIT_CYCLE.count(split) + before + 1


def file_name(layout: str, index: int) -> tuple[str, str]:
    """Split and file name of pair ``index``: ``train_7.png`` (LEVIR-CD), ``00007.png`` (SECOND)."""
    split, number = split_of(index)
    return split, f"{split}_{number}.png" if layout == "levir" else f"{number:05d}.png"


def label_arrays(layout: str, t1: np.ndarray, t2: np.ndarray) -> list[np.ndarray]:
    """The label images of a pair from its t1/t2 class indices.

    LEVIR-CD: one binary map, 255 where the class changed. SECOND: the t1 and t2 classes as
    OpenEarthMap codes (index + 1) where the class changed, 0 elsewhere.
    """
    changed = t1 != t2
    if layout == "levir":
        return [changed.astype(np.uint8) * 255]
    return [np.where(changed, c + 1, 0).astype(np.uint8) for c in (t1, t2)]


@dataclass
class PairJob:
    """One pair's crop, read by the driver so tasks need no files."""

    index: int
    tile: int
    row: int
    col: int
    rgb: np.ndarray
    valid: np.ndarray
    t1: np.ndarray
    pixel_size_m: tuple[float, float]


@dataclass
class PairResult:
    job: PairJob
    t2: np.ndarray
    event: np.ndarray
    """Event code per pixel (0 unchanged, k for the k-th event)."""
    image: np.ndarray
    """The painted t2 image, RGB uint8 (3, s, s)."""
    model_s: float
    files: dict[str, bytes]
    """The pair's PNG files by path in the dataset (encoded in the task, so that a driver
    writing for many workers only writes bytes)."""


@dataclass(frozen=True)
class PairMaker:
    """What every task shares: the events, the seed, the painter (or how to build it), the
    acquisition differences of t2 and the layout of the files."""

    events: tuple[Event, ...]
    seed: int
    painter: Painter | PainterSpec
    acquisition: Acquisition
    layout: str = "levir"


def simulate_pair(
    events: Sequence[Event],
    t1: np.ndarray,
    pixel_size_m: tuple[float, float],
    seed: int,
    index: int,
) -> tuple[np.ndarray, np.ndarray]:
    """t2 classes and event codes: the events on one crop, which is their whole region.

    Count parameters (``building_add:count=3``) are per pair; building sizes are drawn from the
    crop's own buildings.
    """
    whole = (slice(None), slice(None))
    stats = RegionStats(
        building_sizes_m=measure_buildings(t1, whole, pixel_size_m),
        class_pixels=np.bincount(t1[t1 != NODATA], minlength=NUM_CLASSES),
    )
    window = EventWindow(t1, t1.copy(), np.zeros_like(t1), whole, pixel_size_m, stats)
    for k, event in enumerate(events):
        count = int(event.values[event.count_param]) if event.count_param else 0
        event.apply(window, k + 1, np.random.default_rng([seed, index, 1, k]), count)
    return window.t2, window.event


def make_pair(maker: PairMaker, job: PairJob) -> PairResult:
    """The events and the t2 image of one pair (here, or on a Dask worker)."""
    t2, event = simulate_pair(maker.events, job.t1, job.pixel_size_m, maker.seed, job.index)
    # The pair index as block row seeds the noise, so every pair gets its own.
    block = Block.alone(job.index, *job.t1.shape)
    unknown = np.zeros(job.t1.shape, bool)
    gsd = float(np.sqrt(np.prod(job.pixel_size_m)))
    paint = BlockJob(block, [job.t1, t2], {}, unknown, (job.rgb, job.valid), gsd)
    images, _, model_s, _ = paint_task(maker.painter, paint)
    after = images[1]
    if not maker.acquisition.is_identity():
        seed = child_seed(maker.seed, job.index, ACQUISITION)
        after = apply_acquisition(after, t2, maker.acquisition, seed, (0, 0), gsd)
    labels = label_arrays(maker.layout, job.t1, t2)
    files = encode_pair(maker.layout, job.index, [job.rgb, after, *labels])
    return PairResult(job, t2, event, after, model_s, files)


def make_pairs(maker: PairMaker, jobs: Sequence[PairJob]) -> list[PairResult]:
    """``make_pair`` for each job; more than one are painted side by side with their model
    calls batched (``Lockstep``): the pixels then depend on which pairs share the batch, so
    callers batch fixed groups of pair indices. Each pair is charged an equal share of the
    group's seconds in the model."""
    if len(jobs) == 1:
        return [make_pair(maker, jobs[0])]
    painter = built(maker.painter)
    lockstep: Lockstep[PairResult] = Lockstep(painter.model, painter.inference)

    def painting(job: PairJob) -> Callable[[Member], PairResult]:
        return lambda member: make_pair(replace(maker, painter=painter.with_model(member)), job)

    with torch_threads(painter.options.threads):
        results = lockstep.run([painting(job) for job in jobs])
    for result in results:
        result.model_s = lockstep.model_s / len(jobs)
    return results


class ThreadMakers:
    """``make_pairs`` safe to call from several threads of one process: each thread paints with
    a painter of its own, the first with ``maker``'s, the others with one built from ``spec`` on
    their first call. Threads cannot share a model, which holds the mask features of a UNet call
    while it runs. With one torch thread per painting, a pair has the same bytes in any thread
    (2 threads on 2 cores: 5.07 pairs/s against 2.84 in one, docs/benchmarks.md)."""

    def __init__(self, maker: PairMaker, spec: PainterSpec) -> None:
        self.maker = maker
        self.spec = spec
        self._claimed = False
        self._lock = threading.Lock()
        self._local = threading.local()

    def __call__(self, jobs: Sequence[PairJob]) -> list[PairResult]:
        maker = getattr(self._local, "maker", None)
        if maker is None:
            with self._lock:
                first, self._claimed = not self._claimed, True
            maker = self.maker if first else replace(self.maker, painter=self.spec.build())
            self._local.maker = maker
        return make_pairs(maker, jobs)


def encode_pair(layout: str, index: int, arrays: Sequence[np.ndarray]) -> dict[str, bytes]:
    """PNG bytes of pair ``index``'s t1 image, t2 image and labels, by path in the dataset."""
    split, name = file_name(layout, index)
    files = {}
    for sub, array in zip(LAYOUTS[layout], arrays, strict=True):
        paletted = layout == "second" and sub.startswith("label")
        files[f"{split}/{sub}/{name}"] = png_bytes(array, SECOND_PALETTE if paletted else None)
    return files


def write_pair(folder: Path, layout: str, result: PairResult, events: int) -> dict:
    """The pair's files under temporary names, renamed into place; its record for the log."""
    job = result.job
    written, files = [], {}
    for path, data in result.files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.parent / f".{target.name}.tmp"
        with open(temporary, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        written.append((temporary, target))
        files[path] = hashlib.sha256(data).hexdigest()
    for temporary, target in written:
        os.replace(temporary, target)
    split, name = file_name(layout, job.index)
    pixels = np.bincount(result.event.ravel(), minlength=events + 1)
    return {
        "index": job.index,
        "split": split,
        "name": name,
        "tile": job.tile,
        "row": job.row,
        "col": job.col,
        "labelled_px": int(np.sum(job.valid & (job.t1 != NODATA))),
        "event_px": [int(p) for p in pixels[1:]],
        "files": files,
    }


def png_bytes(array: np.ndarray, palette: bytes | None) -> bytes:
    """PNG bytes of RGB uint8 (3, h, w), or of a 2-D uint8 label: grey, or paletted with
    ``palette`` (RGB triples).

    Written here rather than by Pillow: every row filtered by "up" (its difference to the row
    above, one numpy subtraction for the whole image) and compressed by zlib at level 1. A
    256² RGB crop of OpenEarthMap took 2.4 ms and 102 kB, against 4.5 ms and 103 kB from
    Pillow at the same level, which tries five filters on every row; PNG encoding was the
    largest CPU cost of a pair outside the model. No time stamps: equal arrays, equal files.
    """
    rgb = array.ndim == 3 and array.shape[0] == 3
    if array.dtype != np.uint8 or not (rgb or array.ndim == 2):
        raise ValueError(f"a PNG takes uint8 (3, h, w) or (h, w), got {array.dtype} {array.shape}")
    height, width = array.shape[-2:]
    if rgb:
        rows, colour = array.transpose(1, 2, 0).reshape(height, 3 * width), 2
    else:
        rows, colour = array, 0 if palette is None else 3
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2  # the "up" filter
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as PNG wants
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header)]
    if colour == 3:
        chunks.append(_png_chunk(b"PLTE", palette))
    chunks.append(_png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), PNG_LEVEL)))
    chunks.append(_png_chunk(b"IEND", b""))
    return PNG_SIGNATURE + b"".join(chunks)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk: length, type, data and the CRC of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
