"""Road events: new roads that link points of the existing network across open land."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from geochange.classes import AGRICULTURE, BARELAND, DEVELOPED, RANGELAND, ROAD, TREE
from geochange.events.base import FULL_AFTER, Event, EventWindow, Param, pairs, region_count
from geochange.events.masks import EIGHT, erode, is_in
from geochange.events.shapes import (
    Box,
    Proximity,
    box_around,
    offsets_m,
    random_pixels,
    stroke,
)

ROADABLE = (BARELAND, RANGELAND, DEVELOPED, TREE, AGRICULTURE)
"""Land a new road may cross: anything but buildings and water (and roads, which it joins)."""
MIN_NEW_SHARE = 0.6
"""Share of a new road that must be new pixels, and of its middle that must keep a road width
from old roads: a link across open land, not a copy of an old road."""
STARTS = 15
"""Road pixels drawn as starts per wanted road."""
TRIES = 4
"""End points tried per kind (other road, same road, developed land) from one start."""


class RoadAdd(Event):
    """A new road between two points of the road network, or from a road to developed land."""

    name = "road_add"
    summary = "a new road linking existing roads (or a road to developed land) across open land"
    params = (
        region_count(2, "number of new roads in the region"),
        Param(
            "width",
            float,
            6.0,
            "road width in metres (default 6)",
            minimum=2.0,
            maximum=20.0,
        ),
    )
    transitions = pairs(ROADABLE, (ROAD,))
    weight_classes = (ROAD,)
    count_param = "count"
    counted = "roads built"
    halo_m = 120.0

    def apply(self, window: EventWindow, code: int, rng: np.random.Generator, count: int) -> int:
        road = window.t2 == ROAD
        if count <= 0 or not road.any():
            return 0
        open_land = is_in(window.t2, ROADABLE) & window.free()
        edge = road & ~erode(road) & window.core_mask()
        new = np.zeros(window.shape, bool)
        made = misses = 0
        for row, col in random_pixels(edge, count * STARTS, rng):
            if made >= count or misses >= FULL_AFTER * STARTS:
                break
            link = self._link(window, road | new, open_land & ~new, (row, col), rng)
            misses += 1
            if link is not None:
                new[link[0]] |= link[1]
                made += 1
                misses = 0
        window.commit(new, ROAD, code)
        return made

    def _link(
        self,
        window: EventWindow,
        road: np.ndarray,
        open_land: np.ndarray,
        anchor: tuple[int, int],
        rng: np.random.Generator,
    ) -> tuple[Box, np.ndarray] | None:
        """New road pixels from the road pixel ``anchor`` to another road or developed land.

        Ends on another road piece are tried first (they join the network), then farther points
        of the same road (a short cut), then developed land.
        """
        pixel_size = window.pixel_size_m
        reach = self.halo_m - self.width
        box = box_around(window.shape, *anchor, self.halo_m, pixel_size)
        here = np.array(anchor, float) - [box[0].start, box[1].start]
        roads, usable = road[box], open_land[box]
        dy, dx = offsets_m(box, *anchor, pixel_size)
        distance = np.hypot(dy, dx)
        far = (distance >= max(20.0, 3 * self.width)) & (distance <= reach)
        clearance = Proximity(roads, pixel_size)
        labels, _ = ndimage.label(roads, EIGHT)
        ends = roads & ~erode(roads) & far
        own = labels == labels[int(here[0]), int(here[1])]
        pools = (ends & ~own, ends & own, (window.t2[box] == DEVELOPED) & far & ~roads)
        for pool in pools:
            for end in random_pixels(pool, TRIES, rng):
                points = self._centreline(here, end.astype(float), pixel_size, rng)
                found = self._paint(points, roads, clearance, usable, pixel_size)
                if found is not None:
                    return box, found
        return None

    @staticmethod
    def _centreline(
        start: np.ndarray,
        end: np.ndarray,
        pixel_size: tuple[float, float],
        rng: np.random.Generator,
    ) -> np.ndarray:
        """A gently bent line from start to end ((k, 2) rows, cols): a quadratic curve."""
        scale = np.array([pixel_size[1], pixel_size[0]])
        a, b = start * scale, end * scale
        span = b - a
        length = float(np.hypot(*span))
        across = np.array([-span[1], span[0]]) / length
        middle = (a + b) / 2 + across * rng.uniform(-0.15, 0.15) * length
        control = 2 * middle - (a + b) / 2
        t = np.linspace(0, 1, max(3, int(length / 5) + 1))[:, None]
        curve = (1 - t) ** 2 * a + 2 * (1 - t) * t * control + t**2 * b
        return curve / scale

    def _paint(
        self,
        points: np.ndarray,
        roads: np.ndarray,
        clearance: Proximity,
        usable: np.ndarray,
        pixel_size: tuple[float, float],
    ) -> np.ndarray | None:
        """The new pixels of a road along ``points``, or None where it is blocked or not new.

        Its middle part must keep a road width of ``clearance`` from the old roads (measured to
        a lattice cell: the share of points that do is what counts), so it crosses open land
        instead of running alongside an old road.
        """
        steps = np.hypot(*np.diff(points, axis=0).T).sum()
        dense = np.linspace(0, len(points) - 1, int(2 * steps) + 2)
        # Points may lie on the far edge of the window (a fractional index that rounds past it).
        rows = np.interp(dense, np.arange(len(points)), points[:, 0]).round().astype(int)
        cols = np.interp(dense, np.arange(len(points)), points[:, 1]).round().astype(int)
        rows, cols = rows.clip(0, roads.shape[0] - 1), cols.clip(0, roads.shape[1] - 1)
        on_road = roads[rows, cols]
        if not usable[rows, cols][~on_road].all():
            return None
        middle = slice(len(dense) // 5, len(dense) - len(dense) // 5)
        if np.mean(clearance.rough(rows[middle], cols[middle]) >= self.width) < MIN_NEW_SHARE:
            return None
        box, line = stroke(roads.shape, points, self.width, pixel_size)
        fresh = line & ~roads[box]
        if fresh.sum() < MIN_NEW_SHARE * line.sum() or (fresh & ~usable[box]).any():
            return None
        out = np.zeros(roads.shape, bool)
        out[box] = fresh
        return out
