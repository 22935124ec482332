"""QGIS plugin of geochange: Processing algorithms that run the geochange CLI in a subprocess."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qgis.gui import QgisInterface

if TYPE_CHECKING:
    from .plugin import GeochangePlugin


def classFactory(iface: QgisInterface) -> GeochangePlugin:
    """Entry point QGIS calls when the plugin is enabled."""
    from .plugin import GeochangePlugin

    return GeochangePlugin(iface)
