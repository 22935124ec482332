"""Runs the geochange CLI in a subprocess and turns its JSON lines into Processing feedback.

geochange needs torch and its own rasterio/GDAL/PROJ, which must never be loaded into QGIS's
Python, so the plugin talks to the command only: ``--json`` makes it print one JSON object per
line (``progress``, ``warning``, ``result`` or ``error``).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsSettings

SETTINGS_KEY = "geochange/executable"

INSTALL_HINT = (
    "Set the path of the geochange command in Plugins › geochange › Settings… (QGIS setting "
    f"{SETTINGS_KEY}); to install it: python3 -m venv ~/geochange-env && "
    "~/geochange-env/bin/pip install geochange."
)
"""Said after the reason whenever the command cannot be found or started."""

OPTION_WORDS = ("auto", "cpu", "cuda", "default", "none", "mild", "realistic")
"""Words that --device, --model and the acquisition presets take; the class schemes come from
``geochange classes`` (listings.py) and are given to in_user_terms."""


def option_pattern(values: Iterable[str] = ()) -> re.Pattern:
    """A command-line option in a message, with the value that follows it: one of ``values``
    or OPTION_WORDS, or a token holding a digit, ``:``, ``=``, ``/`` or ``.`` (not the English
    word after it)."""
    words = "|".join(re.escape(word) for word in (*values, *OPTION_WORDS))
    return re.compile(
        r"`?(?<![\w-])(--[a-z][a-z-]*|-o)(?![\w-])"
        rf"(?: ((?:{words})(?![\w-])|[^\s`,;()]*[0-9:=/.][^\s`,;()]*))?`?"
    )


# Paths QGIS sets for its own GDAL, PROJ and Python; the CLI's rasterio wheel ships its own data,
# and a proj.db of another PROJ version makes it fail in confusing ways.
CLEANED_VARIABLES = (
    "PROJ_LIB",
    "PROJ_DATA",
    "GDAL_DATA",
    "GDAL_DRIVER_PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONEXECUTABLE",
    "PYTHONUSERBASE",
    "VIRTUAL_ENV",
)

# Seconds the CLI gets after SIGTERM to remove its partial output before it is killed.
TERMINATE_GRACE_S = 15.0

# Share of the run each CLI stage takes, for one progress bar over all stages; stages not named
# here count as 1.
STAGE_WEIGHTS = {
    "scan": 1.0,
    "events": 3.0,
    "write": 3.0,
    "finish": 1.0,
    "paint": 20.0,
    "finish images": 1.0,
}


def find_executable() -> str:
    """The geochange executable: the plugin setting if set, else the one on PATH."""
    configured = str(QgsSettings().value(SETTINGS_KEY, "") or "").strip()
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise QgsProcessingException(
                f"The geochange executable set in the plugin settings ({configured}) does not "
                f"exist or is not executable. {INSTALL_HINT}"
            )
        return str(path)
    found = shutil.which("geochange")
    if found is None:
        raise QgsProcessingException(f"The geochange command was not found on PATH. {INSTALL_HINT}")
    return found


def in_user_terms(message: str, fields: dict[str, str], values: Sequence[str] = ()) -> str:
    """``message`` with the command's options named as the dialog names them: ``--classes
    dubai`` becomes ``Class scheme (CLASSES) = dubai`` when dubai is one of ``values``;
    options not in ``fields`` stay."""

    def field(match: re.Match) -> str:
        option, value = match.group(1), match.group(2)
        if option not in fields:
            return match.group(0)
        return fields[option] if value is None else f"{fields[option]} = {value}"

    return option_pattern(values).sub(field, message)


def clean_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """QGIS's environment without its GDAL/PROJ data paths and Python settings."""
    env = dict(os.environ if environ is None else environ)
    for name in CLEANED_VARIABLES:
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ProgressTracker:
    """Maps the CLI's per-stage progress onto one 0-100 bar."""

    def __init__(self, stages: tuple[str, ...]) -> None:
        self.total = sum(STAGE_WEIGHTS.get(stage, 1.0) for stage in stages)
        self.completed = 0.0
        self.stage: str | None = None

    def update(self, stage: str, done: int, total: int) -> tuple[float, bool]:
        """Percent done, and whether ``stage`` is a new stage."""
        new = stage != self.stage
        if new and self.stage is not None:
            self.completed += STAGE_WEIGHTS.get(self.stage, 1.0)
        self.stage = stage
        fraction = done / total if total else 1.0
        current = STAGE_WEIGHTS.get(stage, 1.0) * fraction
        return min(100.0, 100.0 * (self.completed + current) / self.total), new


def _read_lines(stream: IO[str], lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, so the CLI removes its partial output folder; kill if it does not exit."""
    process.terminate()
    try:
        process.wait(TERMINATE_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_cli(
    arguments: list[str],
    feedback: QgsProcessingFeedback,
    stages: tuple[str, ...] = ("scan", "events", "write", "finish"),
    executable: str | None = None,
    fields: dict[str, str] | None = None,
    values: Sequence[str] = (),
) -> dict:
    """Runs ``geochange ARGUMENTS --json`` and returns its ``result`` object.

    Progress goes to the feedback's bar, warnings to its log; an ``error`` line, a failed start
    or a cancel raise QgsProcessingException, whose message names options as ``fields`` says
    (the dialog's names for the command's options), with the words in ``values`` (and
    OPTION_WORDS) taken as option values. The feedback's isCanceled() is polled while the
    command runs, so a silent command (e.g. loading a model) can still be cancelled.
    """
    fields = fields or {}
    executable = executable or find_executable()
    command = [executable, *arguments, "--json"]
    feedback.pushCommandInfo(" ".join(command))
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as stderr:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=clean_environment(),
                text=True,
                encoding="utf-8",
                errors="replace",
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as err:
            raise QgsProcessingException(
                f"Could not start {executable}: {err}. {INSTALL_HINT}"
            ) from err
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        tracker = ProgressTracker(stages)
        result: dict | None = None
        error: str | None = None
        seen_json = False
        while True:
            if feedback.isCanceled():
                _stop(process)
                reader.join(TERMINATE_GRACE_S)
                process.stdout.close()
                raise QgsProcessingException(
                    "Cancelled: geochange was stopped and removed its unfinished output."
                )
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                feedback.pushConsoleInfo(line.rstrip())
                continue
            seen_json = True
            kind = message.get("type")
            if kind == "progress":
                percent, new_stage = tracker.update(
                    str(message.get("stage", "")),
                    int(message.get("done", 0)),
                    int(message.get("total", 0)),
                )
                if new_stage:
                    feedback.setProgressText(f"geochange: {message.get('stage')}")
                feedback.setProgress(percent)
            elif kind == "warning":
                feedback.pushWarning(in_user_terms(str(message.get("message", "")), fields, values))
            elif kind == "error":
                error = str(message.get("message", "unknown error"))
            elif kind == "result":
                result = message
        returncode = process.wait()
        reader.join()
        process.stdout.close()
        stderr.seek(0)
        log = stderr.read().strip()
    if log:
        feedback.pushConsoleInfo(log)
    if error is not None:
        raise QgsProcessingException(in_user_terms(error, fields, values))
    if returncode != 0:
        tail = "\n".join(log.splitlines()[-15:])
        if not seen_json:
            raise QgsProcessingException(
                f"{executable} did not run as the geochange command (exit status {returncode})"
                f"{': ' + tail if tail else ''}. {INSTALL_HINT}"
            )
        raise QgsProcessingException(f"geochange failed (exit status {returncode}): {tail}")
    if result is None:
        raise QgsProcessingException(f"{executable} finished without a result. {INSTALL_HINT}")
    return result
