"""The subprocess runner: JSON lines to feedback, a clean environment, clear failures."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from conftest import use_setting
from geochange_qgis.algorithms import OPTION_FIELDS
from geochange_qgis.runner import (
    INSTALL_HINT,
    SETTINGS_KEY,
    find_executable,
    in_user_terms,
    run_cli,
)
from qgis.core import QgsProcessingException, QgsProcessingFeedback


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps what the runner reports."""

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []
        self.texts: list[str] = []
        self.progress_values: list[float] = []

    def pushWarning(self, message: str) -> None:  # noqa: N802 (QGIS API)
        self.warnings.append(message)

    def setProgressText(self, text: str) -> None:  # noqa: N802 (QGIS API)
        self.texts.append(text)

    def setProgress(self, progress: float) -> None:  # noqa: N802 (QGIS API)
        self.progress_values.append(progress)
        super().setProgress(progress)


def fake_cli(folder: Path, body: str) -> str:
    """A shell script standing in for geochange."""
    path = folder / "geochange"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_json_lines_become_progress_warnings_and_result(tmp_path, monkeypatch):
    for name in ("PROJ_LIB", "PROJ_DATA", "GDAL_DATA", "GDAL_DRIVER_PATH", "PYTHONPATH"):
        monkeypatch.setenv(name, "/usr/share/qgis-only")
    monkeypatch.setenv("GEOCHANGE_TEST_KEPT", "kept")
    script = fake_cli(
        tmp_path,
        """
echo '{"type": "progress", "stage": "scan", "done": 0, "total": 2}'
echo '{"type": "progress", "stage": "scan", "done": 2, "total": 2}'
leaked="${PROJ_LIB:-}${PROJ_DATA:-}${GDAL_DATA:-}${GDAL_DRIVER_PATH:-}${PYTHONPATH:-}"
echo "{\\"type\\": \\"warning\\", \\"message\\": \\"env $leaked|$GEOCHANGE_TEST_KEPT\\"}"
echo '{"type": "progress", "stage": "events", "done": 1, "total": 1}'
echo '{"type": "progress", "stage": "write", "done": 1, "total": 1}'
echo '{"type": "progress", "stage": "finish", "done": 1, "total": 1}'
echo "args $*" >&2
echo '{"type": "result", "output": "/x", "files": {"change": "/x/change.tif"}}'
""",
    )
    feedback = RecordingFeedback()
    result = run_cli(["simulate", "region.tif"], feedback, executable=script)
    assert result["files"] == {"change": "/x/change.tif"}
    assert feedback.warnings == ["env |kept"]
    assert feedback.texts == [f"geochange: {s}" for s in ("scan", "events", "write", "finish")]
    assert feedback.progress_values == sorted(feedback.progress_values)
    assert feedback.progress_values[1] == pytest.approx(12.5)
    assert feedback.progress_values[-1] == pytest.approx(100.0)


def test_error_line_raises_with_its_message(tmp_path):
    script = fake_cli(
        tmp_path,
        """echo '{"type": "error", "message": "unknown event \\u0027bogus\\u0027", "exit_code": 2}'
exit 2
""",
    )
    with pytest.raises(QgsProcessingException, match="unknown event 'bogus'"):
        run_cli(["simulate", "r.tif"], QgsProcessingFeedback(), executable=script)


def test_missing_executable_setting_says_how_to_install(tmp_path):
    wrong = tmp_path / "nowhere/geochange"
    with use_setting(str(wrong)), pytest.raises(QgsProcessingException) as raised:
        find_executable()
    message = str(raised.value)
    # The reason first, then what to do, in the words of the QGIS menu.
    assert message.startswith(f"The geochange executable set in the plugin settings ({wrong})")
    assert message.index("does not exist") < message.index("Plugins › geochange › Settings…")
    assert "pip install geochange" in message
    assert SETTINGS_KEY in message
    assert len(message.split()) < 60


def test_error_names_the_dialog_fields_not_the_command_options(tmp_path):
    message = (
        "values 3, 9 are not in scheme oem\n  How to fix: give the scheme with --classes "
        "dubai or a YAML file; reproject with --crs EPSG:32633 or --gsd 0.5, or use --overwrite"
    )
    line = json.dumps({"type": "error", "message": message})
    script = fake_cli(tmp_path, f"printf '%s\\n' '{line}'\nexit 2\n")
    with pytest.raises(QgsProcessingException) as raised:
        run_cli(
            ["simulate", "r.tif"],
            QgsProcessingFeedback(),
            executable=script,
            fields=OPTION_FIELDS,
            values=["oem", "dubai"],
        )
    text = str(raised.value)
    assert text.startswith("values 3, 9 are not in scheme oem")
    assert "Class scheme (CLASSES, CLASSES_FILE) = dubai or a YAML file" in text
    assert "Output CRS (CRS) = EPSG:32633 or Pixel size (GSD) = 0.5" in text
    assert "Replace an existing output folder (OVERWRITE)" in text
    assert "--" not in text


def test_listed_values_are_taken_whole_with_their_option():
    """A scheme name is a value only when listed (it holds no digit, '=' or '/')."""
    message = "try --classes oem-index"
    assert in_user_terms(message, OPTION_FIELDS, ["oem", "oem-index"]) == (
        "try Class scheme (CLASSES, CLASSES_FILE) = oem-index"
    )
    assert (
        in_user_terms(message, OPTION_FIELDS)
        == "try Class scheme (CLASSES, CLASSES_FILE) oem-index"
    )


def test_options_without_a_field_stay_as_they_are():
    assert in_user_terms("use --resume", OPTION_FIELDS) == "use --resume"
    assert in_user_terms("no --events and no --changes", OPTION_FIELDS) == (
        "no Events (EVENTS) and no Drawn changes (CHANGES)"
    )


def test_executable_that_is_not_geochange_says_how_to_install(tmp_path):
    script = fake_cli(tmp_path, "echo 'python: No module named geochange' >&2\nexit 1\n")
    with pytest.raises(QgsProcessingException) as raised:
        run_cli(["simulate", "r.tif"], QgsProcessingFeedback(), executable=script)
    assert "No module named geochange" in str(raised.value)
    assert INSTALL_HINT in str(raised.value)


def test_executable_on_path_is_found_when_no_setting(tmp_path, monkeypatch):
    script = fake_cli(tmp_path, "exit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    with use_setting(""):
        assert find_executable() == script
