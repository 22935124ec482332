"""What every change event shares: parameters, the window it edits, and the one way to commit edits.

An event edits one *window*: a block of the raster plus a halo around it. It may only start
(anchor) an edit inside the block's core, and must keep the edit inside the window, so an edit
near a block border is finished in the halo instead of being cut. Blocks are processed in an
order that lets each window see the edits of the blocks before it (see ``geochange.plan``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from geochange.classes import NODATA, NUM_CLASSES
from geochange.errors import InputError
from geochange.events.masks import bounding_box, pieces

MAX_COUNT = 100_000
"""Upper bound of every ``count`` parameter: far above any real scenario, low enough that the
attempts an event draws for it fit in memory."""
DEFAULT_MIN_AREA_M2 = 4.0
"""Default least area of a change kept after the events (``geochange.clean``): 16 pixels at
0.5 m, a small shed; below one pixel's area nothing is cleaned."""
FULL_AFTER = 20
"""Wanted objects in a row that found no place: the block is full and the rest are not tried
(else a count far above what fits would try every start of every one of them)."""


@dataclass(frozen=True)
class Param:
    """One event parameter: its name, type, default, unit and help text."""

    name: str
    kind: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None

    def parse(self, event: str, text: str) -> Any:
        kind = self.kind.__name__
        try:
            if self.kind in (int, float) and (not text.isascii() or "_" in text):
                # Python reads '１０' and '1_0' as 10; a typo should not become a number
                raise ValueError(text)
            value = self.kind(text)
        except ValueError as err:
            article = "an" if kind[0] in "aeiou" else "a"
            raise InputError(
                f"parameter {event}:{self.name}={text!r} is not {article} {kind}",
                f"give {article} {kind}, e.g. {event}:{self.name}={self.default}",
            ) from err
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(
                f"parameter {event}:{self.name}={text!r} is not a finite number",
                f"give a number in its range: {self.range_text()}",
            )
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise InputError(
                f"parameter {event}:{self.name}={value} is outside its range: {self.range_text()}",
                "see `geochange events` for every parameter's range and unit",
            )
        return value

    def range_text(self) -> str:
        """``0 to 1``, ``at least 0``, ... for messages."""
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"at least {self.minimum}"
        if self.maximum is not None:
            return f"at most {self.maximum}"
        return "any value"


@dataclass
class RegionStats:
    """Facts about the whole region that events draw from (measured in the scan pass)."""

    building_sizes_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    """(length, width) in metres of a sample of the region's own buildings."""
    class_pixels: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES, np.int64))


@dataclass
class EventWindow:
    """One block plus its halo, as class indices (``NODATA`` = 255), for an event to edit."""

    t1: np.ndarray
    """Land cover before any event; read only."""
    t2: np.ndarray
    """Land cover after the events so far; events edit it through :meth:`commit`."""
    event: np.ndarray
    """Event code per pixel (0 = unchanged); a pixel is changed by at most one event."""
    core: tuple[slice, slice]
    """The block inside the window: edits must be anchored here."""
    pixel_size_m: tuple[float, float]
    """Pixel width and height in metres."""
    stats: RegionStats
    allowed: np.ndarray | None = None
    """Where the events given with ``--where`` may act (``None``: everywhere)."""
    min_pixels: int = 4
    """Connected pieces of one edit smaller than this are dropped (no specks)."""

    @property
    def shape(self) -> tuple[int, int]:
        return self.t1.shape  # type: ignore[return-value]

    @property
    def pixel_area_m2(self) -> float:
        return self.pixel_size_m[0] * self.pixel_size_m[1]

    def core_mask(self) -> np.ndarray:
        mask = np.zeros(self.shape, bool)
        mask[self.core] = True
        return mask

    def free(self) -> np.ndarray:
        """Pixels an event may still change: valid, unchanged so far and allowed."""
        free = (self.event == 0) & (self.t1 != NODATA)
        if self.allowed is not None:
            free &= self.allowed
        return free

    def commit(self, mask: np.ndarray, to_class: int | np.ndarray, code: int) -> int:
        """Apply an edit: set ``mask`` pixels to ``to_class`` under event ``code``.

        Only free pixels whose class actually changes are edited, and pieces smaller than
        ``min_pixels`` are dropped, so every event obeys the same rules. Returns pixels changed.
        """
        target = np.broadcast_to(np.asarray(to_class, dtype=np.uint8), self.shape)
        edit = mask & self.free() & (self.t1 != target)
        box = bounding_box(edit)
        if box is None:
            return 0
        edit = edit[box]
        if self.min_pixels > 1:
            # labelled in the edit's box only, tile by tile where the edit is sparse
            found = pieces(edit, corners=False)
            flat = found.pixels(found.sizes >= self.min_pixels)
        else:
            flat = np.flatnonzero(edit)
        rows, cols = np.divmod(flat, edit.shape[1])
        rows += box[0].start
        cols += box[1].start
        self.t2[rows, cols] = target[rows, cols]
        self.event[rows, cols] = code
        return int(flat.size)


class Event(ABC):
    """A named, parameterised change event (see ``geochange events``)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    transitions: ClassVar[frozenset[tuple[int, int]]]
    """Every (from, to) class pair this event may produce."""
    weight_classes: ClassVar[tuple[int, ...]]
    """Classes whose pixel count decides a block's share of a ``count`` parameter."""
    count_param: ClassVar[str | None] = None
    """Name of the parameter that is a total over the region (split among blocks), if any."""
    counted: ClassVar[str] = "objects made"
    """What ``count_param`` counts, with its verb, for the warning when fewer were made."""
    halo_m: ClassVar[float] = 100.0
    """How far an edit may reach from its anchor, in metres (the plan's halo covers it)."""

    def __init__(self, **values: Any) -> None:
        for key in values:
            self.param(key)
        self.values = {p.name: values.get(p.name, p.default) for p in self.params}

    @classmethod
    def param(cls, key: str) -> Param:
        """The parameter named ``key``; an unknown name is an error listing the valid ones."""
        for param in cls.params:
            if param.name == key:
                return param
        names = ", ".join(p.name for p in cls.params) or "none"
        raise InputError(
            f"event {cls.name!r} has no parameter {key!r}",
            f"valid parameters: {names} (see `geochange events`)",
        )

    def __getattr__(self, key: str) -> Any:
        values = self.__dict__.get("values", {})
        if key in values:
            return values[key]
        raise AttributeError(key)

    def __repr__(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.values.items())
        return f"{self.name}:{args}" if args else self.name

    @abstractmethod
    def apply(
        self, window: EventWindow, code: int, rng: np.random.Generator, count: int
    ) -> int | None:
        """Edit ``window`` through ``window.commit(..., code=code)``.

        ``count`` is this block's share of the ``count_param`` total (0 when the event has none).
        An event with a ``count_param`` returns how many it made, so that a run whose region had
        no room for them all says so; the others return None.
        """


def region_count(default: int, what: str) -> Param:
    """The ``count`` parameter of an event: a total over the region, split among blocks."""
    return Param("count", int, default, f"{what} (default {default})", 0, MAX_COUNT)


def pairs(from_classes: tuple[int, ...], to_classes: tuple[int, ...]) -> frozenset[tuple[int, int]]:
    """All (from, to) pairs between two class sets, excluding identity."""
    return frozenset((a, b) for a in from_classes for b in to_classes if a != b)


ALL_CLASSES = tuple(range(NUM_CLASSES))
