"""The inputs of a run, opened and checked onto one grid before anything is written."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd

from geochange.classes import load_scheme
from geochange.errors import InputError
from geochange.events import Event, parse_events
from geochange.events.base import DEFAULT_MIN_AREA_M2
from geochange.grid import Grid, LandCover
from geochange.report import Reporter
from geochange.vectors import read_changes, read_polygons, split_layer


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

    def with_image(self, image: str | Path | None) -> Inputs:
        """These inputs with a real image of the region among the files a run reads (hashed
        into its record and resume key, kept safe from ``overwrite``)."""
        if image is None:
            return self
        return replace(self, paths={**self.paths, "image": Path(image)})

    def close(self) -> None:
        self.land_cover.close()

    def __enter__(self) -> Inputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_inputs(
    region: str | Path,
    *,
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
