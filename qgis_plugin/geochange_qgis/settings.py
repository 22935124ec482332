"""A dialog for the one plugin setting: where the geochange executable is."""

from __future__ import annotations

import subprocess

from qgis.core import QgsSettings
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from . import listings
from .runner import SETTINGS_KEY, clean_environment, find_executable


class SettingsDialog(QDialog):
    """Edits QgsSettings ``geochange/executable``; empty means the geochange found on PATH."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("geochange settings")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "Path of the geochange executable (e.g. ~/geochange-env/bin/geochange).\n"
                "Leave empty to use the geochange found on PATH."
            )
        )
        self.path = QgsFileWidget(self)
        self.path.setStorageMode(QgsFileWidget.GetFile)
        self.path.setFilePath(str(QgsSettings().value(SETTINGS_KEY, "") or ""))
        layout.addWidget(self.path)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        test = QPushButton("Test", self)
        test.clicked.connect(self.test)
        layout.addWidget(test)
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def accept(self) -> None:
        """Saves the path and drops the listings of the command, which may now be another."""
        QgsSettings().setValue(SETTINGS_KEY, self.path.filePath().strip())
        listings.forget()
        super().accept()

    def test(self) -> None:
        """Runs ``geochange --version`` with the path as entered, without saving it."""
        settings = QgsSettings()
        saved = settings.value(SETTINGS_KEY, "")
        settings.setValue(SETTINGS_KEY, self.path.filePath().strip())
        try:
            executable = find_executable()
            version = subprocess.run(
                [executable, "--version"],
                capture_output=True,
                text=True,
                timeout=60,
                env=clean_environment(),
            )
            text = (version.stdout or version.stderr).strip()
            ok = version.returncode == 0 and text.startswith("geochange")
            self.show_status(f"OK: {text}" if ok else f"Not geochange: {text}")
        except Exception as err:  # any failure is shown to the user as it is
            self.show_status(str(err))
        finally:
            settings.setValue(SETTINGS_KEY, saved)

    def show_status(self, text: str) -> None:
        """Shows ``text`` whole: the label takes the height its wrapped lines need and the
        dialog grows to it (Qt lays out a top-level dialog without height-for-width)."""
        self.status.setText(text)
        self.status.setMinimumHeight(self.status.heightForWidth(self.status.width()))
        self.adjustSize()
