"""The listings the QGIS plugin builds its choices from: `geochange classes|events --json`.

They run as the plugin runs them, in a subprocess whose stdout must be one JSON document, and
must name exactly what geochange knows, in its order (the plugin's enum indices follow it).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from geochange.classes import NODATA, SCHEMES, ClassScheme, load_scheme
from geochange.cli.classes import SOURCES, describe
from geochange.cli.simulate import simulate
from geochange.events import EVENTS


def listing(command: str, *options: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "geochange.cli", command, *options],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def schemes() -> list[dict]:
    return json.loads(listing("classes", "--json").stdout)


def test_classes_json_lists_exactly_the_built_in_schemes_in_order(schemes):
    assert [item["name"] for item in schemes] == list(SCHEMES)
    for item in schemes:
        assert load_scheme(item["name"]) is SCHEMES[item["name"]]
        assert item["description"] == describe(SCHEMES[item["name"]])


def test_first_listed_scheme_is_the_default_of_classes(schemes):
    """The plugin preselects the first scheme listed; it must be what the CLI uses unasked."""
    option = next(p for p in simulate.params if p.name == "classes")
    assert schemes[0]["name"] == option.default


def test_every_data_set_title_belongs_to_a_scheme():
    """A title left behind by a renamed or removed scheme would describe nothing."""
    assert set(SOURCES) <= set(SCHEMES)


def test_descriptions_are_read_from_the_scheme():
    assert describe(SCHEMES["oem"]) == "OpenEarthMap, codes 1-8; 0 no data"
    assert describe(SCHEMES["potsdam"]).endswith("codes 1-5; 0, 6 no data")
    made_up = ClassScheme("made-up", codes={3: 0, 5: 1, 7: 2, 9: 3, 200: NODATA})
    assert describe(made_up) == "codes 3, 5, ..., 9; 200 no data"
    colours = ClassScheme("rgb", colours={(1, 2, 3): 0, (4, 5, 6): 1, (0, 0, 0): NODATA})
    assert describe(colours) == "RGB, 2 colours; 1 no data"


def test_classes_text_gives_one_line_per_scheme():
    lines = listing("classes").stdout.splitlines()
    rows = dict(line.split(maxsplit=1) for line in lines[: len(SCHEMES)])
    assert rows == {name: describe(scheme) for name, scheme in SCHEMES.items()}
    assert "YAML" in lines[-1]


def test_events_json_names_every_event_in_order_with_its_summary():
    events = json.loads(listing("events", "--json").stdout)
    assert [item["name"] for item in events] == list(EVENTS)
    for item in events:
        assert item["summary"] == EVENTS[item["name"]].summary
        assert [p["name"] for p in item["params"]] == [p.name for p in EVENTS[item["name"]].params]
