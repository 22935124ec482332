"""The dialog offers what the geochange command lists, not a copy kept in the plugin."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import processing
import pytest
from conftest import assert_dialog_fits_1000_px, use_setting
from geochange_qgis import listings
from geochange_qgis.algorithms import DEFAULT_EVENTS, LABEL_CHARS
from geochange_qgis.layers import EVENT_COLOURS, FALLBACK_COLOURS, style_changes
from geochange_qgis.settings import SettingsDialog
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsField,
    QgsGeometry,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.gui import QgsBrowserGuiModel
from qgis.PyQt.QtCore import QVariant

ALGORITHMS = ("geochange:simulate", "geochange:synth")

# A geochange with an event and schemes this plugin has never heard of, listed out of
# alphabetical order.
NEW_EVENTS = [
    {"name": "meteor", "summary": "craters where the land was", "params": [{"name": "size"}]},
]
NEW_SCHEMES = [
    {"name": "zeta", "description": "Zeta masks, codes 1-3"},
    {"name": "alpha", "description": "Alpha, RGB, 4 colours; " + "and much more " * 5},
]


@pytest.fixture(autouse=True)
def fresh_listings() -> Iterator[None]:
    """Each test asks its own command; the session's cache is emptied around it."""
    listings.forget()
    yield
    listings.forget()


def fake_geochange(
    folder: Path,
    run: str = "exit 0",
    events: str | None = None,
    classes: str | None = None,
) -> Path:
    """A shell script standing in for geochange: it records its arguments in ``calls``, lists
    NEW_EVENTS and NEW_SCHEMES (or runs ``events``/``classes`` instead) and runs ``run`` for
    any other command."""
    (folder / "events.json").write_text(json.dumps(NEW_EVENTS))
    (folder / "classes.json").write_text(json.dumps(NEW_SCHEMES))
    script = folder / "geochange"
    script.write_text(
        f"""#!/bin/sh
echo "$*" >> '{folder}/calls'
case "$1" in
  events) {events or f"cat '{folder}/events.json'"} ;;
  classes) {classes or f"cat '{folder}/classes.json'"} ;;
  *) {run} ;;
esac
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def calls(folder: Path) -> list[str]:
    path = folder / "calls"
    return path.read_text().splitlines() if path.exists() else []


def assert_offered(options: list[str], schemes: list[dict]) -> None:
    """The choices are ``name: description`` in the command's order, a long one cut short."""
    assert [option.split(": ", 1)[0] for option in options] == [s["name"] for s in schemes]
    for option, scheme in zip(options, schemes, strict=True):
        whole = f"{scheme['name']}: {scheme['description']}"
        assert option == whole or (
            len(option) == LABEL_CHARS and whole.startswith(option.removesuffix("…"))
        )


def algorithm(name: str) -> QgsProcessingAlgorithm:
    """A fresh instance, as a dialog or processing.run makes one."""
    return QgsApplication.processingRegistry().createAlgorithmById(name)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_choices_and_help_are_what_the_real_cli_lists(
    executable_setting, plugin, cli_listing, name
):
    found = algorithm(name)
    classes = found.parameterDefinition("CLASSES")
    assert_offered(classes.options(), cli_listing["classes"])
    assert classes.defaultValue() == 0 and not classes.flags() & classes.FlagOptional
    listed = {event["name"]: event for event in cli_listing["events"]}
    default = found.parameterDefinition("EVENTS").defaultValue()
    assert default == ",".join(f"{e}:{p}={v}" for e, p, v in DEFAULT_EVENTS)
    for event, param, _ in DEFAULT_EVENTS:
        assert param in [p["name"] for p in listed[event]["params"]]
    if name == "geochange:simulate":
        for scheme in cli_listing["classes"]:
            assert f"- {scheme['name']}: {scheme['description']}\n" in found.shortHelpString()
        for event in listed.values():
            assert f"- {event['name']} (" in found.shortHelpString()
            assert event["summary"] in found.shortHelpString()


def test_event_colours_name_only_events_the_cli_lists(cli_listing):
    """A colour left behind by a renamed event would colour nothing."""
    assert set(EVENT_COLOURS) <= {event["name"] for event in cli_listing["events"]}


def test_new_event_and_schemes_show_up_in_the_command_order(plugin, tmp_path):
    with use_setting(str(fake_geochange(tmp_path))):
        found = algorithm("geochange:simulate")
    options = found.parameterDefinition("CLASSES").options()
    assert options[0] == "zeta: Zeta masks, codes 1-3"
    assert options[1].startswith("alpha: Alpha, RGB, 4 colours; and much more")
    assert options[1].endswith("…") and len(options[1]) == LABEL_CHARS
    assert_offered(options, NEW_SCHEMES)
    assert f"- alpha: {NEW_SCHEMES[1]['description']}\n" in found.shortHelpString()
    assert "- meteor (size): craters where the land was" in found.shortHelpString()
    assert "such as meteor." in found.shortHelpString()
    # building_add and deforestation are not listed, so they are not offered either.
    assert found.parameterDefinition("EVENTS").defaultValue() == ""


def test_a_long_scheme_description_does_not_widen_the_dialog(
    plugin, qgis_iface, qgis_new_project, tmp_path, monkeypatch
):
    browser = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser, raising=False)
    with use_setting(str(fake_geochange(tmp_path))):
        assert_dialog_fits_1000_px(plugin, "geochange:simulate")


def test_a_run_passes_the_chosen_scheme_and_loads_every_output(
    plugin, houston, tmp_path, qgis_new_project
):
    output = tmp_path / "out"
    result = {
        "type": "result",
        "output": str(output),
        "files": {
            "t2_landcover": str(houston),
            "t3_landcover": str(houston),
            "run": str(tmp_path / "run.json"),
            "preview": str(tmp_path / "preview.png"),
        },
    }
    (tmp_path / "result.json").write_text(json.dumps(result))
    script = fake_geochange(tmp_path, run=f"cat '{tmp_path}/result.json'")
    with use_setting(str(script)):
        results = processing.run(
            "geochange:simulate",
            {"INPUT": str(houston), "CLASSES": 1, "EVENTS": "meteor", "OUTPUT": str(output)},
        )
    run = calls(tmp_path)[-1].split()
    assert run[run.index("--classes") + 1] == "alpha"
    assert results["T2_LANDCOVER"] == results["T3_LANDCOVER"] == str(houston)
    assert results["PREVIEW"] == str(tmp_path / "preview.png")
    group = QgsProject.instance().layerTreeRoot().findGroup("out")
    assert [node.name() for node in group.findLayers()] == ["land cover t2 (after)", "t3 landcover"]
    assert [node.itemVisibilityChecked() for node in group.findLayers()] == [True, False]


def test_an_error_names_a_listed_scheme_as_the_fields_value(plugin, houston, tmp_path):
    line = json.dumps({"type": "error", "message": "values 9 unknown: try --classes zeta"})
    script = fake_geochange(tmp_path, run=f"echo '{line}'; exit 2")
    with use_setting(str(script)), pytest.raises(QgsProcessingException) as raised:
        processing.run("geochange:simulate", {"INPUT": str(houston), "OUTPUT": str(tmp_path / "o")})
    assert "try Class scheme (CLASSES, CLASSES_FILE) = zeta" in str(raised.value)


def test_a_command_that_cannot_list_says_why_in_the_dialog_and_does_not_run(
    plugin, houston, tmp_path
):
    """A geochange older than the classes listing: the reason heads the help and stops a run."""
    old = "echo \"Error: No such command 'classes'.\" >&2; exit 2"
    script = fake_geochange(tmp_path, classes=old)
    with use_setting(str(script)):
        found = algorithm("geochange:simulate")
        with pytest.raises(QgsProcessingException, match="No such command 'classes'"):
            processing.run(
                "geochange:simulate", {"INPUT": str(houston), "OUTPUT": str(tmp_path / "o")}
            )
    help_text = found.shortHelpString()
    assert help_text.startswith("The geochange command could not be asked")
    assert f"{script} classes --json failed (exit status 2)" in help_text
    assert "Plugins › geochange › Settings…" in help_text
    assert "- meteor (size)" in help_text  # the events it could list are still offered
    classes = found.parameterDefinition("CLASSES")
    assert classes.options() == [] and classes.flags() & classes.FlagOptional
    assert found.checkParameterValues({"INPUT": str(houston)}, None)[0] is False
    assert sorted(calls(tmp_path)) == ["classes --json", "events --json"]


def test_a_command_that_hangs_is_given_up_on(plugin, tmp_path, monkeypatch):
    monkeypatch.setattr(listings, "LISTING_TIMEOUT_S", 1.0)
    script = fake_geochange(tmp_path, events="exec sleep 30")
    began = time.monotonic()
    with use_setting(str(script)):
        found = algorithm("geochange:simulate")
    assert time.monotonic() - began < 10
    help_text = found.shortHelpString()
    assert f"{script} events --json did not answer within 1 s" in help_text
    assert "Events: a comma-separated list of event:parameter=value" in help_text
    assert found.parameterDefinition("EVENTS").defaultValue() == ""


def test_listings_are_asked_once_until_the_settings_are_saved(plugin, tmp_path):
    script = fake_geochange(tmp_path)
    with use_setting(str(script)):
        for name in (*ALGORITHMS, *ALGORITHMS):
            algorithm(name)
        assert sorted(calls(tmp_path)) == ["classes --json", "events --json"]
        dialog = SettingsDialog()
        dialog.path.setFilePath(str(script))
        dialog.accept()
        algorithm("geochange:simulate")
    assert len(calls(tmp_path)) == 4


def test_an_unknown_event_gets_its_own_legend_entry(qgis_new_project):
    layer = QgsVectorLayer("Polygon?crs=EPSG:4326", "changes", "memory")
    layer.dataProvider().addAttributes([QgsField("event", QVariant.String)])
    layer.updateFields()
    for number, event in enumerate(("meteor", "flood")):
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(number, 0, number + 1, 1)))
        feature["event"] = event
        layer.dataProvider().addFeatures([feature])
    style_changes(layer)
    categories = {c.value(): c for c in layer.renderer().categories()}
    assert sorted(categories) == ["flood", "meteor"]
    assert categories["meteor"].label() == "meteor"
    meteor = categories["meteor"].symbol().symbolLayer(0).strokeColor().name()
    assert meteor in FALLBACK_COLOURS and meteor != EVENT_COLOURS["flood"]
