"""Vegetation events: forest cleared from its edges, trees regrowing, fields fallow or tilled."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from geochange.classes import AGRICULTURE, BARELAND, NODATA, RANGELAND, TREE
from geochange.events.base import Event, EventWindow, Param, pairs
from geochange.events.fronts import TOLERANCE, ragged_grow
from geochange.events.masks import dilate, is_in
from geochange.events.shapes import class_choice, find_instances, random_pixels

OPEN_LAND = (BARELAND, RANGELAND, AGRICULTURE)
"""Land that trees can take back."""
FALLOW = (RANGELAND, BARELAND)
"""What a field becomes when left (grass) or ploughed and bare."""
FIELD_WIDTH_M = 10.0
"""Narrowest field or parcel changed: keeps field margins and verges out."""
PATCH_M2 = 1500.0
"""Typical area of one new copse."""
CLEARING_M2 = 3000.0
"""Typical area of one clearing (under a third of a hectare)."""
LARGE_PATCH_M2 = 5000.0
"""Tree patches at least this large (woods, not street trees) take most clearings."""
ROUNDS = 6
"""Rounds of new clearings or copses, each with twice as many starts, while too little has
changed: fronts that start on a small patch or a sliver run out of room."""


def _fraction(name: str, default: float, what: str) -> Param:
    return Param(name, float, default, f"{what}, 0-1 (default {default})", 0.0, 1.0)


class Deforestation(Event):
    """Forest cleared by fronts that bite into tree patches from their edges."""

    name = "deforestation"
    summary = "tree patches cleared from their edges in ragged fronts, to bareland or fields"
    params = (
        _fraction("fraction", 0.2, "share of the tree area cleared"),
        Param("to", str, "bareland", "cleared land: bareland or agriculture (default bareland)"),
    )
    transitions = pairs((TREE,), (BARELAND, AGRICULTURE))
    weight_classes = (TREE,)
    halo_m = 100.0

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.to_class = class_choice(self.name, "to", self.to, (BARELAND, AGRICULTURE))

    def apply(self, window: EventWindow, code: int, rng: np.random.Generator, count: int) -> None:
        tree = window.t2 == TREE
        target = round(self.fraction * np.count_nonzero(tree[window.core]))
        into = tree & window.free()
        cleared = np.zeros(window.shape, bool)
        for attempt in range(ROUNDS):
            left = target - int(np.count_nonzero(cleared))
            if left <= TOLERANCE * target:
                break
            fronts = self._fronts(window, tree & ~cleared, left, 2**attempt, rng)
            cleared |= ragged_grow(
                window, fronts, into & ~cleared, left, rng, self.halo_m, 40, roughness=1.5
            )
        window.commit(cleared, self.to_class, code)

    @staticmethod
    def _fronts(
        window: EventWindow, tree: np.ndarray, target: int, more: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Where clearings start: a few points on the edge of the core's tree patches, one per
        ``CLEARING_M2`` to clear (times ``more``), mostly on large patches, so clearings bite
        deep into forests instead of shaving every patch's rim."""
        edge = dilate(tree) & ~tree & (window.t2 != NODATA) & window.core_mask()
        labels, _ = ndimage.label(tree)
        patch_m2 = np.bincount(labels.ravel()) * window.pixel_area_m2
        large = tree & (patch_m2[labels] >= LARGE_PATCH_M2)
        near_large = edge & dilate(large)
        clearings = more * max(1, round(target * window.pixel_area_m2 / CLEARING_M2))
        share_large = round(clearings * 0.8) if near_large.any() else 0
        starts = np.concatenate(
            [
                random_pixels(near_large, share_large, rng),
                random_pixels(edge, clearings - share_large, rng),
            ]
        )
        fronts = np.zeros(window.shape, bool)
        fronts[starts[:, 0], starts[:, 1]] = True
        return dilate(fronts, 2) & edge


class Regrowth(Event):
    """Trees spreading from forest edges onto open land, and new copses growing on their own."""

    name = "regrowth"
    summary = "bareland, rangeland or fields become tree, from forest edges or as new patches"
    params = (
        _fraction("fraction", 0.1, "share of the open land (bare, range, fields) that grows trees"),
        _fraction("patches", 0.3, "share of the new trees that start as separate patches"),
    )
    transitions = pairs(OPEN_LAND, (TREE,))
    weight_classes = OPEN_LAND
    halo_m = 60.0

    def apply(self, window: EventWindow, code: int, rng: np.random.Generator, count: int) -> None:
        t2, core = window.t2, window.core_mask()
        open_land = is_in(t2, OPEN_LAND) & window.free()
        target = round(self.fraction * np.count_nonzero(is_in(t2[window.core], OPEN_LAND)))
        forest = (t2 == TREE) & core
        from_edges = round(target * (1 - self.patches)) if forest.any() else 0
        grown = ragged_grow(window, forest, open_land, from_edges, rng, self.halo_m, 20, 1.0)
        for attempt in range(ROUNDS):
            left = target - int(np.count_nonzero(grown))
            room = np.flatnonzero(open_land & core & ~grown)
            if left <= TOLERANCE * target or not room.size:
                break
            n_seeds = 2**attempt * max(1, round(left * window.pixel_area_m2 / PATCH_M2))
            seeds = np.zeros(window.shape, bool)
            seeds.ravel()[room[rng.integers(room.size, size=n_seeds)]] = True
            grown |= ragged_grow(window, seeds, open_land & ~grown, left, rng, 40, 15, 0.8)
        window.commit(grown, TREE, code)


class CroplandChange(Event):
    """Whole fields left fallow or ploughed bare, and grass or bare parcels taken into tillage."""

    name = "cropland_change"
    summary = "whole fields become rangeland or bareland, and parcels next to fields become fields"
    params = (
        _fraction("fraction", 0.3, "share of the field area that changes"),
        _fraction("cultivate", 0.3, "share of that change that goes the other way (into fields)"),
        Param(
            "min_area",
            float,
            200.0,
            "smallest field or parcel changed, in m2 (default 200)",
            minimum=0.0,
        ),
    )
    transitions = pairs((AGRICULTURE,), FALLOW) | pairs(FALLOW, (AGRICULTURE,))
    weight_classes = (AGRICULTURE,)
    halo_m = 100.0

    def apply(self, window: EventWindow, code: int, rng: np.random.Generator, count: int) -> None:
        t2 = window.t2
        fields = t2 == AGRICULTURE
        target = self.fraction * np.count_nonzero(fields[window.core])
        parcels = find_instances(
            window,
            (AGRICULTURE, *FALLOW),
            self.halo_m,
            rng,
            self.min_area,
            split=(AGRICULTURE, *FALLOW),
            min_width_m=FIELD_WIDTH_M,
        )
        is_field = parcels.classes == AGRICULTURE
        fallow = parcels.pick_area(target * (1 - self.cultivate), rng, among=is_field)
        tilled = parcels.pick_area(
            target * self.cultivate, rng, among=~is_field & parcels.touching(fields)
        )
        ids = np.concatenate([fallow, tilled])
        to_class = np.concatenate(
            [
                np.array(FALLOW, np.uint8)[rng.integers(len(FALLOW), size=fallow.size)],
                np.full(tilled.size, AGRICULTURE, np.uint8),
            ]
        )
        window.commit(parcels.mask(ids), parcels.paint(ids, to_class), code)
