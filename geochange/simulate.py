"""``simulate``: land cover in, simulated change events, georeferenced change maps out.

Three streaming passes over the blocks of the plan, each holding one window in memory:

1. **scan** – read and map the land cover (burning ``--buildings``), check every value, measure
   the region (class areas, building sizes) and apply user-drawn ``--changes``;
2. **events** – block by block in phase order (see ``geochange.plan``), each event edits its
   block plus halo;
3. **write** – stream t1/t2 land cover, the change raster and change polygons.

Intermediate rasters live in raw scratch files inside the partial output folder. The events
pass (and a painter's pass) can run its blocks as tasks on a Dask cluster
(``geochange.distributed``); the results come back in order and only this process writes.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

import geopandas as gpd
import numpy as np
import pyogrio
import rasterio
import shapely

from geochange import __version__
from geochange.classes import (
    BUILDING,
    NODATA,
    NUM_CLASSES,
    gdal_colormap,
    load_scheme,
    to_codes,
    unknown_values_error,
)
from geochange.clean import clean, min_pixels
from geochange.distributed import Scheduler
from geochange.errors import InputError
from geochange.events import Event, EventWindow, RegionStats, parse_events
from geochange.events.base import DEFAULT_MIN_AREA_M2
from geochange.events.stats import measure_buildings
from geochange.grid import Grid, LandCover
from geochange.manifest import Manifest, run_key
from geochange.plan import Block, Plan, make_plan
from geochange.report import Reporter
from geochange.scratch import ScratchRaster
from geochange.vectors import rasterize, read_changes, read_polygons, split_layer
from geochange.writing.folder import OutputFolder
from geochange.writing.geotiff import GDAL_CACHE_MB, StreamingGeoTIFF, check_creation_options
from geochange.writing.polygons import ChangePolygonWriter
from geochange.writing.qml import change_qml, landcover_qml, write_sidecar
from geochange.writing.stac import write_item

CHANGED, UNCHANGED, CHANGE_NODATA = 1, 0, 255
DEFAULT_BLOCK = 2048
GPKG_DATE = "1970-01-01T00:00:00.000Z"
"""``last_change`` of ``changes.gpkg``: fixed, so identical runs give identical bytes."""
BUILDING_SAMPLE = 2000
"""At most this many of the region's buildings are measured per block for building_add."""

OUTPUTS = (
    "t1_landcover.tif",
    "t2_landcover.tif",
    "change.tif",
    "changes.gpkg",
    "run.json",
    "item.json",
)


@dataclass
class Inputs:
    """Everything ``simulate`` reads, resolved onto one grid."""

    region: Path
    land_cover: LandCover
    events: list[Event]
    buildings: gpd.GeoDataFrame | None = None
    changes: gpd.GeoDataFrame | None = None
    where: gpd.GeoDataFrame | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    min_area_m2: float = DEFAULT_MIN_AREA_M2
    """Changes smaller than this are undone or merged into their neighbours (``clean``)."""

    @property
    def grid(self) -> Grid:
        return self.land_cover.grid

    def event_names(self) -> list[str]:
        """Event label per code - 1: user-drawn labels first, then the named events."""
        user = list(dict.fromkeys(self.changes["event"])) if self.changes is not None else []
        return user + [e.name for e in self.events]

    def close(self) -> None:
        self.land_cover.close()

    def __enter__(self) -> Inputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Painter(Protocol):
    """Runs after the write pass with the scratch t1/t2 classes still open (see
    ``geochange.synth``): writes more outputs into the partial folder, returns them and a section
    for ``run.json``."""

    def fingerprint(self) -> dict:
        """What the painted pixels depend on besides the land cover (part of the resume key)."""
        ...

    def __call__(
        self,
        inputs: Inputs,
        plan: Plan,
        scratch: dict[str, ScratchRaster],
        folder: Path,
        creation_options: dict[str, str],
        reporter: Reporter,
        scheduler: Scheduler,
        manifest: Manifest,
    ) -> tuple[dict[str, Path], dict]: ...


@dataclass
class Result:
    """What a finished run wrote, with the figures of ``run.json``."""

    output: Path
    files: dict[str, Path]
    summary: dict


def open_inputs(
    region: str | Path,
    classes: str = "oem",
    events: str | Sequence[Event] = (),
    buildings: str | Path | None = None,
    changes: str | Path | None = None,
    where: str | Path | None = None,
    crs: str | None = None,
    gsd: float | None = None,
    reporter: Reporter | None = None,
    min_area: float = DEFAULT_MIN_AREA_M2,
) -> Inputs:
    """Open and check every input; nothing is written yet.

    ``min_area`` (m²) is the smallest change kept: smaller specks are undone or merged into
    the change beside them (see ``geochange.clean``); 0 keeps every pixel."""
    reporter = reporter or Reporter()
    parsed = parse_events(events) if isinstance(events, str) else list(events)
    if gsd is not None and not (math.isfinite(gsd) and gsd > 0):
        raise InputError(f"--gsd must be a positive number of metres, not {gsd}")
    if not min_area >= 0:
        raise InputError(
            f"--min-area (min_area) must be 0 or a positive area in m², not {min_area}"
        )
    land_cover = LandCover(region, load_scheme(classes), crs=crs, gsd=gsd)
    inputs = Inputs(
        Path(region), land_cover, parsed, paths={"region": Path(region)}, min_area_m2=min_area
    )
    try:
        _open_vectors(inputs, buildings, changes, where, reporter)
    except BaseException:
        inputs.close()
        raise
    return inputs


def _open_vectors(
    inputs: Inputs,
    buildings: str | Path | None,
    changes: str | Path | None,
    where: str | Path | None,
    reporter: Reporter,
) -> None:
    vector_files = {"buildings": buildings, "changes": changes, "where": where}
    inputs.paths.update({k: Path(split_layer(str(v))[0]) for k, v in vector_files.items() if v})
    grid = inputs.grid
    if buildings is not None:
        inputs.buildings = read_polygons(buildings, grid, "--buildings", reporter.warning)
    if changes is not None:
        inputs.changes = read_changes(changes, grid, reporter.warning)
    if where is not None:
        if not inputs.events:
            raise InputError("--where confines --events, but no --events were given")
        inputs.where = read_polygons(where, grid, "--where", reporter.warning)
    if not inputs.events and inputs.changes is None:
        raise InputError(
            "nothing to simulate: no --events and no --changes",
            "add e.g. --events building_add:count=20 (see `geochange events`)",
        )
    if len(inputs.event_names()) > 250:
        raise InputError("too many events and change labels (at most 250)")


def plan_for(inputs: Inputs, block_size: int = DEFAULT_BLOCK) -> Plan:
    halo_m = max([e.halo_m for e in inputs.events], default=0.0)
    return make_plan(inputs.grid, block_size, halo_m)


def describe(inputs: Inputs, plan: Plan, output: Path) -> dict:
    """The plan of a run, for ``--dry-run`` and ``run.json``."""
    grid = inputs.grid
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
        "outputs": [str(Path(output) / name) for name in OUTPUTS],
    }


def simulate(
    inputs: Inputs,
    output: str | Path,
    seed: int = 0,
    overwrite: bool = False,
    creation_options: dict[str, str] | None = None,
    block_size: int = DEFAULT_BLOCK,
    reporter: Reporter | None = None,
    painter: Painter | None = None,
    timestamps: int = 2,
    scheduler: Scheduler | None = None,
    resume: bool = False,
) -> Result:
    """Simulate the events on the inputs and write the change maps to folder ``output``.

    A ``painter`` adds outputs made from the simulated land cover (the images of ``synth``).
    ``timestamps`` > 2 chains fresh events on each land cover (t3, t4, ...), written as
    ``tN_landcover.tif`` and left in the scratch rasters for the painter. ``scheduler`` runs the
    block tasks (default: this process). ``resume`` continues a killed run into the same
    ``output``: the land-cover passes are redone (they are deterministic and fast) and the
    painter skips the blocks it had finished.
    """
    if timestamps < 2:
        raise InputError("--timestamps must be at least 2")
    check_creation_options(creation_options or {})
    reporter = reporter or Reporter()
    scheduler = scheduler or Scheduler()
    folder = OutputFolder(output, overwrite, resume, inputs.paths.values())
    try:
        plan = plan_for(inputs, block_size)
        grid = inputs.grid
        # per timestamp: land cover scratch and outputs; an image's scratch, partial file and COG
        per_pixel = 2.1 + (9.5 if painter is not None else 0)
        per_pixel *= timestamps
        folder.require_space(int(grid.width * grid.height * per_pixel) + 10_000_000)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        inputs_info = {k: _file_info(p) for k, p in inputs.paths.items()}
        key = run_key(
            {
                **describe(inputs, plan, folder.path),
                "seed": seed,
                "timestamps": timestamps,
                "inputs": {k: v["sha256"] for k, v in inputs_info.items()},
                "painter": None if painter is None else painter.fingerprint(),
                "geochange": __version__,
            }
        )
        if resume:
            Manifest.verify(folder.partial, key)
    except BaseException:
        folder.release()
        raise
    with (
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB, GDAL_NUM_THREADS="ALL_CPUS"),
        fixed_gpkg_date(),
        folder as partial,
    ):
        manifest = Manifest(partial, key, resume, plan)
        if manifest.redone:
            reporter.warning(
                f"{manifest.redone} finished blocks of the unfinished run were lost or damaged "
                "since (their scratch files no longer match); they are made again"
            )
        scratch = {
            name: ScratchRaster(partial / f".{name}.raw", grid.height, grid.width)
            for name in ("t1", "t2", "event")
        }
        try:
            tic = time.perf_counter()
            stats, block_pixels = _scan(inputs, plan, scratch, reporter)
            timings["scan_s"] = time.perf_counter() - tic
            tic = time.perf_counter()
            tally = _simulate_events(
                inputs, plan, scratch, stats, block_pixels, seed, reporter, scheduler
            )
            cleaned = _clean(inputs, plan, scratch)
            timings["events_s"] = time.perf_counter() - tic
            tic = time.perf_counter()
            files, polygons, changed = _write(
                inputs, plan, scratch, partial, creation_options, reporter
            )
            _warn_idle_events(inputs, changed, reporter)
            timings["write_s"] = time.perf_counter() - tic
            tic = time.perf_counter()
            chained, chained_tally = _chain(
                inputs,
                plan,
                scratch,
                stats,
                seed,
                timestamps,
                partial,
                creation_options,
                reporter,
                scheduler,
            )
            _warn_shortfall(inputs, tally + chained_tally, timestamps, reporter)
            files.update(chained)
            timings["chain_s"] = time.perf_counter() - tic
            painted: dict[str, Path] = {}
            extra: dict = {}
            if painter is not None:
                tic = time.perf_counter()
                painted, extra = painter(
                    inputs,
                    plan,
                    scratch,
                    partial,
                    creation_options or {},
                    reporter,
                    scheduler,
                    manifest,
                )
                files.update(painted)
                timings["paint_s"] = time.perf_counter() - tic
        finally:
            for raster in scratch.values():
                raster.close()
        timings["total_s"] = time.perf_counter() - started
        summary = {
            **describe(inputs, plan, folder.path),
            "seed": seed,
            "inputs": inputs_info,
            "changes": {
                "pixels_by_event": changed,
                "polygons": polygons.count,
                "area_m2_by_event": polygons.area_by_event,
                "min_area_m2": inputs.min_area_m2,
                **cleaned,
            },
            "versions": versions(),
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "scheduler": scheduler.describe(),
            "resumed": manifest.resumed,
            **extra,
        }
        added = [*chained.values(), *painted.values()]
        summary["outputs"] += [str(folder.path / path.name) for path in added]
        manifest.remove()
        (partial / "run.json").write_text(json.dumps(summary, indent=2))
        write_item(partial, summary)
    reporter.close()
    final = {name: folder.path / path.name for name, path in files.items()}
    final["run"] = folder.path / "run.json"
    return Result(folder.path, final, summary)


def _scan(
    inputs: Inputs, plan: Plan, scratch: dict[str, ScratchRaster], reporter: Reporter
) -> tuple[RegionStats, np.ndarray]:
    """Pass 1: map and check the land cover, measure it, apply user-drawn changes."""
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
        sizes.append(measure_buildings(t1, whole, pixel_size, BUILDING_SAMPLE))
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
        rng = np.random.default_rng([seed, index, 0xB10C])
        split = rng.multinomial(total, (weights / weights.sum()).ravel())
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

        for block, (t2, event, made) in zip(busy, scheduler.imap(task, jobs(busy)), strict=True):
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
        rng = np.random.default_rng([seed, index, block.row, block.col])
        made.append(event.apply(window, first_code + index, rng, count) or 0)
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
    colormap = gdal_colormap()
    rasters = {
        "t1_landcover": StreamingGeoTIFF(
            folder / "t1_landcover.tif", grid, 0, "land cover t1 (OpenEarthMap codes)", colormap
        ),
        "t2_landcover": StreamingGeoTIFF(
            folder / "t2_landcover.tif", grid, 0, "land cover t2 (OpenEarthMap codes)", colormap
        ),
        "change": StreamingGeoTIFF(
            folder / "change.tif", grid, CHANGE_NODATA, "change (0 unchanged, 1 changed)"
        ),
    }
    names = inputs.event_names()
    polygons = ChangePolygonWriter(folder / "changes.gpkg", grid, names)
    pixels = np.zeros(len(names) + 1, np.int64)
    try:
        reporter.stage("write", len(plan))
        for block in plan.blocks():
            t1 = scratch["t1"].read(block.core)
            t2 = scratch["t2"].read(block.core)
            event = scratch["event"].read(block.core)
            change = np.where(t1 == NODATA, CHANGE_NODATA, np.where(event > 0, CHANGED, UNCHANGED))
            rasters["t1_landcover"].write(block.core, to_codes(t1))
            rasters["t2_landcover"].write(block.core, to_codes(t2))
            rasters["change"].write(block.core, change.astype(np.uint8))
            polygons.add(block.core, t1, t2, event)
            pixels += np.bincount(event.ravel(), minlength=len(names) + 1)
            reporter.advance()
        reporter.stage("finish", len(rasters) + 1)
        files = {}
        for name, raster in rasters.items():
            files[name] = raster.finish(creation_options or {}, "MODE")
            qml = landcover_qml() if name != "change" else change_qml()
            write_sidecar(files[name], qml)
            reporter.advance()
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
            k_seed = int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
            tally += _simulate_events(
                inputs, plan, step, stats, block_pixels, k_seed, reporter, scheduler
            )
            _clean(inputs, plan, step)
        finally:
            event.close()
        name = f"t{k}_landcover"
        raster = StreamingGeoTIFF(
            folder / f"{name}.tif",
            grid,
            0,
            f"land cover t{k} (OpenEarthMap codes)",
            gdal_colormap(),
        )
        try:
            for block in plan.blocks():
                raster.write(block.core, to_codes(after.read(block.core)))
            files[name] = raster.finish(creation_options or {}, "MODE")
        finally:
            raster.discard()
        write_sidecar(files[name], landcover_qml())
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
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    size = path.stat().st_size
    return {"path": str(path.absolute()), "sha256": digest.hexdigest(), "bytes": size}


def versions() -> dict[str, str]:
    import pyproj

    return {
        "geochange": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "rasterio": rasterio.__version__,
        "gdal": rasterio.__gdal_version__,
        "geopandas": gpd.__version__,
        "shapely": shapely.__version__,
        "pyproj": pyproj.__version__,
    }
