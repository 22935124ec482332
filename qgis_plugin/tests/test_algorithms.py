"""The algorithms through processing.run and the real geochange CLI, on real land cover."""

from __future__ import annotations

import itertools
import re
import subprocess
import time

import numpy as np
import processing
import pytest
from conftest import use_setting
from geochange_qgis import runner
from geochange_qgis.layers import EVENT_COLOURS
from qgis.core import (
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsFeature,
    QgsField,
    QgsGeometry,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QVariant
from qgis.PyQt.QtGui import QColor

CLASSES = [
    "bareland",
    "rangeland",
    "developed space",
    "road",
    "tree",
    "water",
    "agriculture land",
    "building",
]


def group_layers(name: str) -> dict:
    group = QgsProject.instance().layerTreeRoot().findGroup(name)
    assert group is not None, f"no layer group {name!r}"
    return {node.layer().name(): node.layer() for node in group.findLayers()}


def assert_same_grid(layer, source: QgsRasterLayer) -> None:
    assert layer.crs() == source.crs()
    for got, want in zip(extent_tuple(layer.extent()), extent_tuple(source.extent()), strict=True):
        assert got == pytest.approx(want, abs=1e-9)
    assert (layer.width(), layer.height()) == (source.width(), source.height())


def extent_tuple(rect: QgsRectangle) -> tuple[float, ...]:
    return rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()


def cielab(colours: list[QColor]) -> np.ndarray:
    """CIELAB (D65) of sRGB colours: distances in it follow how different colours look."""
    rgb = np.array([[c.red(), c.green(), c.blue()] for c in colours]) / 255
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array(
        [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    )
    xyz = linear @ to_xyz.T / [0.95047, 1.0, 1.08883]
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def distance_from_white(colours: list[QColor]) -> np.ndarray:
    return np.linalg.norm(cielab(colours) - cielab([QColor("white")]), axis=1)


def assert_land_cover_palette(layer) -> None:
    renderer = layer.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [c.value for c in renderer.classes()] == list(range(1, 9))
    assert [c.label for c in renderer.classes()] == CLASSES
    # Every swatch readable on the white layers panel (OpenEarthMap's road is white).
    assert distance_from_white([c.color for c in renderer.classes()]).min() >= 30


def test_event_colours_are_distinct_and_readable_on_white():
    colours = {event: QColor(colour) for event, colour in EVENT_COLOURS.items()}
    lab = dict(zip(colours, cielab(list(colours.values())), strict=True))
    for a, b in itertools.combinations(lab, 2):
        assert np.linalg.norm(lab[a] - lab[b]) >= 40, (a, b)
    assert distance_from_white(list(colours.values())).min() >= 40


@pytest.mark.parametrize("algorithm", ["geochange:simulate", "geochange:synth"])
def test_help_and_outputs_read_as_text(plugin, algorithm):
    """qgis_process help prints these as they are: no HTML tags, no raw result keys."""
    found = QgsApplication.processingRegistry().algorithmById(algorithm)
    assert not re.search(r"</?[a-z]+[^>]*>", found.shortHelpString())
    for output in found.outputDefinitions():
        assert "_" not in output.description() and output.description()[0].isupper()
    for parameter in found.parameterDefinitions():
        assert len(parameter.description()) <= 48, parameter.description()


def test_simulate_loads_styled_layers_on_the_input_grid(
    plugin, executable_setting, houston, tmp_path, qgis_new_project
):
    source = QgsRasterLayer(str(houston), "houston")
    output = tmp_path / "houston_run"
    results = processing.run(
        "geochange:simulate",
        {
            "INPUT": str(houston),
            "EVENTS": "building_add:count=10,deforestation:fraction=0.2",
            "SEED": 1,
            "OUTPUT": str(output),
        },
    )
    assert results["OUTPUT"] == str(output)
    assert results["T2_LANDCOVER"] == str(output / "t2_landcover.tif")
    layers = group_layers("houston_run")
    assert set(layers) == {
        "change polygons",
        "change mask",
        "land cover t1 (before)",
        "land cover t2 (after)",
    }
    for name in ("land cover t1 (before)", "land cover t2 (after)", "change mask"):
        assert_same_grid(layers[name], source)
    assert_land_cover_palette(layers["land cover t1 (before)"])
    assert_land_cover_palette(layers["land cover t2 (after)"])
    changes = layers["change polygons"]
    assert changes.crs() == source.crs()
    assert changes.featureCount() > 0
    renderer = changes.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer)
    assert renderer.classAttribute() == "event"
    events = {c.value() for c in renderer.categories()}
    assert "building_add" in events
    assert len(renderer.legendSymbolItems()) == len(events)


def test_user_drawn_memory_polygons_become_changes(
    plugin, executable_setting, houston, tmp_path, qgis_new_project
):
    source = QgsRasterLayer(str(houston), "houston")
    centre = source.extent().center()
    size = source.extent().width() / 10
    drawn = QgsVectorLayer(f"Polygon?crs={source.crs().authid()}", "drawn", "memory")
    drawn.dataProvider().addAttributes([QgsField("to_class", QVariant.String)])
    drawn.updateFields()
    feature = QgsFeature(drawn.fields())
    feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(centre, centre).buffered(size)))
    feature["to_class"] = "water"
    drawn.dataProvider().addFeatures([feature])
    QgsProject.instance().addMapLayer(drawn)
    processing.run(
        "geochange:simulate",
        {"INPUT": str(houston), "EVENTS": "", "CHANGES": drawn, "OUTPUT": str(tmp_path / "drawn")},
    )
    t2 = group_layers("drawn")["land cover t2 (after)"]
    value, ok = t2.dataProvider().sample(QgsPointXY(centre), 1)
    assert ok and value == 6  # water


def test_change_layer_without_to_class_is_refused(
    plugin, executable_setting, houston, tmp_path, qgis_new_project
):
    drawn = QgsVectorLayer("Polygon?crs=EPSG:4326", "no field", "memory")
    QgsProject.instance().addMapLayer(drawn)
    with pytest.raises(QgsProcessingException, match="to_class"):
        processing.run(
            "geochange:simulate",
            {"INPUT": str(houston), "CHANGES": drawn, "OUTPUT": str(tmp_path / "x")},
        )
    assert not (tmp_path / "x").exists()


def test_synth_loads_rgb_images_on_the_input_grid(
    plugin, executable_setting, houston, tiny_model, tmp_path, qgis_new_project
):
    source = QgsRasterLayer(str(houston), "houston")
    processing.run(
        "geochange:synth",
        {
            "INPUT": str(houston),
            "EVENTS": "building_add:count=5",
            "MODEL": str(tiny_model),
            "DEVICE": 1,
            "STEPS": 2,
            "OUTPUT": str(tmp_path / "painted"),
        },
    )
    layers = group_layers("painted")
    assert {"image t1 (before)", "image t2 (after)", "land cover t2 (after)"} <= set(layers)
    for name in ("image t1 (before)", "image t2 (after)"):
        image = layers[name]
        assert_same_grid(image, source)
        renderer = image.renderer()
        assert isinstance(renderer, QgsMultiBandColorRenderer)
        assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (1, 2, 3)
    assert_same_grid(layers["land cover t2 (after)"], source)
    assert_land_cover_palette(layers["land cover t2 (after)"])
    # QGIS found each band's statistics in the files, so it wrote nothing beside them.
    assert sorted(p.name for p in (tmp_path / "painted").glob("*.aux.xml")) == []


class CancelOnFirstProgress(QgsProcessingFeedback):
    """Cancels as soon as the CLI reports progress, i.e. mid-run."""

    def setProgress(self, progress: float) -> None:  # noqa: N802 (QGIS API)
        super().setProgress(progress)
        self.cancel()


def test_cancel_stops_the_subprocess_and_leaves_no_output(
    plugin, executable_setting, big_region, tmp_path, monkeypatch, qgis_new_project
):
    started = []

    class RecordingPopen(subprocess.Popen):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(runner.subprocess, "Popen", RecordingPopen)
    output = tmp_path / "cancelled"
    began = time.monotonic()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run(
            "geochange:simulate",
            {
                "INPUT": str(big_region),
                "EVENTS": "building_add:count=200,deforestation:fraction=0.3",
                "BLOCK_SIZE": 512,
                "OUTPUT": str(output),
            },
            feedback=CancelOnFirstProgress(),
        )
    assert time.monotonic() - began < runner.TERMINATE_GRACE_S + 30
    assert len(started) == 1
    assert started[0].returncode is not None  # the child has exited and was reaped
    assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert QgsProject.instance().layerTreeRoot().findGroup("cancelled") is None


def test_wrong_executable_path_gives_install_message(plugin, houston, tmp_path):
    wrong = tmp_path / "not-here" / "geochange"
    with use_setting(str(wrong)), pytest.raises(QgsProcessingException) as raised:
        processing.run(
            "geochange:simulate", {"INPUT": str(houston), "OUTPUT": str(tmp_path / "out")}
        )
    message = str(raised.value)
    assert str(wrong) in message
    assert "pip install geochange" in message
    assert "geochange/executable" in message
