"""Water events: a flood spreading over low land, and water receding from its shore."""

from __future__ import annotations

import numpy as np

from geochange.classes import AGRICULTURE, BARELAND, DEVELOPED, NODATA, RANGELAND, WATER
from geochange.events.base import Event, EventWindow, Param, pairs
from geochange.events.fronts import ragged_grow
from geochange.events.masks import is_in

FLOODABLE = (BARELAND, RANGELAND, AGRICULTURE, DEVELOPED)
"""Land a flood covers. Trees, buildings and roads are left out: canopies and roofs stand above
the water and roads usually run on embankments, so an image still shows them (and so must the
map); a flood is therefore held back by them, as by dykes."""


class Flood(Event):
    """Water spreading from the shore over low land, in ragged tongues."""

    name = "flood"
    summary = "water grows over adjacent bareland, rangeland, fields and developed space"
    params = (
        Param(
            "fraction",
            float,
            0.3,
            "growth of the water area, as a share of it (default 0.3)",
            minimum=0.0,
            maximum=5.0,
        ),
        Param(
            "distance",
            float,
            30.0,
            "farthest the flood reaches inland, in metres (default 30)",
            minimum=1.0,
            maximum=120.0,
        ),
    )
    transitions = pairs(FLOODABLE, (WATER,))
    weight_classes = (WATER,)
    halo_m = 120.0

    def apply(self, window: EventWindow, code: int, rng: np.random.Generator, count: int) -> None:
        water = window.t2 == WATER
        target = round(self.fraction * np.count_nonzero(water[window.core]))
        into = is_in(window.t2, FLOODABLE) & window.free()
        flooded = ragged_grow(
            window, water & window.core_mask(), into, target, rng, self.distance, 40, 1.5
        )
        window.commit(flooded, WATER, code)


class WaterRecede(Event):
    """Water shrinking from its shore, leaving bare banks with ragged edges."""

    name = "water_recede"
    summary = "water shrinks from its shore, leaving bareland"
    params = (
        Param(
            "fraction",
            float,
            0.2,
            "share of the water area that dries, 0-1 (default 0.2)",
            minimum=0.0,
            maximum=1.0,
        ),
    )
    transitions = pairs((WATER,), (BARELAND,))
    weight_classes = (WATER,)
    halo_m = 100.0

    def apply(self, window: EventWindow, code: int, rng: np.random.Generator, count: int) -> None:
        t2 = window.t2
        water = t2 == WATER
        target = round(self.fraction * np.count_nonzero(water[window.core]))
        shore = ~water & (t2 != NODATA) & window.core_mask()
        dried = ragged_grow(window, shore, water & window.free(), target, rng, self.halo_m, 40, 0.7)
        window.commit(dried, BARELAND, code)
