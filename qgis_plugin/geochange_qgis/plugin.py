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
    """Toolbar button "geochange" opens the simulate dialog on the active raster layer."""

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
        self.run_action = QAction(QIcon(str(ICON)), "geochange", window)
        self.run_action.setObjectName("geochangeSimulate")
        self.run_action.setToolTip("geochange: simulate land-cover change on the active layer")
        self.run_action.triggered.connect(self.open_simulate_dialog)
        self.settings_action = QAction("Settings…", window)
        self.settings_action.setObjectName("geochangeSettings")
        self.settings_action.triggered.connect(self.open_settings)
        self.iface.addToolBarIcon(self.run_action)
        self.iface.addPluginToMenu(MENU, self.run_action)
        self.iface.addPluginToMenu(MENU, self.settings_action)
        self.actions = [self.run_action, self.settings_action]

    def unload(self) -> None:
        for action in self.actions:
            self.iface.removePluginMenu(MENU, action)
        if self.actions:
            self.iface.removeToolBarIcon(self.run_action)
        self.actions = []
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def open_simulate_dialog(self) -> None:
        """A non-modal Processing dialog of geochange:simulate, like the toolbox opens."""
        import processing  # the processing plugin loads after this one at QGIS startup

        parameters = {}
        layer = self.iface.activeLayer()
        if isinstance(layer, QgsRasterLayer):
            parameters["INPUT"] = layer
        self.dialog = processing.createAlgorithmDialog("geochange:simulate", parameters)
        self.dialog.show()

    def open_settings(self) -> None:
        SettingsDialog(self.iface.mainWindow()).exec_()
