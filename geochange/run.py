"""One run over a region: the passes of ``simulate`` and ``synth`` as methods of one object.

A ``Run`` is given the inputs, the seed and the output once, and owns what the passes share:
the plan of blocks, the output folder (written hidden, renamed when finished), the scratch
rasters and the resume manifest. The passes, in order:

1. ``scan`` – read and map the land cover (burning ``buildings``), check every value, measure
   the region (class areas, building sizes) and apply user-drawn ``changes``;
2. ``events`` – block by block in phase order (see ``geochange.plan``), each event edits its
   block plus halo; changes below the minimum area are then undone or merged;
3. ``change_maps`` – stream t1/t2 land cover, the change raster and change polygons;
4. ``chain`` – t3 ... tN: the events again on the land cover before (``timestamps`` > 2);
5. ``paint`` – an image pass (``geochange.synth``) adds the images, resumable block by block;
6. ``finish`` – ``run.json``, the preview and the STAC item, then the folder appears.

``geochange.simulation`` and ``geochange.synth`` compose these passes side by side. The events
and paint passes can run their blocks as tasks on a Dask cluster (``geochange.distributed``);
results come back in order and only this process writes.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyogrio
import rasterio
from rasterio.windows import Window

from geochange import __version__
from geochange.classes import (
    BUILDING,
    NODATA,
    NUM_CLASSES,
    to_codes,
    unknown_values_error,
)
from geochange.clean import clean, min_pixels
from geochange.defaults import DEFAULT_BLOCK
from geochange.distributed import Scheduler
from geochange.errors import InputError
from geochange.events.base import Event, EventWindow, RegionStats
from geochange.events.stats import measure_buildings
from geochange.grid import Grid
from geochange.hashing import file_sha256
from geochange.manifest import Manifest, run_key
from geochange.plan import Block, Plan, make_plan
from geochange.report import Reporter
from geochange.scratch import ScratchRaster
from geochange.seeds import BLOCK_COUNTS, child_seed, rng
from geochange.vectors import rasterize
from geochange.versions import versions
from geochange.writing.folder import OutputFolder, output_path
from geochange.writing.geotiff import (
    GDAL_CACHE_MB,
    StreamingGeoTIFF,
    check_creation_options,
    finish_all,
    finish_landcover,
    landcover_geotiff,
)
from geochange.writing.polygons import ChangePolygonWriter, block_pieces
from geochange.writing.preview import write_preview
from geochange.writing.qml import change_qml, landcover_qml, write_sidecar
from geochange.writing.stac import write_item

if TYPE_CHECKING:
    from geochange.inputs import Inputs

CHANGED, UNCHANGED, CHANGE_NODATA = 1, 0, 255
GPKG_DATE = "1970-01-01T00:00:00.000Z"
"""``last_change`` of ``changes.gpkg``: fixed, so identical runs give identical bytes."""
LANDCOVER_BYTES_PER_PIXEL = 2.1
"""Disk per pixel and timestamp: land-cover scratch rasters and outputs."""
IMAGE_BYTES_PER_PIXEL = 9.5
"""Disk per pixel and timestamp of an image: its scratch raster, partial file and COG."""

OUTPUTS = (
    "t1_landcover.tif",
    "t2_landcover.tif",
    "change.tif",
    "changes.gpkg",
    "run.json",
    "item.json",
)


class ImagePass(Protocol):
    """A pass that paints images from the run's land cover (``geochange.painting.Painter``)."""

    seed: int
    """The seed its noise is drawn from: the run's, so one seed makes one output."""

    def fingerprint(self) -> dict:
        """What the painted pixels depend on besides the land cover (part of the resume key)."""
        ...

    def paint(self, run: Run) -> tuple[dict[str, Path], dict]:
        """Write the images into ``run.partial``; return them and a section for ``run.json``."""
        ...


@dataclass
class Result:
    """What a finished run wrote, with the figures of ``run.json``."""

    output: Path
    files: dict[str, Path]
    summary: dict


def plan_for(inputs: Inputs, block_size: int = DEFAULT_BLOCK) -> Plan:
    """Blocks of ``block_size`` px with a halo as wide as the widest-reaching event."""
    halo_m = max([e.halo_m for e in inputs.events], default=0.0)
    return make_plan(inputs.grid, block_size, halo_m)


class Run:
    """One run: construct it (nothing is touched on disk), enter it (the output folder is
    locked and checked, scratch rasters opened), call the passes in order, then ``finish``.

    Leaving the ``with`` block without ``finish`` (an error, Ctrl-C) removes the partial folder;
    a run killed outright leaves it for ``resume``.
    """

    def __init__(
        self,
        inputs: Inputs,
        output: str | Path,
        *,
        seed: int = 0,
        overwrite: bool = False,
        resume: bool = False,
        creation_options: dict[str, str] | None = None,
        block_size: int = DEFAULT_BLOCK,
        timestamps: int = 2,
        reporter: Reporter | None = None,
        scheduler: Scheduler | None = None,
        images: ImagePass | None = None,
    ) -> None:
        """``timestamps`` > 2 chains fresh events on each land cover (t3, t4, ...);
        ``scheduler`` runs the block tasks (default: this process); ``resume`` continues a
        killed run into the same ``output``: the land-cover passes are redone (deterministic
        and fast) and the paint pass skips the blocks it had finished. ``images`` is the image
        pass to come, whose fingerprint joins the resume key and whose pixels the disk check
        counts."""
        if timestamps < 2:
            raise InputError("--timestamps must be at least 2")
        if images is not None and images.seed != seed:
            raise ValueError(f"the image pass draws from seed {images.seed}, the run {seed}")
        check_creation_options(creation_options or {})
        self.inputs = inputs
        self.output = output_path(output)
        self.seed = seed
        self.overwrite = overwrite
        self.resume = resume
        self.creation_options = creation_options or {}
        self.timestamps = timestamps
        self.reporter = reporter or Reporter()
        self.scheduler = scheduler or Scheduler()
        self.images = images
        self.plan = plan_for(inputs, block_size)
        self.timings: dict[str, float] = {}
        self.files: dict[str, Path] = {}
        self.added: list[Path] = []
        """Outputs beyond ``OUTPUTS`` (tN land cover, images), in the order they were made."""
        self.sections: dict = {}
        self.scratch: dict[str, ScratchRaster] = {}
        self._stack = ExitStack()

    @property
    def grid(self) -> Grid:
        return self.inputs.grid

    def describe(self) -> dict:
        """The plan of the run, for ``--dry-run`` and ``run.json``."""
        inputs, plan, grid = self.inputs, self.plan, self.inputs.grid
        width_m, height_m = grid.pixel_size_m()
        return {
            "region": str(inputs.region),
            "classes": inputs.land_cover.scheme.name,
            "grid": {
                "crs": grid.crs.to_string(),
                "transform": list(grid.transform)[:6],
                "width": grid.width,
                "height": grid.height,
                "pixel_size_m": [round(width_m, 4), round(height_m, 4)],
            },
            "blocks": {
                "size": plan.block_size,
                "halo": plan.halo,
                "rows": plan.rows,
                "cols": plan.cols,
                "count": len(plan),
            },
            "events": [{"name": e.name, **e.values} for e in inputs.events],
            "user_changes": 0 if inputs.changes is None else len(inputs.changes),
            "min_area_m2": inputs.min_area_m2,
            "outputs": [str(self.output / name) for name in OUTPUTS],
        }

    # -- opening and closing ---------------------------------------------------------------

    def __enter__(self) -> Run:
        self.started = time.perf_counter()
        folder = OutputFolder(self.output, self.overwrite, self.resume, self.inputs.paths.values())
        try:
            per_pixel = LANDCOVER_BYTES_PER_PIXEL + (
                IMAGE_BYTES_PER_PIXEL if self.images is not None else 0
            )
            grid = self.grid
            folder.require_space(
                int(grid.width * grid.height * per_pixel * self.timestamps) + 10_000_000
            )
            self.inputs_info = {k: _file_info(p) for k, p in self.inputs.paths.items()}
            key = run_key(
                {
                    **self.describe(),
                    "seed": self.seed,
                    "timestamps": self.timestamps,
                    "inputs": {k: v["sha256"] for k, v in self.inputs_info.items()},
                    "painter": None if self.images is None else self.images.fingerprint(),
                    "geochange": __version__,
                }
            )
            if self.resume:
                Manifest.verify(folder.partial, key)
        except BaseException:
            folder.release()
            raise
        stack = self._stack
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB, GDAL_NUM_THREADS="ALL_CPUS"))
        stack.enter_context(fixed_gpkg_date())
        self.partial = stack.enter_context(folder)
        stack.callback(self._close_scratch)
        try:
            self.manifest = Manifest(self.partial, key, self.resume, self.plan)
            if self.manifest.redone:
                self.reporter.warning(
                    f"{self.manifest.redone} finished blocks of the unfinished run were lost "
                    "or damaged since (their scratch files no longer match); they are made again"
                )
            self.scratch = {
                name: ScratchRaster(self.partial / f".{name}.raw", grid.height, grid.width)
                for name in ("t1", "t2", "event")
            }
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.__exit__(exc_type, exc, traceback)

    def _close_scratch(self) -> None:
        while self.scratch:
            self.scratch.popitem()[1].close()

    @contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        tic = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - tic

    # -- the passes ------------------------------------------------------------------------

    def scan(self) -> None:
        """Map and check the land cover, measure it, apply user-drawn changes."""
        with self._timed("scan_s"):
            self.stats, self.block_pixels = _scan(
                self.inputs, self.plan, self.scratch, self.reporter
            )

    def events(self) -> None:
        """Every event on every block, then the changes below the minimum area cleaned."""
        with self._timed("events_s"):
            self.tally = _simulate_events(
                self.inputs,
                self.plan,
                self.scratch,
                self.stats,
                self.block_pixels,
                self.seed,
                self.reporter,
                self.scheduler,
            )
            self.cleaned = _clean(self.inputs, self.plan, self.scratch)

    def change_maps(self) -> None:
        """The t1/t2 land cover, the change raster and the change polygons."""
        with self._timed("write_s"):
            files, self.polygons, self.changed = _write(
                self.inputs,
                self.plan,
                self.scratch,
                self.partial,
                self.creation_options,
                self.reporter,
            )
            self.files.update(files)
            _warn_idle_events(self.inputs, self.changed, self.reporter)

    def chain(self) -> None:
        """t3 ... tN (nothing with two timestamps), then a word on events that fell short."""
        with self._timed("chain_s"):
            chained, chained_tally = _chain(
                self.inputs,
                self.plan,
                self.scratch,
                self.stats,
                self.seed,
                self.timestamps,
                self.partial,
                self.creation_options,
                self.reporter,
                self.scheduler,
            )
            _warn_shortfall(self.inputs, self.tally + chained_tally, self.timestamps, self.reporter)
            self._add(chained)

    def paint(self) -> None:
        """The image pass given at construction."""
        if self.images is None:
            raise ValueError("this run was made without an image pass to paint with")
        with self._timed("paint_s"):
            files, section = self.images.paint(self)
            self._add(files)
            self.sections.update(section)

    def finish(self, preview: bool = False) -> Result:
        """Write ``run.json``, the preview (``preview``) and the STAC item, then let the
        folder appear under its name."""
        self._close_scratch()
        self.timings["total_s"] = time.perf_counter() - self.started
        summary = {
            **self.describe(),
            "seed": self.seed,
            "inputs": self.inputs_info,
            "changes": {
                "pixels_by_event": self.changed,
                "polygons": self.polygons.count,
                "area_m2_by_event": self.polygons.area_by_event,
                "min_area_m2": self.inputs.min_area_m2,
                **self.cleaned,
            },
            "versions": versions(),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "scheduler": self.scheduler.describe(),
            "resumed": self.manifest.resumed,
            **self.sections,
        }
        summary["outputs"] += [str(self.output / path.name) for path in self.added]
        self.manifest.remove()
        (self.partial / "run.json").write_text(json.dumps(summary, indent=2))
        if preview:
            self.files["preview"] = write_preview(self.partial)
        write_item(self.partial, summary)
        self._stack.close()
        self.reporter.close()
        final = {name: self.output / path.name for name, path in self.files.items()}
        final["run"] = self.output / "run.json"
        return Result(self.output, final, summary)

    def _add(self, files: dict[str, Path]) -> None:
        self.files.update(files)
        self.added += files.values()


def _scan(
    inputs: Inputs, plan: Plan, scratch: dict[str, ScratchRaster], reporter: Reporter
) -> tuple[RegionStats, np.ndarray]:
    land_cover, grid = inputs.land_cover, inputs.grid
    pixel_size = grid.pixel_size_m()
    block_pixels = np.zeros((plan.rows, plan.cols, NUM_CLASSES), np.int64)
    unknown: dict[str, int] = {}
    sizes = []
    user_codes = _user_change_codes(inputs)
    reporter.stage("scan", len(plan))
    for block in plan.blocks():
        t1, block_unknown = land_cover.read(block.core)
        for value, count in block_unknown.items():
            unknown[value] = unknown.get(value, 0) + count
        if unknown:
            reporter.advance()
            continue
        if inputs.buildings is not None:
            burned = rasterize(inputs.buildings, grid, block.core) > 0
            t1[burned & (t1 != NODATA)] = BUILDING
        valid = t1[t1 != NODATA]
        block_pixels[block.row, block.col] = np.bincount(valid, minlength=NUM_CLASSES)
        whole = (slice(None), slice(None))
        sizes.append(measure_buildings(t1, whole, pixel_size))
        scratch["t1"].write(block.core, t1)
        t2, event = t1.copy(), np.zeros_like(t1)
        if user_codes is not None:
            window = EventWindow(t1, t2, event, whole, pixel_size, RegionStats(), min_pixels=1)
            _apply_user_changes(inputs, block, window, user_codes)
        scratch["t2"].write(block.core, t2)
        scratch["event"].write(block.core, event)
        reporter.advance()
    if unknown:
        raise unknown_values_error(land_cover.scheme, unknown)
    if not block_pixels.any():
        raise InputError(
            f"land cover {inputs.region} holds no data (every pixel is no-data)",
            "check the file and --classes: the value marked as no-data covers it all",
        )
    stats = RegionStats(
        building_sizes_m=np.concatenate(sizes) if sizes else np.zeros((0, 2)),
        class_pixels=block_pixels.sum(axis=(0, 1)),
    )
    return stats, block_pixels


def _user_change_codes(inputs: Inputs) -> tuple[np.ndarray, np.ndarray] | None:
    """Per drawn feature: its event code and target class (burn value = feature index + 1)."""
    if inputs.changes is None:
        return None
    names = inputs.event_names()
    codes = np.array([0] + [names.index(e) + 1 for e in inputs.changes["event"]], np.uint8)
    targets = np.array([0, *inputs.changes["to_class"]], np.uint8)
    return codes, targets


def _apply_user_changes(
    inputs: Inputs, block: Block, window: EventWindow, user_codes: tuple[np.ndarray, np.ndarray]
) -> None:
    codes, targets = user_codes
    feature_ids = np.arange(1, len(codes), dtype=np.int32)
    ids = rasterize(inputs.changes, inputs.grid, block.core, feature_ids)
    for code in np.unique(codes[ids[ids > 0]]):
        mask = (ids > 0) & (codes[ids] == code)
        window.commit(mask, targets[ids], int(code))


def _warn_idle_events(inputs: Inputs, changed: dict[str, int], reporter: Reporter) -> None:
    """An event that changed nothing (a flood with no water to spread) is said, not silent;
    events with a count already warn when the region lacks their land (``_block_counts``)."""
    for event in inputs.events:
        if event.count_param is None and changed.get(event.name) == 0:
            where = " inside --where" if inputs.where is not None else ""
            reporter.warning(
                f"{event.name} changed nothing: the region{where} has none of the land it acts "
                "on (see `geochange events`)"
            )


def _warn_shortfall(inputs: Inputs, tally: np.ndarray, timestamps: int, reporter: Reporter) -> None:
    """An event that made fewer objects than its count (``building_add:count=100000`` on a small
    region) says so once per run; ``tally`` is (asked, made) per event, summed over timestamps."""
    over = f" over {timestamps - 1} timestamps" if timestamps > 2 else ""
    for event, asked, made in zip(inputs.events, *tally, strict=True):
        if made < asked:
            reporter.warning(
                f"{event.name}: {made} of {asked} {event.counted}{over}; the region has no room "
                "(or no land) for more"
            )


def _block_counts(
    inputs: Inputs, block_pixels: np.ndarray, seed: int, reporter: Reporter
) -> list[np.ndarray]:
    """Split each count-type event's region total among blocks by their eligible land."""
    counts = []
    for index, event in enumerate(inputs.events):
        zeros = np.zeros(block_pixels.shape[:2], np.int64)
        if event.count_param is None:
            counts.append(zeros)
            continue
        total = int(event.values[event.count_param])
        weights = block_pixels[..., list(event.weight_classes)].sum(axis=-1).astype(float)
        if weights.sum() == 0:
            reporter.warning(f"{event.name}: the region has no land this event can act on")
            counts.append(zeros)
            continue
        split = rng(seed, index, BLOCK_COUNTS).multinomial(total, (weights / weights.sum()).ravel())
        counts.append(split.reshape(weights.shape))
    return counts


def _simulate_events(
    inputs: Inputs,
    plan: Plan,
    scratch: dict[str, ScratchRaster],
    stats: RegionStats,
    block_pixels: np.ndarray,
    seed: int,
    reporter: Reporter,
    scheduler: Scheduler,
) -> np.ndarray:
    """Pass 2: every event on every block (with halo), phase by phase.

    Windows of one phase never overlap, so its blocks are independent tasks; a phase starts
    once the one before is written. Returns per event the objects its count asked of the blocks
    and those they made, as rows (asked, made).
    """
    names = inputs.event_names()
    first_code = len(names) - len(inputs.events) + 1
    counts = _block_counts(inputs, block_pixels, seed, reporter)
    tally = np.zeros((2, len(inputs.events)), np.int64)
    tally[0] = [int(c.sum()) for c in counts]
    pixel_size = inputs.grid.pixel_size_m()
    task = partial(_apply_events, inputs.events, first_code, seed)
    reporter.stage("events", len(plan))
    for phase in plan.phases():
        busy = [b for b in phase if inputs.events and block_pixels[b.row, b.col].any()]
        reporter.advance(len(phase) - len(busy))

        def jobs(blocks: list[Block]) -> Iterator[tuple[Block, EventWindow, list[int]]]:
            for block in blocks:
                allowed = None
                if inputs.where is not None:
                    allowed = rasterize(inputs.where, inputs.grid, block.window) > 0
                window = EventWindow(
                    t1=scratch["t1"].read(block.window),
                    t2=scratch["t2"].read(block.window),
                    event=scratch["event"].read(block.window),
                    core=block.core_in_window,
                    pixel_size_m=pixel_size,
                    stats=stats,
                    allowed=allowed,
                )
                yield block, window, [int(c[block.row, block.col]) for c in counts]

        results = scheduler.imap(task, jobs(busy), forked=len(busy) > 1)
        for block, (t2, event, made) in zip(busy, results, strict=True):
            scratch["t2"].write(block.window, t2)
            scratch["event"].write(block.window, event)
            tally[1] += made
            reporter.advance()
    return tally


def _apply_events(
    events: list[Event],
    first_code: int,
    seed: int,
    job: tuple[Block, EventWindow, list[int]],
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Every event on one block window: the task of the events pass (runs on any worker).

    Also returns how many objects each count-type event made here (0 for the others).
    """
    block, window, counts = job
    made = []
    for index, (event, count) in enumerate(zip(events, counts, strict=True)):
        draws = rng(seed, index, block.row, block.col)
        made.append(event.apply(window, first_code + index, draws, count) or 0)
    return window.t2, window.event, made


def _clean(inputs: Inputs, plan: Plan, scratch: dict[str, ScratchRaster]) -> dict[str, int]:
    """Undo or merge the changes below the minimum area, before anything is written."""
    smallest = min_pixels(inputs.min_area_m2, inputs.grid.pixel_size_m())
    return clean(plan, scratch["t1"], scratch["t2"], scratch["event"], smallest)


def _write(
    inputs: Inputs,
    plan: Plan,
    scratch: dict[str, ScratchRaster],
    folder: Path,
    creation_options: dict[str, str] | None,
    reporter: Reporter,
) -> tuple[dict[str, Path], ChangePolygonWriter, dict[str, int]]:
    """Pass 3: stream the rasters and polygons, then finish them as COGs and a GeoPackage.

    Also returns the pixels changed by each event.
    """
    grid = inputs.grid
    rasters = {
        "t1_landcover": landcover_geotiff(folder / "t1_landcover.tif", grid, "t1"),
        "t2_landcover": landcover_geotiff(folder / "t2_landcover.tif", grid, "t2"),
        "change": StreamingGeoTIFF(
            folder / "change.tif", grid, CHANGE_NODATA, "change (0 unchanged, 1 changed)"
        ),
    }
    names = inputs.event_names()
    polygons = ChangePolygonWriter(folder / "changes.gpkg", grid, names)
    pixels = np.zeros(len(names) + 1, np.int64)

    def written() -> Iterator[tuple[Window, np.ndarray, np.ndarray, np.ndarray]]:
        """Each block's rasters written here, its classes and events handed on to be
        polygonized (in other processes while this one writes the next blocks)."""
        for block in plan.blocks():
            t1 = scratch["t1"].read(block.core)
            t2 = scratch["t2"].read(block.core)
            event = scratch["event"].read(block.core)
            change = np.where(t1 == NODATA, CHANGE_NODATA, np.where(event > 0, CHANGED, UNCHANGED))
            rasters["t1_landcover"].write(block.core, to_codes(t1))
            rasters["t2_landcover"].write(block.core, to_codes(t2))
            rasters["change"].write(block.core, change.astype(np.uint8))
            np.add(pixels, np.bincount(event.ravel(), minlength=len(names) + 1), out=pixels)
            yield block.core, t1, t2, event

    try:
        reporter.stage("write", len(plan))
        # on this machine's cores even with a Dask cluster: shipping every block's arrays
        # away and back would cost more than polygonizing them
        polygonize = partial(block_pieces, (grid.height, grid.width))
        for found in Scheduler().imap(polygonize, written(), forked=len(plan) > 1):
            polygons.add_pieces(found)
            reporter.advance()
        reporter.stage("finish", len(rasters) + 1)
        # the change raster is 0/1: nearest keeps its overviews as sharp and costs less
        jobs = [(r, "NEAREST" if name == "change" else "MODE") for name, r in rasters.items()]
        files = dict(zip(rasters, finish_all(jobs, creation_options or {}), strict=True))
        for name, path in files.items():
            write_sidecar(path, landcover_qml() if name != "change" else change_qml())
        reporter.advance(len(rasters))
    finally:
        for raster in rasters.values():
            raster.discard()
    files["changes"] = polygons.close()
    reporter.advance()
    changed = dict.fromkeys(names, 0)
    for name, count in zip(names, pixels[1:], strict=True):
        changed[name] += int(count)
    return files, polygons, changed


def _chain(
    inputs: Inputs,
    plan: Plan,
    scratch: dict[str, ScratchRaster],
    stats: RegionStats,
    seed: int,
    timestamps: int,
    folder: Path,
    creation_options: dict[str, str] | None,
    reporter: Reporter,
    scheduler: Scheduler,
) -> tuple[dict[str, Path], np.ndarray]:
    """t3 ... tN: the event pass again on the land cover before, with a seed per timestamp.

    Adds ``scratch["tK"]`` (closed with the others) and writes ``tK_landcover.tif``; returns the
    files and the events' (asked, made) objects summed over these timestamps.
    """
    grid, files = inputs.grid, {}
    tally = np.zeros((2, len(inputs.events)), np.int64)
    for k in range(3, timestamps + 1):
        before = scratch[f"t{k - 1}"]
        after = scratch[f"t{k}"] = ScratchRaster(folder / f".t{k}.raw", grid.height, grid.width)
        block_pixels = np.zeros((plan.rows, plan.cols, NUM_CLASSES), np.int64)
        for block in plan.blocks():
            classes = before.read(block.core)
            after.write(block.core, classes)
            valid = classes[classes != NODATA]
            block_pixels[block.row, block.col] = np.bincount(valid, minlength=NUM_CLASSES)
        event = ScratchRaster(folder / f".event{k}.raw", grid.height, grid.width)
        try:
            step = {"t1": before, "t2": after, "event": event}
            k_seed = child_seed(seed, k)
            tally += _simulate_events(
                inputs, plan, step, stats, block_pixels, k_seed, reporter, scheduler
            )
            _clean(inputs, plan, step)
        finally:
            event.close()
        name = f"t{k}_landcover"
        raster = landcover_geotiff(folder / f"{name}.tif", grid, f"t{k}")
        try:
            for block in plan.blocks():
                raster.write(block.core, to_codes(after.read(block.core)))
            files[name] = finish_landcover(raster, creation_options or {})
        finally:
            raster.discard()
    return files, tally


@contextmanager
def fixed_gpkg_date() -> Iterator[None]:
    """GeoPackage stamps ``gpkg_contents.last_change`` with the time of writing, so two
    identical runs gave different ``changes.gpkg``; a fixed date keeps every output the same."""
    before = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_DATE})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": before})


def _file_info(path: Path) -> dict:
    size = path.stat().st_size
    return {"path": str(path.absolute()), "sha256": file_sha256(path), "bytes": size}
