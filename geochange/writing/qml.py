"""QGIS ``.qml`` style sidecars, so QGIS shows class maps in their palette on load."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

from geochange.classes import CLASS_NAMES, PALETTE, ROAD

DISPLAY_COLOURS = {ROAD: (64, 64, 64)}
"""Colours QGIS shows instead of the palette's: OpenEarthMap's white road is invisible on a
white legend panel. The files' colour tables keep OpenEarthMap's palette."""

_TEMPLATE = """<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <rasterTransparency/>
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" colorizeOn="0" grayscaleMode="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


def palette_qml(entries: list[tuple[int, tuple[int, int, int], str]]) -> str:
    """A paletted-renderer style from (value, RGB, label) entries."""
    lines = [
        f'        <paletteEntry value="{value}" color="#{r:02x}{g:02x}{b:02x}" alpha="255" '
        f"label={quoteattr(label)}/>"
        for value, (r, g, b), label in entries
    ]
    return _TEMPLATE.format(entries="\n".join(lines))


def landcover_qml() -> str:
    return palette_qml(
        [
            (i + 1, DISPLAY_COLOURS.get(i, rgb), name)
            for i, (rgb, name) in enumerate(zip(PALETTE, CLASS_NAMES, strict=True))
        ]
    )


def change_qml() -> str:
    return palette_qml([(0, (40, 40, 40), "unchanged"), (1, (255, 0, 255), "changed")])


def write_sidecar(raster: Path, text: str) -> Path:
    path = raster.with_suffix(".qml")
    path.write_text(text)
    return path
