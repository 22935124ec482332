"""Building events: new footprints, demolitions, and new built-up quarters at the town edge."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from geochange.classes import (
    AGRICULTURE,
    BARELAND,
    BUILDING,
    DEVELOPED,
    NODATA,
    RANGELAND,
    ROAD,
)
from geochange.events.base import (
    FULL_AFTER,
    Event,
    EventWindow,
    Param,
    RegionStats,
    pairs,
    region_count,
)
from geochange.events.masks import EIGHT, dilate, is_in
from geochange.events.shapes import (
    Proximity,
    box_around,
    class_choice,
    find_instances,
    offsets_m,
    random_pixels,
    rectangle,
    stroke,
)

BUILDABLE = (BARELAND, RANGELAND, DEVELOPED)
"""Land a building may be put on (never road, water, tree or another building; a field only
where a window has none of these)."""
EXPANDABLE = (AGRICULTURE, RANGELAND, BARELAND)
"""Open land that a town grows onto."""
MAX_LENGTH_M = 50.0
"""Longest new building: larger measured ones (terraces merged in the map) are capped."""
NEAR_ROAD_M = 40.0
"""New buildings are started within this distance of a road when the block has roads."""
ATTEMPTS = 30
"""Candidate sites tried per wanted building."""
STARTS = 10
"""Edge pixels drawn per wanted quarter."""
INFILL_SHARE = 0.6
"""Share of candidate sites on developed land (plots in town) rather than open land by roads."""


def building_size(stats: RegionStats, rng: np.random.Generator) -> tuple[float, float]:
    """(length, width) in metres: one of the region's own buildings, or a typical house."""
    sizes = stats.building_sizes_m
    if len(sizes):
        length, width = sizes[rng.integers(len(sizes))] * rng.uniform(0.9, 1.1, 2)
    else:
        length, width = rng.uniform(8.0, 20.0), rng.uniform(6.0, 14.0)
    length, width = max(length, width), min(length, width)
    return float(np.clip(length, 4.0, MAX_LENGTH_M)), float(np.clip(width, 3.0, MAX_LENGTH_M))


def footprint(
    dy: np.ndarray,
    dx: np.ndarray,
    angle: float,
    length: float,
    width: float,
    wing: tuple[float, float, int, int] | None,
    grow: float = 0.0,
) -> np.ndarray:
    """A rectangle, or an L whose ``wing`` = (along, across, end, side) sticks out at one end.

    ``grow`` widens the shape by that many metres on every side (for gap checks).
    """
    shape = rectangle(dy, dx, angle, length + 2 * grow, width + 2 * grow)
    if wing is None:
        return shape
    along, across, end, side = wing
    u = end * (length - along) / 2
    v = side * (width / 2 + across) / 2
    cy = u * np.sin(angle) + v * np.cos(angle)
    cx = u * np.cos(angle) - v * np.sin(angle)
    return shape | rectangle(
        dy - cy, dx - cx, angle, along + 2 * grow, width / 2 + across + 2 * grow
    )


@dataclass
class Lots:
    """Where new buildings may go, in a window or in a part of it."""

    buildable: np.ndarray
    blocked: np.ndarray
    """Buildings to keep a gap from; new buildings are added as they are placed."""
    roads: Proximity
    """Distance to the nearest road: orientation and set-back."""


def place_buildings(
    lots: Lots,
    anchors: np.ndarray,
    want: int,
    stats: RegionStats,
    rng: np.random.Generator,
    setback: float,
    gap: float,
    l_share: float,
    reach_m: float,
) -> tuple[np.ndarray, int]:
    """Up to ``want`` footprints, each tried at the next ``ATTEMPTS`` of ``anchors`` ((k, 2)),
    and how many were placed.

    A building's size is drawn once and kept while sites are tried, so that the buildings placed
    keep the region's size distribution (small ones would fit more often otherwise).
    """
    new = np.zeros(lots.buildable.shape, bool)
    sites = iter(anchors)
    misses = placed = 0
    for _ in range(want):
        length, width = building_size(stats, rng)
        wing = None
        if rng.random() < l_share:
            end = 1 if rng.random() < 0.5 else -1
            wing = (length * rng.uniform(0.3, 0.5), width * rng.uniform(0.5, 1.0), end)
        misses += 1
        for row, col in itertools.islice(sites, ATTEMPTS):
            site = _site(lots, row, col, length, width, wing, setback, gap, reach_m, rng)
            if site is not None:
                new[site[0]] |= site[1]
                lots.blocked[site[0]] |= site[1]
                misses = 0
                placed += 1
                break
        if misses >= FULL_AFTER:
            break
    return new, placed


def _site(
    lots: Lots,
    row: int,
    col: int,
    length: float,
    width: float,
    wing: tuple[float, float, int] | None,
    setback: float,
    gap: float,
    reach_m: float,
    rng: np.random.Generator,
) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """The footprint anchored at (row, col), or None where it does not fit.

    Its long side runs parallel to the nearest road, it is pushed back from the road by
    ``setback`` and an L's wing points away from the road; it must lie wholly on buildable land,
    ``gap`` metres from any building and within ``reach_m`` of its anchor.
    """
    shape, pixel_size = lots.buildable.shape, lots.roads.pixel_size
    road, normal = lots.roads.distance_and_normal(row, col)
    if normal is None:
        angle, shift_y, shift_x, side = rng.uniform(0, np.pi), 0.0, 0.0, 1
    else:
        angle = np.arctan2(normal[0], normal[1]) + np.pi / 2
        shift = max(0.0, setback + width / 2 - road)
        shift_y, shift_x = shift * normal[0], shift * normal[1]
        side = 1 if np.cos(angle) * normal[0] - np.sin(angle) * normal[1] > 0 else -1
    sided = None if wing is None else (*wing, side)
    across = width / 2 + (wing[1] if wing else 0.0)
    radius = np.hypot(length / 2, across) + gap + 2 * max(pixel_size)
    centre = (row + shift_y / pixel_size[1], col + shift_x / pixel_size[0])
    box = box_around(shape, *centre, radius, pixel_size)
    if 0 in (box[0].start, box[1].start) or box[0].stop == shape[0] or box[1].stop == shape[1]:
        return None
    dy, dx = offsets_m(box, *centre, pixel_size)
    plan = footprint(dy, dx, angle, length, width, sided)
    if plan.sum() < 4 or not lots.buildable[box][plan].all():
        return None
    if lots.blocked[box][footprint(dy, dx, angle, length, width, sided, gap)].any():
        return None
    if lots.roads.closer_than(box, plan, setback):
        return None
    if np.hypot(dy + shift_y, dx + shift_x)[plan].max() > reach_m:
        return None
    return box, plan


@dataclass
class _Town:
    """What urban expansion works on in one window, and the quarters claimed so far."""

    land: np.ndarray
    linkable: np.ndarray
    developed: np.ndarray
    claimed: np.ndarray
    target: np.ndarray


class BuildingAdd(Event):
    """New buildings shaped like the region's own, lined up along the nearest road."""

    name = "building_add"
    summary = (
        "new building footprints on open or developed land (fields where there is none), "
        "aligned to the nearest road"
    )
    params = (
        region_count(20, "number of new buildings in the region"),
        Param(
            "setback",
            float,
            3.0,
            "metres between a new building and the road (default 3)",
            minimum=0.0,
            maximum=20.0,
        ),
        Param(
            "gap",
            float,
            2.0,
            "metres kept free around every building (default 2)",
            minimum=0.5,
            maximum=20.0,
        ),
        Param(
            "l_shapes",
            float,
            0.2,
            "share of L-shaped footprints, 0-1 (default 0.2)",
            minimum=0.0,
            maximum=1.0,
        ),
    )
    transitions = pairs((*BUILDABLE, AGRICULTURE), (BUILDING,))
    weight_classes = (DEVELOPED, BUILDING, ROAD)
    """New buildings go where people already build, and along roads."""
    count_param = "count"
    counted = "buildings placed"
    halo_m = 60.0

    def apply(self, window: EventWindow, code: int, rng: np.random.Generator, count: int) -> int:
        if count <= 0:
            return 0
        t2, pixel_size = window.t2, window.pixel_size_m
        buildable = is_in(t2, BUILDABLE) & window.free()
        start = buildable & window.core_mask()
        if not start.any():  # farmland is built on where no open land is (rural LoveDA)
            buildable = (t2 == AGRICULTURE) & window.free()
            start = buildable & window.core_mask()
        if not start.any():
            return 0
        roads = Proximity(t2 == ROAD, pixel_size)
        near = start & roads.band(self.setback, NEAR_ROAD_M)
        if not near.any():
            near = start
        tries = count * ATTEMPTS
        anchors = random_pixels(near, tries, rng)
        plots = near & (t2 == DEVELOPED)
        if plots.any():
            infill = rng.random(tries) < INFILL_SHARE
            anchors[infill] = random_pixels(plots, tries, rng)[infill]
        lots = Lots(buildable, t2 == BUILDING, roads)
        new, placed = place_buildings(
            lots,
            anchors,
            count,
            window.stats,
            rng,
            self.setback,
            self.gap,
            self.l_shapes,
            self.halo_m,
        )
        window.commit(new, BUILDING, code)
        return placed


class BuildingRemove(Event):
    """Whole buildings demolished; the plot is left bare or paved."""

    name = "building_remove"
    summary = "existing buildings demolished as whole instances, to bareland or developed space"
    params = (
        region_count(10, "number of buildings removed in the region"),
        Param("to", str, "bareland", "left behind: bareland or developed_space (default bareland)"),
    )
    transitions = pairs((BUILDING,), (BARELAND, DEVELOPED))
    weight_classes = (BUILDING,)
    count_param = "count"
    counted = "buildings removed"
    halo_m = 100.0

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.to_class = class_choice(self.name, "to", self.to, (BARELAND, DEVELOPED))

    def apply(self, window: EventWindow, code: int, rng: np.random.Generator, count: int) -> int:
        if count <= 0:
            return 0
        buildings = find_instances(window, (BUILDING,), self.halo_m, rng)
        picked = buildings.pick_count(count, rng)
        window.commit(buildings.mask(picked), self.to_class, code)
        return len(picked)


class UrbanExpansion(Event):
    """A new quarter at the edge of town: paved land, an access road and a few buildings."""

    name = "urban_expansion"
    summary = "open land next to developed space becomes a new quarter with a road and buildings"
    params = (
        region_count(3, "number of new quarters in the region"),
        Param(
            "size",
            float,
            80.0,
            "side of a new quarter in metres (default 80)",
            minimum=20.0,
            maximum=100.0,
        ),
        Param(
            "road_width",
            float,
            6.0,
            "width of the access road in metres (default 6)",
            minimum=3.0,
            maximum=15.0,
        ),
    )
    transitions = pairs(EXPANDABLE, (DEVELOPED, ROAD, BUILDING)) | {(DEVELOPED, ROAD)}
    weight_classes = (DEVELOPED,)
    count_param = "count"
    counted = "quarters laid out"
    halo_m = 120.0

    def apply(self, window: EventWindow, code: int, rng: np.random.Generator, count: int) -> int:
        if count <= 0:
            return 0
        t2 = window.t2
        free = window.free()
        land = is_in(t2, EXPANDABLE) & free
        developed = is_in(t2, (DEVELOPED, BUILDING))
        edge = land & window.core_mask() & dilate(developed, 2)
        town = _Town(
            land=land,
            linkable=is_in(t2, (DEVELOPED, *EXPANDABLE)) & free,
            developed=developed,
            claimed=np.zeros(window.shape, bool),
            target=np.zeros(window.shape, np.uint8),
        )
        claimed, target = town.claimed, town.target
        made = misses = 0
        for row, col in random_pixels(edge, count * STARTS, rng):
            if made >= count or misses >= FULL_AFTER * STARTS:
                break
            if claimed[row, col]:
                continue
            quarter = self._quarter(window, (row, col), town, rng)
            if quarter is None:
                misses += 1
                continue
            misses = 0
            box, classes = quarter
            paint = classes != NODATA
            target[box][paint] = classes[paint]
            claimed[box] |= paint
            made += 1
        window.commit(claimed, target, code)
        return made

    def _quarter(
        self,
        window: EventWindow,
        anchor: tuple[int, int],
        town: _Town,
        rng: np.random.Generator,
    ) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """One quarter anchored at ``anchor``: its box and classes there (NODATA: untouched)."""
        pixel_size = window.pixel_size_m
        row, col = anchor
        claimed, target = town.claimed, town.target
        box = box_around(window.shape, row, col, self.halo_m, pixel_size)
        r, c = row - box[0].start, col - box[1].start
        open_land = town.land[box] & ~claimed[box]
        dy, dx = offsets_m(box, row, col, pixel_size)
        inside = np.hypot(dy, dx) <= self.halo_m
        normal = Proximity(town.developed[box], pixel_size).normal(r, c)
        if normal is None:
            turn = rng.uniform(0, 2 * np.pi)
            normal = (np.sin(turn), np.cos(turn))
        length = self.size * rng.uniform(0.8, 1.2)
        depth = self.size * rng.uniform(0.6, 1.0)
        offset = depth / 2 - max(pixel_size)
        angle = np.arctan2(*normal) + np.pi / 2
        parcel = rectangle(dy - offset * normal[0], dx - offset * normal[1], angle, length, depth)
        labels, _ = ndimage.label(parcel & open_land & inside, EIGHT)
        if labels[r, c] == 0:
            return None
        parcel = labels == labels[r, c]
        if parcel.sum() * window.pixel_area_m2 < 0.4 * length * depth:
            return None
        road = window.t2[box] == ROAD
        may_link = town.linkable[box] & ~claimed[box] & inside
        new_road = self._access_road(parcel, road, may_link, (r, c), normal, pixel_size)
        if new_road is None:
            return None
        lots_land = parcel & ~new_road
        roads = Proximity(road | new_road, pixel_size)
        blocked = (window.t2[box] == BUILDING) | (claimed[box] & (target[box] == BUILDING))
        want = max(2, round(parcel.sum() * window.pixel_area_m2 / 900))
        anchors = random_pixels(lots_land & roads.band(0, 30), want * ATTEMPTS, rng)
        lots = Lots(lots_land, blocked, roads)
        buildings, _ = place_buildings(
            lots, anchors, want, window.stats, rng, 3.0, 2.0, 0.2, self.halo_m
        )
        classes = np.full(parcel.shape, NODATA, np.uint8)
        classes[parcel] = DEVELOPED
        classes[new_road] = ROAD
        classes[buildings] = BUILDING
        return box, classes

    def _access_road(
        self,
        parcel: np.ndarray,
        road: np.ndarray,
        may_link: np.ndarray,
        anchor: tuple[int, int],
        normal: tuple[float, float],
        pixel_size: tuple[float, float],
    ) -> np.ndarray | None:
        """A road through the parcel from the nearest existing road, else from the town edge.

        The stretch outside the parcel may only cross ``may_link`` land; ``None`` when neither
        start works.
        """
        rows, cols = np.nonzero(parcel)
        centre = np.array([rows.mean(), cols.mean()])
        scale = np.array([pixel_size[1], pixel_size[0]])
        starts = [np.array(anchor, float)]
        if road.any():
            road_rows, road_cols = np.nonzero(road)
            near = np.hypot((road_rows - centre[0]) * scale[0], (road_cols - centre[1]) * scale[1])
            starts.insert(0, np.array([road_rows[near.argmin()], road_cols[near.argmin()]], float))
        whole = (slice(0, parcel.shape[0]), slice(0, parcel.shape[1]))
        dy, dx = offsets_m(whole, *centre, pixel_size)
        for start in starts:
            heading = (centre - start) * scale
            if np.hypot(*heading) < 1.0:
                heading = np.array(normal)
            heading /= np.hypot(*heading)
            along = (rows - centre[0]) * scale[0] * heading[0]
            along += (cols - centre[1]) * scale[1] * heading[1]
            end = centre + heading * max(along.max() - self.road_width / 2, 0.0) / scale
            box, line = stroke(parcel.shape, np.array([start, end]), self.road_width, pixel_size)
            new_road = np.zeros(parcel.shape, bool)
            new_road[box] = line
            new_road &= ~road & (parcel | (dy * heading[0] + dx * heading[1] < 0))
            if not (new_road & ~parcel & ~may_link).any():
                return new_road
        return None
