"""What the geochange command offers (events, class schemes), asked of the command itself.

The plugin keeps no copy of geochange's names: it runs ``geochange events --json`` and
``geochange classes --json`` once per executable and session, so the dialog offers what the
installed geochange knows, and a new event or scheme shows up without a new plugin.
"""

from __future__ import annotations

import json
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from qgis.core import QgsProcessingException

from .runner import INSTALL_HINT, clean_environment, find_executable

LISTING_TIMEOUT_S = 20.0
"""Seconds each listing may take: QGIS waits for them when it loads the algorithms."""


@dataclass(frozen=True)
class Entry:
    """One event or class scheme: its name for the command line and a line saying what it is."""

    name: str
    description: str
    parameters: tuple[str, ...] = ()
    """The parameter names of an event."""


@dataclass(frozen=True)
class Listings:
    """The events and schemes in the command's order; ``error`` says why one is missing."""

    events: tuple[Entry, ...] = ()
    schemes: tuple[Entry, ...] = ()
    error: str | None = None


class ListingError(Exception):
    """A listing command that could not be run or printed no listing."""


_cache: dict[str, Listings] = {}
_lock = threading.Lock()


def listings() -> Listings:
    """The listings of the configured executable, asked once per session and executable."""
    try:
        executable = find_executable()
    except QgsProcessingException as err:
        return Listings(error=str(err))
    with _lock:
        if executable not in _cache:
            _cache[executable] = _ask(executable)
        return _cache[executable]


def forget() -> None:
    """Drops the cached listings, e.g. once the executable was set again or reinstalled."""
    with _lock:
        _cache.clear()


def _ask(executable: str) -> Listings:
    """Runs both listing commands side by side (each starts a Python of its own)."""
    with ThreadPoolExecutor(2) as pool:
        events = pool.submit(_listing, executable, "events", "summary")
        schemes = pool.submit(_listing, executable, "classes", "description")
    errors = []
    entries: list[tuple[Entry, ...]] = []
    for future in (events, schemes):
        try:
            entries.append(future.result())
        except ListingError as err:
            errors.append(str(err))
            entries.append(())
    error = f"{' '.join(errors)} {INSTALL_HINT}" if errors else None
    return Listings(entries[0], entries[1], error)


def _listing(executable: str, command: str, text: str) -> tuple[Entry, ...]:
    """``EXECUTABLE COMMAND --json`` read as entries, their description from the key ``text``;
    ListingError says what went wrong."""
    what = f"{executable} {command} --json"
    try:
        done = subprocess.run(
            [executable, command, "--json"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=clean_environment(),
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=LISTING_TIMEOUT_S,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except subprocess.TimeoutExpired as err:
        raise ListingError(f"{what} did not answer within {LISTING_TIMEOUT_S:g} s.") from err
    except OSError as err:
        raise ListingError(f"Could not start {what}: {err}.") from err
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise ListingError(
            f"{what} failed (exit status {done.returncode}){': ' + tail if tail else ''}."
        )
    try:
        items = json.loads(done.stdout)
        return tuple(
            Entry(
                str(item["name"]),
                str(item[text]),
                tuple(str(p["name"]) for p in item.get("params", ())),
            )
            for item in items
        )
    except (ValueError, TypeError, KeyError) as err:
        raise ListingError(f"{what} printed no listing: {done.stdout[:200]!r}.") from err
