"""Named change events and the ``--events name:key=value,...`` syntax."""

from __future__ import annotations

from geochange.errors import InputError
from geochange.events.base import Event, EventWindow, Param, RegionStats
from geochange.events.buildings import BuildingAdd, BuildingRemove, UrbanExpansion
from geochange.events.roads import RoadAdd
from geochange.events.transitions import RandomTransition
from geochange.events.vegetation import CroplandChange, Deforestation, Regrowth
from geochange.events.water import Flood, WaterRecede

EVENTS: dict[str, type[Event]] = {
    cls.name: cls
    for cls in (
        BuildingAdd,
        BuildingRemove,
        Deforestation,
        Regrowth,
        UrbanExpansion,
        RoadAdd,
        Flood,
        WaterRecede,
        CroplandChange,
        RandomTransition,
    )
}

__all__ = ["EVENTS", "Event", "EventWindow", "Param", "RegionStats", "parse_events"]


def parse_events(spec: str) -> list[Event]:
    """Parse ``building_add:count=30,deforestation:fraction=0.2`` into events.

    A comma starts a new event unless the text after it is ``key=value`` for the current one.
    """
    events: list[Event] = []
    current: tuple[type[Event], dict[str, object]] | None = None
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if "=" in part and ":" not in part.split("=", 1)[0]:
            if current is None:
                raise InputError(f"parameter {part!r} comes before any event name")
            parsed = _parse_param(current[0], part)
            for key, value in parsed.items():
                if key in current[1]:
                    raise InputError(
                        f"parameter {current[0].name}:{key} is given twice "
                        f"({current[1][key]} and {value})",
                        "give each parameter once per event",
                    )
            current[1].update(parsed)
            continue
        if current is not None:
            events.append(current[0](**current[1]))
        name, _, first = part.partition(":")
        cls = _lookup(name.strip())
        current = (cls, _parse_param(cls, first) if first else {})
    if current is not None:
        events.append(current[0](**current[1]))
    return events


def _lookup(name: str) -> type[Event]:
    if name not in EVENTS:
        raise InputError(
            f"unknown event {name!r}",
            f"valid events: {', '.join(EVENTS)} (see `geochange events`)",
        )
    return EVENTS[name]


def _parse_param(cls: type[Event], text: str) -> dict[str, object]:
    key, sep, value = (part.strip() for part in text.partition("="))
    param = cls.param(key)
    if not sep:
        raise InputError(
            f"parameter {cls.name}:{key} has no value",
            f"write key=value, e.g. {cls.name}:{key}={param.default}",
        )
    return {key: param.parse(cls.name, value)}
