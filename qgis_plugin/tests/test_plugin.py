"""The plugin loads, registers its provider and opens the simulate dialog from its button."""

from __future__ import annotations

import sys
import time
from unittest import mock

import pytest
from conftest import assert_dialog_fits_1000_px, use_setting
from geochange_qgis import classFactory
from geochange_qgis.plugin import GeochangePlugin
from geochange_qgis.runner import SETTINGS_KEY
from geochange_qgis.settings import SettingsDialog
from processing.gui.AlgorithmDialog import AlgorithmDialog
from qgis.core import (
    QgsApplication,
    QgsLayerTreeModel,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProject,
    QgsRasterLayer,
    QgsSettings,
)
from qgis.gui import QgsBrowserGuiModel, QgsLayerTreeView
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QPushButton


def test_class_factory_and_init_gui_add_button_and_menu(qgis_iface, qgis_processing):
    with (
        mock.patch.object(qgis_iface, "addToolBarIcon") as toolbar,
        mock.patch.object(qgis_iface, "addPluginToMenu") as menu,
    ):
        plugin = classFactory(qgis_iface)
        assert isinstance(plugin, GeochangePlugin)
        plugin.initGui()
    try:
        toolbar.assert_called_once_with(plugin.simulate_action)
        assert [c.args for c in menu.call_args_list] == [
            ("geochange", plugin.simulate_action),
            ("geochange", plugin.synth_action),
            ("geochange", plugin.settings_action),
        ]
        assert [a.text() for a in plugin.actions] == [
            "Simulate change…",
            "Synthesize images…",
            "Settings…",
        ]
        assert not plugin.simulate_action.icon().isNull()
    finally:
        plugin.unload()
    assert QgsApplication.processingRegistry().providerById("geochange") is None


def test_provider_and_both_algorithms_are_registered(executable_setting, plugin, cli_listing):
    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("geochange")
    assert provider is not None
    assert sorted(a.id() for a in provider.algorithms()) == [
        "geochange:simulate",
        "geochange:synth",
    ]
    simulate = registry.algorithmById("geochange:simulate")
    synth = registry.algorithmById("geochange:synth")
    assert simulate.displayName() == "Simulate land-cover change"
    assert synth.displayName() == "Synthesize change images"
    common = {"INPUT", "CLASSES", "EVENTS", "BUILDINGS", "CHANGES", "WHERE", "SEED", "BLOCK_SIZE"}
    common |= {"OUTPUT", "OVERWRITE", "LOAD_RESULTS"}
    simulate_names = {p.name() for p in simulate.parameterDefinitions()}
    synth_names = {p.name() for p in synth.parameterDefinitions()}
    assert common <= simulate_names
    assert common | {"IMAGE", "MODEL", "DEVICE", "STEPS"} <= synth_names
    assert not {"IMAGE", "MODEL", "DEVICE", "STEPS"} & simulate_names
    classes = simulate.parameterDefinition("CLASSES")
    assert isinstance(classes, QgsProcessingParameterEnum)
    schemes = [option.split(":")[0] for option in classes.options()]
    assert schemes == [scheme["name"] for scheme in cli_listing["classes"]]
    assert synth.parameterDefinition("DEVICE").options() == ["auto", "cpu", "cuda"]
    assert isinstance(
        simulate.parameterDefinition("OUTPUT"), QgsProcessingParameterFolderDestination
    )


def test_toolbar_action_opens_simulate_dialog_on_active_raster(
    plugin, qgis_iface, qgis_new_project, houston, monkeypatch
):
    # The real QGIS window has a browser model, which the Processing dialog asks for.
    browser = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser, raising=False)
    layer = QgsRasterLayer(str(houston), "houston")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    qgis_iface.setActiveLayer(layer)
    plugin.simulate_action.trigger()
    dialog = plugin.dialog
    try:
        assert isinstance(dialog, AlgorithmDialog)
        assert dialog.isVisible()
        assert dialog.algorithm().id() == "geochange:simulate"
        chosen = dialog.createProcessingParameters()["INPUT"]
        assert chosen in (layer, layer.id(), layer.source())
    finally:
        dialog.close()


def test_menu_opens_the_synth_dialog(plugin, qgis_iface, qgis_new_project, monkeypatch):
    browser = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser, raising=False)
    plugin.synth_action.trigger()
    try:
        assert plugin.dialog.algorithm().id() == "geochange:synth"
    finally:
        plugin.dialog.close()


@pytest.mark.parametrize("algorithm", ["geochange:simulate", "geochange:synth"])
def test_dialog_fits_1000_px(
    executable_setting, plugin, qgis_iface, qgis_new_project, monkeypatch, algorithm
):
    """With the class schemes the real command lists."""
    browser = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser, raising=False)
    assert_dialog_fits_1000_px(plugin, algorithm)


def test_running_the_dialog_loads_the_results(
    plugin, qgis_iface, executable_setting, qgis_new_project, houston, tmp_path, monkeypatch
):
    browser = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser, raising=False)
    # The layers panel: a real view on the project's layer tree, as in the QGIS window.
    view = QgsLayerTreeView()
    model = QgsLayerTreeModel(QgsProject.instance().layerTreeRoot())
    view.setModel(model)
    view.show()
    layer = QgsRasterLayer(str(houston), "houston")
    QgsProject.instance().addMapLayer(layer)
    qgis_iface.setActiveLayer(layer)
    plugin.simulate_action.trigger()
    dialog = plugin.dialog
    try:
        dialog.setParameters(
            {
                "INPUT": layer,
                "EVENTS": "building_add:count=5",
                "OUTPUT": str(tmp_path / "from_dialog"),
            }
        )
        dialog.runAlgorithm()  # as the Run button: a background task, then layers on this thread
        deadline = time.monotonic() + 120
        root = QgsProject.instance().layerTreeRoot()
        while root.findGroup("from_dialog") is None and time.monotonic() < deadline:
            QgsApplication.processEvents()
            time.sleep(0.05)
        for _ in range(20):
            QgsApplication.processEvents()
        group = root.findGroup("from_dialog")
        assert group is not None
        assert len(group.findLayers()) == 4

        def shown_expanded(node) -> bool:
            return view.isExpanded(view.proxyModel().mapFromSource(model.node2index(node)))

        assert shown_expanded(group), "the result group must open with its legend showing"
        nodes = {node.name(): node for node in group.findLayers()}
        assert shown_expanded(nodes["change polygons"])
        assert shown_expanded(nodes["land cover t2 (after)"])
        assert not shown_expanded(nodes["land cover t1 (before)"])
        legend = model.layerLegendNodes(nodes["change polygons"])
        assert [n.data(Qt.DisplayRole) for n in legend] == ["building add"]
    finally:
        dialog.close()
        view.close()


def test_settings_status_is_shown_whole(qgis_iface, tmp_path):
    """A long message wraps and the dialog grows: nothing clipped, nothing overlapping."""
    with use_setting(""):
        dialog = SettingsDialog()
        dialog.show()
        dialog.path.setFilePath(str(tmp_path / "nowhere" / "geochange"))
        dialog.test()
        QgsApplication.processEvents()
        status = dialog.status
        assert status.text().startswith("The geochange executable set in the plugin settings")
        assert status.height() >= status.heightForWidth(status.width())
        test_button = next(b for b in dialog.findChildren(QPushButton) if b.text() == "Test")
        assert status.geometry().top() >= test_button.geometry().bottom()
        dialog.close()


def test_settings_dialog_saves_the_executable_key(qgis_iface):
    with use_setting(""):
        dialog = SettingsDialog()
        dialog.path.setFilePath("/opt/geochange/bin/geochange")
        dialog.accept()
        assert QgsSettings().value(SETTINGS_KEY) == "/opt/geochange/bin/geochange"


def test_plugin_never_imports_the_heavy_libraries(plugin):
    assert not {"torch", "rasterio", "geochange", "pyproj", "geopandas"} & set(sys.modules)
