"""The plugin: registers the Processing provider and adds a toolbar button and menu entries."""

from __future__ import annotations

from qgis.core import QgsApplication, QgsRasterLayer
from qgis.gui import QgisInterface
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QDialog

from .algorithms import ICON
from .provider import GeochangeProvider
from .settings import SettingsDialog

MENU = "geochange"


class GeochangePlugin:
    """Menu *Plugins › geochange*: *Simulate change…*, *Synthesize images…* and *Settings…*;
    the toolbar button opens the simulate dialog on the active raster layer."""

    def __init__(self, iface: QgisInterface) -> None:
        self.iface = iface
        self.provider: GeochangeProvider | None = None
        self.actions: list[QAction] = []
        self.dialog: QDialog | None = None

    def initProcessing(self) -> None:
        """Called by QGIS on its own too (hasProcessingProvider), e.g. by qgis_process."""
        self.provider = GeochangeProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()
        window = self.iface.mainWindow()
        icon = QIcon(str(ICON))
        self.simulate_action = QAction(icon, "Simulate change…", window)
        self.simulate_action.setObjectName("geochangeSimulate")
        self.simulate_action.setToolTip("geochange: simulate land-cover change on the active layer")
        self.simulate_action.triggered.connect(lambda: self.open_dialog("geochange:simulate"))
        self.synth_action = QAction(icon, "Synthesize images…", window)
        self.synth_action.setObjectName("geochangeSynth")
        self.synth_action.setToolTip("geochange: simulate change and paint before/after images")
        self.synth_action.triggered.connect(lambda: self.open_dialog("geochange:synth"))
        self.settings_action = QAction("Settings…", window)
        self.settings_action.setObjectName("geochangeSettings")
        self.settings_action.triggered.connect(self.open_settings)
        self.iface.addToolBarIcon(self.simulate_action)
        self.actions = [self.simulate_action, self.synth_action, self.settings_action]
        for action in self.actions:
            self.iface.addPluginToMenu(MENU, action)

    def unload(self) -> None:
        for action in self.actions:
            self.iface.removePluginMenu(MENU, action)
        if self.actions:
            self.iface.removeToolBarIcon(self.simulate_action)
        self.actions = []
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def open_dialog(self, algorithm: str) -> None:
        """A non-modal Processing dialog of ``algorithm`` on the active raster layer, like the
        toolbox opens."""
        import processing  # the processing plugin loads after this one at QGIS startup

        parameters = {}
        layer = self.iface.activeLayer()
        if isinstance(layer, QgsRasterLayer):
            parameters["INPUT"] = layer
        self.dialog = processing.createAlgorithmDialog(algorithm, parameters)
        self.dialog.show()

    def open_settings(self) -> None:
        SettingsDialog(self.iface.mainWindow()).exec_()
