"""Changen2-style object changes: whole objects change class through a transition table.

Transition table (from -> possible to, one drawn uniformly per object):

==================  ===========================================================
bareland            rangeland, agriculture land, developed space
rangeland           bareland, agriculture land, tree, developed space
developed space     bareland, rangeland
tree                bareland, rangeland, agriculture land
water               bareland, rangeland
agriculture land    bareland, rangeland, developed space
building            bareland, developed space
road                (none: roads are linear networks, not objects to swap)
==================  ===========================================================

Nothing becomes building or water: a whole field turned into one building, or into a lake of
exactly its shape, is not a change seen in real pairs (``building_add`` and ``flood`` make
those). Large bareland, rangeland, tree and field areas are cut into field-sized parcels first,
so a change has a size that fits the halo, as clear-cuts and field conversions do, and no larger
than twice the area wanted, so that a small window full of one wood still has one to change.
"""

from __future__ import annotations

import numpy as np

from geochange.classes import (
    AGRICULTURE,
    BARELAND,
    BUILDING,
    DEVELOPED,
    NODATA,
    RANGELAND,
    TREE,
    WATER,
)
from geochange.events.base import Event, EventWindow, Param
from geochange.events.shapes import find_instances

TABLE: dict[int, tuple[int, ...]] = {
    BARELAND: (RANGELAND, AGRICULTURE, DEVELOPED),
    RANGELAND: (BARELAND, AGRICULTURE, TREE, DEVELOPED),
    DEVELOPED: (BARELAND, RANGELAND),
    TREE: (BARELAND, RANGELAND, AGRICULTURE),
    WATER: (BARELAND, RANGELAND),
    AGRICULTURE: (BARELAND, RANGELAND, DEVELOPED),
    BUILDING: (BARELAND, DEVELOPED),
}
PARCELLED = (BARELAND, RANGELAND, TREE, AGRICULTURE)
"""Classes whose large areas are cut into parcels rather than left unchanged."""
MIN_WIDTH_M = 5.0
"""Narrowest object changed: strips (verges, margins, ditches) are parts of a scene, not objects."""


class RandomTransition(Event):
    """Random whole objects changed to another class allowed by the transition table."""

    name = "random"
    summary = "whole objects change class by the Changen2-style transition table"
    params = (
        Param(
            "fraction",
            float,
            0.1,
            "share of the area whose objects change, 0-1 (default 0.1)",
            minimum=0.0,
            maximum=1.0,
        ),
        Param(
            "min_area",
            float,
            50.0,
            "smallest object changed, in m2 (default 50)",
            minimum=0.0,
        ),
    )
    transitions = frozenset((a, b) for a, targets in TABLE.items() for b in targets)
    weight_classes = tuple(TABLE)
    halo_m = 100.0

    def apply(self, window: EventWindow, code: int, rng: np.random.Generator, count: int) -> None:
        target = self.fraction * np.count_nonzero(window.t2[window.core] != NODATA)
        if target == 0:
            return
        objects = find_instances(
            window,
            tuple(TABLE),
            self.halo_m,
            rng,
            self.min_area,
            split=PARCELLED,
            min_width_m=MIN_WIDTH_M,
            largest_m2=2 * target * window.pixel_area_m2,  # the most ``pick_area`` takes
        )
        ids = objects.pick_area(target, rng)
        to_class = np.zeros(ids.size, np.uint8)
        for source, targets in TABLE.items():
            these = objects.classes[ids] == source
            to_class[these] = np.array(targets, np.uint8)[
                rng.integers(len(targets), size=int(these.sum()))
            ]
        window.commit(objects.mask(ids), objects.paint(ids, to_class), code)
