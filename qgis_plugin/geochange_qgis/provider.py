"""The Processing provider "geochange" that holds the two algorithms."""

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import ICON, SimulateAlgorithm, SynthAlgorithm


class GeochangeProvider(QgsProcessingProvider):
    """Algorithm ids are ``geochange:simulate`` and ``geochange:synth``."""

    def id(self) -> str:
        return "geochange"

    def name(self) -> str:
        return "geochange"

    def longName(self) -> str:
        return "geochange: synthetic change-detection data"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def loadAlgorithms(self) -> None:
        self.addAlgorithm(SimulateAlgorithm())
        self.addAlgorithm(SynthAlgorithm())
