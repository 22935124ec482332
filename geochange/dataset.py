"""``dataset``: change-detection training pairs from real image + mask tiles (the paper's use).

Each pair is a crop of a source tile: t1 is the real image and its mask the t1 land cover;
change events edit the mask into the t2 land cover, and the diffusion model paints t2 from the
real image's latents with the ChangeAnywhere rule. Pairs are written in the LEVIR-CD or the
SECOND layout.

Every pair's randomness (crop, events, noise) comes from ``SeedSequence([seed, pair index,
...])`` and the painter's torch thread count is fixed (``geochange dataset`` uses one), so a
pair is the same bytes whatever order pairs are made in and whichever worker makes it (on the
same software and CPU type).
The driver reads the crops and writes every file (one writer); tasks run the events and the
model. Files go into a hidden ``.OUT.partial`` folder under temporary names, renamed into place;
a pair is logged done only once all its files are there. A run stopped at any moment (Ctrl-C,
SIGTERM, even SIGKILL) keeps the partial folder and its log, ``resume`` goes on from it, and the
folder is renamed to ``OUT`` when the last pair is written.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from rasterio.enums import ColorInterp
from rasterio.io import DatasetReader
from rasterio.windows import Window

from geochange.classes import (
    CLASS_NAMES,
    NODATA,
    PALETTE,
    ClassScheme,
    load_scheme,
    unknown_values_error,
)
from geochange.distributed import Scheduler, available_cores
from geochange.errors import InputError
from geochange.events import Event, parse_events
from geochange.grid import Grid, open_raster
from geochange.hashing import file_sha256
from geochange.manifest import run_key
from geochange.model import pick_device
from geochange.painting import Painter, SamplingOptions, open_painter, torch_threads
from geochange.pairs import (
    DATASET_STEPS,
    LAYOUTS,
    PAIR_BATCH,
    SPLITS,
    PairJob,
    PairMaker,
    ThreadMakers,
    make_pairs,
    write_pair,
)
from geochange.report import Reporter
from geochange.training.data import DEFAULT_SCHEMES, LAYOUT_GSD, find_pairs
from geochange.versions import versions
from geochange.writing.folder import OutputFolder

DEFAULT_GSD = 0.5
"""Pixel size in metres assumed for source tiles without georeferencing."""
MIN_LABELLED = 0.5
"""A crop is redrawn (up to ``CROP_ATTEMPTS`` times) while less than this share is labelled."""
CROP_ATTEMPTS = 10
LOG, PARAMS = "pairs.jsonl", "parameters.json"
"""Kept in the partial folder only: the pairs done so far and what they were made with."""


@dataclass(frozen=True)
class SourceTile:
    image: Path
    mask: Path
    height: int
    width: int
    pixel_size_m: tuple[float, float]


class TileSource:
    """The image + mask tiles of a folder (any layout ``find_pairs`` knows), read crop by crop.

    Images must be RGB uint8 (they are copied into the pairs byte for byte); a tile without
    georeferencing is taken to have pixels of ``gsd`` metres (default: its layout's, as LoveDA's
    0.3 m, else ``DEFAULT_GSD``).
    """

    def __init__(
        self, root: str | Path, classes: str | None = None, gsd: float | None = None
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"source folder {self.root} does not exist")
        if gsd is not None and not gsd > 0:
            raise InputError(f"--gsd must be a positive number of metres, not {gsd}")
        self.layout, files = find_pairs(self.root)
        gsd = gsd or LAYOUT_GSD.get(self.layout, DEFAULT_GSD)
        self.scheme: ClassScheme = load_scheme(classes or DEFAULT_SCHEMES[self.layout])
        self.tiles = [self._open(image, mask, gsd) for image, mask in files]

    def _open(self, image: Path, mask: Path, gsd: float) -> SourceTile:
        with open_raster(image) as img, open_raster(mask) as lab:
            if img.count < 3 or img.dtypes[0] != "uint8":
                raise InputError(
                    f"source image {image} must be RGB uint8 (it has {img.count} band(s) of "
                    f"{img.dtypes[0]})",
                    "convert it, e.g. gdal_translate -ot Byte -scale -b 1 -b 2 -b 3 IN OUT",
                )
            if img.shape != lab.shape:
                raise InputError(
                    f"source image {image} is {img.width}x{img.height} px but its mask {mask} "
                    f"is {lab.width}x{lab.height} px",
                    "give each image a mask of the same size",
                )
            size = (gsd, gsd)
            if img.crs:
                size = Grid(img.crs, img.transform, img.width, img.height).pixel_size_m()
            return SourceTile(image, mask, img.height, img.width, size)

    def weights(self, size: int) -> np.ndarray:
        """Each tile's chance to be cropped: its share of the crop positions of ``size`` px."""
        counts = np.array(
            [max(t.height - size + 1, 0) * max(t.width - size + 1, 0) for t in self.tiles], float
        )
        if not counts.sum():
            raise InputError(
                f"no source tile in {self.root} is at least {size}x{size} px",
                "choose a smaller --tile-size",
            )
        return counts / counts.sum()

    def read(self, tile: int, row: int, col: int, size: int) -> tuple[np.ndarray, ...]:
        """One crop: RGB uint8 (3, s, s), where the image is valid, and class indices."""
        found = self.tiles[tile]
        window = Window(col, row, size, size)
        with open_raster(found.image) as ds:
            rgb = ds.read([1, 2, 3], window=window)
            valid = ds.read_masks(1, window=window) > 0
        with open_raster(found.mask) as ds:
            classes, unknown = self.scheme.classify(_mask_values(ds, window, self.scheme))
        if unknown:
            raise unknown_values_error(self.scheme, unknown)
        return rgb, valid, classes

    def describe(self) -> dict:
        """What ``dataset.json`` and the resume check record: files, hashes, class scheme."""
        return {
            "layout": self.layout,
            "classes": self.scheme.name,
            "files": [
                {
                    "image": t.image.relative_to(self.root).as_posix(),
                    "mask": t.mask.relative_to(self.root).as_posix(),
                    "image_sha256": file_sha256(t.image),
                    "mask_sha256": file_sha256(t.mask),
                    "pixel_size_m": [round(s, 4) for s in t.pixel_size_m],
                }
                for t in self.tiles
            ],
        }


def _mask_values(ds: DatasetReader, window: Window, scheme: ClassScheme) -> np.ndarray:
    """A mask window as the scheme reads it: one band of codes, or RGB (palettes expanded)."""
    if scheme.colours is None:
        return ds.read(1, window=window)
    if ds.count == 1 and ds.colorinterp[0] == ColorInterp.palette:
        lookup = np.zeros((3, 256), np.uint8)
        for value, rgba in ds.colormap(1).items():
            lookup[:, value] = rgba[:3]
        return lookup[:, ds.read(1, window=window)]
    return ds.read([1, 2, 3], window=window)


@dataclass
class DatasetResult:
    output: Path
    summary: dict


def make_dataset(
    source: str | Path | TileSource,
    output: str | Path,
    *,
    pairs: int,
    events: str | Sequence[Event],
    model: str | Path = "default",
    options: SamplingOptions | None = None,
    seed: int = 0,
    device: str = "auto",
    classes: str | None = None,
    gsd: float | None = None,
    layout: str = "levir",
    batch_size: int | None = None,
    overwrite: bool = False,
    resume: bool = False,
    scheduler: Scheduler | None = None,
    reporter: Reporter | None = None,
) -> DatasetResult:
    """Write ``pairs`` pairs of ``options.tile_size`` px cut from the tiles of folder
    ``source`` (or a ``TileSource`` already opened) into folder ``output``: what ``geochange
    dataset`` runs.

    ``events`` is a spec (``"building_add:count=3"``) or parsed events; ``model`` is
    ``default`` or a model folder; ``classes`` and ``gsd`` say how to read the masks and tiles
    without georeferencing. ``batch_size`` pairs are painted together, their model calls
    batched (default by device: ``PAIR_BATCH``). Each pair is painted by one torch thread: the
    model's float sums depend on the thread count, and with it fixed a pair has the same bytes
    here and on any Dask worker.
    """
    parsed = parse_events(events) if isinstance(events, str) else list(events)
    tiles = source if isinstance(source, TileSource) else TileSource(source, classes, gsd)
    batch_size = batch_size or PAIR_BATCH[pick_device(device).type]
    options = options or SamplingOptions(steps=DATASET_STEPS)
    options = replace(options, overlap=0, batch_size=batch_size, threads=1)
    painter = open_painter(str(model), options, seed, device)
    return write_pairs(
        tiles,
        output,
        pairs,
        painter,
        parsed,
        layout=layout,
        overwrite=overwrite,
        resume=resume,
        scheduler=scheduler,
        reporter=reporter,
    )


def write_pairs(
    source: TileSource,
    output: str | Path,
    pairs: int,
    painter: Painter,
    events: Sequence[Event],
    layout: str = "levir",
    overwrite: bool = False,
    resume: bool = False,
    scheduler: Scheduler | None = None,
    reporter: Reporter | None = None,
) -> DatasetResult:
    """Write ``pairs`` pairs of ``painter.options.tile_size`` px into folder ``output``.

    The painter's seed seeds the pairs too. Pairs are made on ``scheduler`` (default: here, in
    ``pair_threads`` threads) in groups of ``painter.options.batch_size`` consecutive indices,
    painted together, and written in index order; ``resume`` goes on from an interrupted run
    with the same parameters, painting again the whole group of a missing pair (the group
    decides its pixels) but writing only the missing ones.
    """
    if layout not in LAYOUTS:
        raise InputError(f"--layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if pairs < 1:
        raise InputError("--pairs must be at least 1")
    if not events:
        raise InputError("no --events given", "add e.g. --events building_add:count=3")
    scheduler = scheduler or Scheduler()
    reporter = reporter or Reporter()
    if scheduler.distributed and painter.spec is None:
        raise InputError("this painter has no model spec for Dask workers to load")
    remedy = "the exemplars from its bank are scaled to the tiles' pixels, its own texture is not"
    warnings = (
        painter.model.config.gsd_warning(tile.pixel_size_m, "a source tile", remedy)
        for tile in source.tiles
    )
    for warning in dict.fromkeys(w for w in warnings if w):  # each once, in the tiles' order
        reporter.warning(warning)
    size, seed = painter.options.tile_size, painter.seed
    weights = source.weights(size)
    parameters = {
        "layout": layout,
        "pairs": pairs,
        "tile_size": size,
        "seed": seed,
        "events": [{"name": e.name, **e.values} for e in events],
        "source": source.describe(),
        "model": {**painter.fingerprint(), "device": str(painter.device)},
    }
    folder = OutputFolder(output, overwrite, resume, [source.root], keep_unfinished=True)
    with folder as partial_dir:
        pair_log = PairLog(partial_dir)
        done = pair_log.start(parameters)
        if pair_log.redone:
            reporter.warning(
                f"{pair_log.redone} finished pairs of the unfinished run were lost or damaged "
                "since (their files no longer match); they are made again"
            )
        todo = [i for i in range(pairs) if i not in done]
        batch = painter.options.batch_size
        every_group = (range(start, min(start + batch, pairs)) for start in range(0, pairs, batch))
        groups = [group for group in every_group if any(i not in done for i in group)]
        maker = PairMaker(
            tuple(events),
            seed,
            painter.spec if scheduler.distributed else painter,
            painter.options.acquisition,
            layout,
        )
        jobs = ([_job(source, weights, size, seed, index) for index in group] for group in groups)
        threads = pair_threads(painter, scheduler)
        make = ThreadMakers(maker, painter.spec) if threads > 1 else partial(make_pairs, maker)
        reporter.stage("pairs", pairs)
        reporter.advance(len(done))
        model_s = 0.0
        tic = time.perf_counter()
        try:
            with torch_threads(painter.options.threads):  # set once: the threads share it
                made = scheduler.imap(make, jobs, threads=threads)
                for results in made:
                    for result in results:
                        if result.job.index in done:  # painted again only for its group
                            continue
                        record = write_pair(partial_dir, layout, result, len(events))
                        done[result.job.index] = record
                        pair_log.log(record)
                        model_s += result.model_s
                        reporter.advance()
        except BaseException:
            reporter.close()
            reporter.warning(
                f"stopped: {len(done)} of {pairs} pairs are kept in {partial_dir}; run the same "
                "command with --resume to go on"
            )
            raise
        seconds = time.perf_counter() - tic
        reporter.close()
        records = [done[i] for i in range(pairs)]
        summary = _summary(parameters, source, painter, records, events, layout)
        summary["timing"] = {
            "pairs_made": len(todo),
            "pairs_resumed": pairs - len(todo),
            "seconds": round(seconds, 3),
            "pairs_per_second": round(len(todo) / seconds, 4) if seconds > 0 else None,
            "model_s": round(model_s, 3),
            "scheduler": scheduler.describe(),
            "threads": threads,
        }
        _write_pairs_csv(partial_dir / "pairs.csv", records, source, events)
        (partial_dir / "dataset.json").write_text(json.dumps(summary, indent=2) + "\n")
        pair_log.close()
    return DatasetResult(folder.path, summary)


def pair_threads(painter: Painter, scheduler: Scheduler) -> int:
    """Threads of this process that make pairs at once: one per core on a CPU, each painting
    with one torch thread and a model of its own (so with a model spec to build it from);
    one on a GPU, which batches pairs instead, and where Dask workers make them."""
    if scheduler.distributed or painter.spec is None or painter.device.type != "cpu":
        return 1
    return available_cores()


def _job(source: TileSource, weights: np.ndarray, size: int, seed: int, index: int) -> PairJob:
    """Pair ``index``'s crop: a tile drawn by its share of crop positions, a position in it,
    redrawn while less than ``MIN_LABELLED`` of it is labelled (the best one kept)."""
    rng = np.random.default_rng([seed, index, 0])
    best: PairJob | None = None
    for _ in range(CROP_ATTEMPTS):
        tile = int(rng.choice(len(weights), p=weights))
        found = source.tiles[tile]
        row = int(rng.integers(0, found.height - size + 1))
        col = int(rng.integers(0, found.width - size + 1))
        rgb, valid, t1 = source.read(tile, row, col, size)
        job = PairJob(index, tile, row, col, rgb, valid, t1, found.pixel_size_m)
        labelled = np.mean(valid & (t1 != NODATA))
        if best is None or labelled > np.mean(best.valid & (best.t1 != NODATA)):
            best = job
        if labelled >= MIN_LABELLED:
            break
    return best


def _summary(
    parameters: dict,
    source: TileSource,
    painter: Painter,
    records: list[dict],
    events: Sequence[Event],
    layout: str,
) -> dict:
    """``dataset.json`` but for its timing: parameters, provenance, counts."""
    import diffusers
    import PIL

    size = parameters["tile_size"]
    changed = [sum(r["event_px"]) for r in records]
    unchanged = sum(c == 0 for c in changed)
    by_event = [
        {
            "event": event.name,
            "pairs": sum(r["event_px"][k] > 0 for r in records),
            "pixels": sum(r["event_px"][k] for r in records),
        }
        for k, event in enumerate(events)
    ]
    codes = {str(i + 1): name for i, name in enumerate(CLASS_NAMES)}
    labels = (
        {"label": "uint8 grey PNG: 0 unchanged, 255 changed (t1 class != t2 class)"}
        if layout == "levir"
        else {
            "label1, label2": "uint8 paletted PNG: 0 no change, else the OpenEarthMap code "
            "(class index + 1) of t1 (label1) or t2 (label2) where the class changed",
            "codes": codes,
            "palette": {"0": [0, 0, 0], **{str(i + 1): list(c) for i, c in enumerate(PALETTE)}},
        }
    )
    return {
        "layout": layout,
        "folders": {s: [f"{s}/{sub}" for sub in LAYOUTS[layout]] for s in SPLITS},
        "labels": labels,
        "pairs": parameters["pairs"],
        "tile_size": size,
        "seed": parameters["seed"],
        "events": parameters["events"],
        "event_counts": "count parameters are per pair",
        "source": {"root": str(source.root.absolute()), **parameters["source"]},
        "model": painter.model_info,
        "sampling": {**painter.options.to_dict(), "device": str(painter.device)},
        "splits": {s: sum(r["split"] == s for r in records) for s in SPLITS},
        "changes": {
            "unchanged_pairs": unchanged,
            "unchanged_share": round(unchanged / len(records), 4),
            "changed_pixel_share": round(sum(changed) / (len(records) * size * size), 6),
            "by_event": by_event,
        },
        "versions": {
            **versions(),
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "pillow": PIL.__version__,
        },
    }


def _write_pairs_csv(
    path: Path, records: list[dict], source: TileSource, events: Sequence[Event]
) -> None:
    """One row per pair: where it was cropped from and the pixels each event changed."""
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        columns = ["split", "name", "source_image", "row", "col", "labelled_px"]
        writer.writerow(columns + [f"{e.name}_px" for e in events])
        for r in records:
            image = source.tiles[r["tile"]].image.relative_to(source.root).as_posix()
            writer.writerow(
                [r["split"], r["name"], image, r["row"], r["col"], r["labelled_px"], *r["event_px"]]
            )


class PairLog:
    """The finished pairs of a run, logged in its partial folder so ``resume`` can go on:
    the run's parameters (a resume with others is refused) and one line per pair with the
    checksums of its files."""

    def __init__(self, partial: Path) -> None:
        self.partial = partial
        self.redone = 0
        """Pairs logged as done whose files were lost or damaged since: made again."""

    def start(self, parameters: dict) -> dict[int, dict]:
        """The records of the pairs already done; a resume with other ``parameters`` is refused.

        A log line cut by a kill is dropped (its pair is made again), as are temporary files,
        and so is a pair whose files no longer match their checksums in the log (``redone``).
        """
        key = run_key(parameters)
        saved_path = self.partial / PARAMS
        if saved_path.is_file():
            saved = json.loads(saved_path.read_text())
            if saved["key"] != key:
                differ = [k for k in parameters if saved["parameters"].get(k) != parameters[k]]
                raise InputError(
                    f"the unfinished run in {self.partial} was made with other "
                    f"{', '.join(differ) or 'parameters'}, so its pairs cannot be reused",
                    "resume with exactly the same command, or use --overwrite to start over",
                )
        else:
            _write_atomic(saved_path, json.dumps({"key": key, "parameters": parameters}))
        done: dict[int, dict] = {}
        log = self.partial / LOG
        if log.is_file():
            for line in log.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break
                if all(
                    _sha256(self.partial / name) == digest
                    for name, digest in record["files"].items()
                ):
                    done[record["index"]] = record
                else:
                    self.redone += 1
        _write_atomic(log, "".join(json.dumps(r) + "\n" for r in done.values()))
        for stale in self.partial.glob("*/*/.*.tmp"):
            stale.unlink()
        return done

    def log(self, record: dict) -> None:
        """Record a pair as done (its files are in place); closed at once, so a kill keeps it."""
        with open(self.partial / LOG, "a") as stream:
            stream.write(json.dumps(record) + "\n")
            stream.flush()
            os.fsync(stream.fileno())

    def close(self) -> None:
        """Every pair is written: the log is not part of the dataset."""
        (self.partial / LOG).unlink()
        (self.partial / PARAMS).unlink()


def _sha256(path: Path) -> str | None:
    """The file's checksum, None when it is missing."""
    try:
        return file_sha256(path)
    except FileNotFoundError:
        return None


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
