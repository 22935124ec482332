"""Fixtures: the plugin on pytest-qgis's stub interface, the real geochange CLI and real data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtWidgets import QScrollArea

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
REPO = PLUGIN_ROOT.parent
sys.path.insert(0, str(PLUGIN_ROOT))

from geochange_qgis import classFactory  # noqa: E402
from geochange_qgis.plugin import GeochangePlugin  # noqa: E402
from geochange_qgis.runner import SETTINGS_KEY  # noqa: E402


def shared_data() -> Path | None:
    """GEOCHANGE_SHARED_DATA, else /work/shared/data or the repository's ../shared/data."""
    configured = os.environ.get("GEOCHANGE_SHARED_DATA")
    candidates = (
        [Path(configured)]
        if configured
        else [Path("/work/shared/data"), REPO.parent / "shared/data"]
    )
    return next((path for path in candidates if path.is_dir()), None)


@pytest.fixture(scope="session")
def geochange_executable() -> str:
    """The real CLI: GEOCHANGE_EXECUTABLE, else the repository's .venv."""
    path = Path(os.environ.get("GEOCHANGE_EXECUTABLE", REPO / ".venv/bin/geochange"))
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.skip(f"no geochange executable at {path} (set GEOCHANGE_EXECUTABLE or make venv)")
    return str(path)


@pytest.fixture(scope="session")
def cli_listing(geochange_executable: str) -> dict[str, list[dict]]:
    """What the real CLI lists, asked without the plugin: ``{"events": [..], "classes": [..]}``."""
    return {
        command: json.loads(
            subprocess.run(
                [geochange_executable, command, "--json"], check=True, capture_output=True
            ).stdout
        )
        for command in ("events", "classes")
    }


@pytest.fixture
def executable_setting(geochange_executable: str) -> Iterator[str]:
    """The plugin setting pointing at the real CLI, restored afterwards."""
    with use_setting(geochange_executable):
        yield geochange_executable


class use_setting:  # noqa: N801 (used like a function)
    """Sets the plugin's executable setting for a block, then restores it."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __enter__(self) -> None:
        self.saved = QgsSettings().value(SETTINGS_KEY, "")
        QgsSettings().setValue(SETTINGS_KEY, self.value)

    def __exit__(self, *exc: object) -> None:
        QgsSettings().setValue(SETTINGS_KEY, self.saved)


@pytest.fixture(scope="session")
def houston() -> Path:
    """A real OpenEarthMap land-cover tile (1024², EPSG:4326)."""
    data = shared_data()
    path = data / "openearthmap/labels/houston_16.tif" if data else None
    if path is None or not path.is_file():
        pytest.skip("../shared/data/openearthmap/labels/houston_16.tif is missing")
    return path


@pytest.fixture(scope="session")
def big_region(geochange_executable: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example town at 2048²: slow enough to be cancelled mid-run."""
    folder = tmp_path_factory.mktemp("example")
    subprocess.run(
        [geochange_executable, "example", "-o", str(folder), "--size", "2048", "--overwrite"],
        check=True,
        capture_output=True,
    )
    return folder / "region.tif"


@pytest.fixture(scope="session")
def tiny_model(geochange_executable: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny SemanticLDM, made with the CLI's own Python (torch never enters QGIS)."""
    python = Path(geochange_executable).with_name("python")
    if not python.exists():
        pytest.skip(f"no python beside {geochange_executable} to make a tiny model")
    folder = tmp_path_factory.mktemp("model") / "tiny"
    code = (
        "import sys, torch; from geochange.model import SemanticLDM, preset; "
        "torch.manual_seed(0); SemanticLDM(preset('tiny')).save_pretrained(sys.argv[1])"
    )
    subprocess.run([str(python), "-c", code, str(folder)], check=True, capture_output=True)
    return folder


@pytest.fixture
def plugin(qgis_iface, qgis_processing) -> Iterator[GeochangePlugin]:
    """The plugin as QGIS starts it: classFactory, then initGui; unloaded afterwards."""
    loaded = classFactory(qgis_iface)
    loaded.initGui()
    yield loaded
    loaded.unload()


def assert_dialog_fits_1000_px(plugin: GeochangePlugin, algorithm: str) -> None:
    """No horizontal scrolling and no clipped field in the 1000-px-wide dialog of ``algorithm``
    (the interface must have a browser model, as the QGIS window has)."""
    plugin.open_dialog(algorithm)
    dialog = plugin.dialog
    try:
        dialog.resize(1000, 800)
        for _ in range(30):
            QgsApplication.processEvents()
        areas = [a for a in dialog.findChildren(QScrollArea) if a.isVisible()]
        assert areas
        for area in areas:
            assert area.horizontalScrollBar().maximum() == 0
            assert area.widget().sizeHint().width() <= area.viewport().width()
    finally:
        dialog.close()
