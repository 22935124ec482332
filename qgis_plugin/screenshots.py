"""Takes the README's screenshots in a real QGIS: the simulate dialog and the loaded results.

Run with QGIS's Python under a virtual display, from the repository root:

    xvfb-run -a -s "-screen 0 1600x1000x24" /usr/bin/python3 qgis_plugin/screenshots.py

It makes the example region with the geochange CLI (GEOCHANGE_EXECUTABLE, default
.venv/bin/geochange), opens the plugin's dialog on it from the toolbar action, runs simulate
through Processing and writes docs/qgis_dialog.png and docs/qgis_results.png. QGIS settings go to
a throw-away profile, so the user's own are left alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), "/usr/share/qgis/python/plugins"]

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsLayerTreeModel,
    QgsProject,
    QgsRasterLayer,
    QgsSettings,
)
from qgis.gui import (  # noqa: E402
    QgsBrowserGuiModel,
    QgsLayerTreeMapCanvasBridge,
    QgsLayerTreeView,
    QgsMapCanvas,
)
from qgis.PyQt.QtCore import QCoreApplication, QSettings, Qt  # noqa: E402
from qgis.PyQt.QtWidgets import QAction, QMainWindow, QSplitter, QToolBar  # noqa: E402

EVENTS = "building_add:count=40,deforestation:fraction=0.3,urban_expansion:count=2,flood"


class Interface:
    """The parts of QgisInterface the plugin and the Processing dialog use."""

    def __init__(self, canvas: QgsMapCanvas, window: QMainWindow) -> None:
        self.canvas = canvas
        self.window = window
        self.browser = QgsBrowserGuiModel()
        self.toolbar = QToolBar("Plugins", window)
        self.layer: QgsRasterLayer | None = None

    def mainWindow(self) -> QMainWindow:  # noqa: N802 (QGIS API)
        return self.window

    def mapCanvas(self) -> QgsMapCanvas:  # noqa: N802 (QGIS API)
        return self.canvas

    def browserModel(self) -> QgsBrowserGuiModel:  # noqa: N802 (QGIS API)
        return self.browser

    def activeLayer(self) -> QgsRasterLayer | None:  # noqa: N802 (QGIS API)
        return self.layer

    def addToolBarIcon(self, action: QAction) -> None:  # noqa: N802 (QGIS API)
        self.toolbar.addAction(action)

    def addPluginToMenu(self, menu: str, action: QAction) -> None:  # noqa: N802 (QGIS API)
        """The screenshots show no menu bar."""

    def removePluginMenu(self, menu: str, action: QAction) -> None:  # noqa: N802 (QGIS API)
        """The screenshots show no menu bar."""

    def removeToolBarIcon(self, action: QAction) -> None:  # noqa: N802 (QGIS API)
        self.toolbar.removeAction(action)


def settle(app: QgsApplication, canvas: QgsMapCanvas | None = None) -> None:
    """Lets Qt lay out and paint (and the canvas render) before a grab."""
    for _ in range(20):
        app.processEvents()
    if canvas is not None:
        canvas.refreshAllLayers()
        canvas.waitWhileRendering()
        for _ in range(20):
            app.processEvents()


def main() -> None:
    executable = os.environ.get("GEOCHANGE_EXECUTABLE", str(REPO / ".venv/bin/geochange"))
    docs = REPO / "docs"
    work = Path(tempfile.mkdtemp(prefix="geochange-screenshots-"))
    # As QGIS does for a profile: settings in <profile>/QGIS/QGIS3.ini, not the user's.
    QCoreApplication.setOrganizationName("QGIS")
    QCoreApplication.setApplicationName("QGIS3")
    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(work / "profile"))
    app = QgsApplication([], True, str(work / "profile"))
    app.initQgis()
    QgsSettings().setValue("geochange/executable", executable)

    window = QMainWindow()
    canvas = QgsMapCanvas()
    iface = Interface(canvas, window)
    import qgis.utils

    qgis.utils.iface = iface  # processing reads it when first imported
    from processing.core.Processing import Processing

    Processing.initialize()
    import processing
    from geochange_qgis import classFactory

    plugin = classFactory(iface)
    plugin.initGui()

    region_folder = work / "example"
    subprocess.run(
        [executable, "example", "-o", str(region_folder), "--size", "1024"],
        check=True,
    )
    region = QgsRasterLayer(str(region_folder / "region.tif"), "region")
    QgsProject.instance().addMapLayer(region, False)
    iface.layer = region

    plugin.simulate_action.trigger()
    dialog = plugin.dialog
    dialog.resize(1000, 760)
    settle(app)
    dialog.grab().save(str(docs / "qgis_dialog.png"))
    dialog.close()

    processing.run(
        "geochange:simulate",
        {
            "INPUT": str(region_folder / "region.tif"),
            "EVENTS": EVENTS,
            "SEED": 1,
            "OUTPUT": str(work / "example_changes"),
        },
    )
    view = QgsLayerTreeView()
    model = QgsLayerTreeModel(QgsProject.instance().layerTreeRoot())
    view.setModel(model)  # groups and legends open as the plugin leaves them
    QgsLayerTreeMapCanvasBridge(QgsProject.instance().layerTreeRoot(), canvas)
    splitter = QSplitter(Qt.Horizontal)
    splitter.addWidget(view)
    splitter.addWidget(canvas)
    splitter.setSizes([300, 900])
    window.setCentralWidget(splitter)
    window.addToolBar(iface.toolbar)
    window.resize(1200, 820)
    window.show()
    settle(app)
    canvas.setExtent(region.extent())
    settle(app, canvas)
    window.grab().save(str(docs / "qgis_results.png"))
    print(docs / "qgis_dialog.png", docs / "qgis_results.png")
    # Tear down in order: QGIS crashes at exit when widgets outlive the project's layers.
    plugin.unload()
    window.close()
    del view, splitter, model, window, canvas, iface
    QgsProject.instance().clear()
    app.exitQgis()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
