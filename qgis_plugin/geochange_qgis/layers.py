"""Loads a geochange output folder into the project as one group of styled layers."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFillSymbol,
    QgsLayerTreeGroup,
    QgsMapLayer,
    QgsMultiBandColorRenderer,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsRendererCategory,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

# One colour per event, unlike the land-cover palette so the polygons stand out over it, and
# unlike each other (CIELAB distance >= 40) and the white legend panel (>= 40). Presentation
# only: the events are those in the changes layer's event field, and one not named here gets a
# FALLBACK_COLOURS colour.
EVENT_COLOURS = {
    "building_add": "#ff00ff",
    "building_remove": "#ff9900",
    "deforestation": "#ffff00",
    "regrowth": "#1b5e20",
    "urban_expansion": "#d50000",
    "road_add": "#000000",
    "flood": "#00e5ff",
    "water_recede": "#a0522d",
    "cropland_change": "#9c27b0",
    "random": "#7f7f7f",
}
FALLBACK_COLOURS = ("#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#8c564b", "#9467bd")

# Order in the group, top first, of the outputs known here; any other GeoTIFF or GeoPackage in
# the command's result follows them, titled by its key. Only the change polygons and the
# "after" state are switched on, so the map shows the one over the other.
ORDER = ("changes", "change", "t2_landcover", "t1_landcover", "t2", "t1")
LAYER_SUFFIXES = {".tif": "raster", ".gpkg": "vector"}
"""The files of a result that are layers; run.json, item.json or preview.png are not."""
TITLES = {
    "changes": "change polygons",
    "change": "change mask",
    "t1_landcover": "land cover t1 (before)",
    "t2_landcover": "land cover t2 (after)",
    "t1": "image t1 (before)",
    "t2": "image t2 (after)",
}


def style_changes(layer: QgsVectorLayer) -> None:
    """Categorized by the ``event`` field: one legend entry per event, semi-transparent fill."""
    index = layer.fields().indexFromName("event")
    if index < 0:
        return
    events = sorted(str(value) for value in layer.uniqueValues(index) if value is not None)
    categories = []
    for number, event in enumerate(events):
        colour = QColor(EVENT_COLOURS.get(event, FALLBACK_COLOURS[number % len(FALLBACK_COLOURS)]))
        symbol = QgsFillSymbol.createSimple(
            {
                "color": f"{colour.red()},{colour.green()},{colour.blue()},90",
                "outline_color": colour.name(),
                "outline_width": "0.6",
            }
        )
        categories.append(QgsRendererCategory(event, symbol, event.replace("_", " ")))
    layer.setRenderer(QgsCategorizedSymbolRenderer("event", categories))


def _raster(path: Path, name: str, feedback: QgsProcessingFeedback | None) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), name, "gdal")
    style = path.with_suffix(".qml")
    if style.exists():
        message, ok = layer.loadNamedStyle(str(style))
        if not ok and feedback is not None:
            feedback.pushWarning(f"Could not apply the style {style}: {message}")
    elif layer.bandCount() >= 3 and not isinstance(layer.renderer(), QgsMultiBandColorRenderer):
        layer.setRenderer(QgsMultiBandColorRenderer(layer.dataProvider(), 1, 2, 3))
    return layer


def load_results(
    files: dict[str, str],
    group_name: str,
    project: QgsProject | None = None,
    feedback: QgsProcessingFeedback | None = None,
) -> list[QgsMapLayer]:
    """Adds the rasters and polygons in ``files`` (the CLI's result) under a new top group."""
    project = project or QgsProject.instance()
    group = QgsLayerTreeGroup(group_name)
    has_images = "t2" in files
    visible = {"changes", "t2" if has_images else "t2_landcover"}
    layers = []
    for key in sorted(files, key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER)):
        path = Path(files[key])
        kind = LAYER_SUFFIXES.get(path.suffix.lower())
        if kind is None:
            continue
        title = TITLES.get(key, key.replace("_", " "))
        if kind == "vector":
            uri = f"{path}|layername=changes" if key == "changes" else str(path)
            layer: QgsMapLayer = QgsVectorLayer(uri, title, "ogr")
            if layer.isValid():
                style_changes(layer)
        else:
            layer = _raster(path, title, feedback)
        if not layer.isValid():
            if feedback is not None:
                feedback.pushWarning(f"Could not load {path} as a layer")
            continue
        project.addMapLayer(layer, False)
        node = group.addLayer(layer)
        node.setItemVisibilityChecked(key in visible)
        node.setExpanded(False)
        layers.append(layer)
    group.setExpanded(False)
    project.layerTreeRoot().insertChildNode(0, group)
    _expand(group)
    return layers


def _expand(group: QgsLayerTreeGroup) -> None:
    """Expands the group and the legends of the change polygons and the land cover after.

    The nodes are expanded only once they are in the project's tree: a layer tree view follows
    a node that changes from collapsed to expanded, but may leave one that arrives expanded
    collapsed on screen (as after a run from the Processing dialog in QGIS 3.22)."""
    group.setExpanded(True)
    for node in group.findLayers():
        node.setExpanded(node.name() in (TITLES["changes"], TITLES["t2_landcover"]))
