"""Reporters for the terminal: a progress bar and log lines, or JSON lines for programs."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable

import click
from tqdm import tqdm

from geochange.report import Reporter


def emit(kind: str, **fields: object) -> None:
    """One JSON line on stdout."""
    sys.stdout.write(json.dumps({"type": kind, **fields}, default=str) + "\n")
    sys.stdout.flush()


def print_plan(plan: dict, json_lines: bool) -> None:
    """A ``--dry-run`` plan: one JSON line in ``--json`` mode, readable lines otherwise."""
    if json_lines:
        emit("plan", **plan)
    else:
        click.echo(readable_plan(plan))


def readable_plan(plan: dict) -> str:
    """The plan as a person reads it: what is read, how it is cut, what happens, what is
    written (the same content as ``--json``'s, less the transform)."""
    grid, blocks = plan["grid"], plan["blocks"]
    width_m, height_m = grid["pixel_size_m"]
    events = "; ".join(
        " ".join([e["name"], *(f"{k}={v}" for k, v in e.items() if k != "name")])
        for e in plan["events"]
    )
    lines = [
        f"region    {plan['region']} (classes {plan['classes']})",
        f"grid      {grid['crs']}, {grid['width']} x {grid['height']} px of "
        f"{width_m} x {height_m} m",
        f"blocks    {blocks['count']} ({blocks['rows']} x {blocks['cols']}) of "
        f"{blocks['size']} px with a {blocks['halo']} px halo",
        f"events    {events or 'none'}",
        f"drawn     {plan['user_changes']} user changes; changes under "
        f"{plan['min_area_m2']} m² are undone or merged",
    ]
    if "model" in plan:
        model = plan["model"]
        lines.append(f"model     {model['path']} (sha256 {model['sha256'][:12]})")
    if "sampling" in plan:
        settings = " ".join(
            f"{k}={_setting(v)}" for k, v in plan["sampling"].items() if v is not None
        )
        lines.append(f"sampling  {settings}")
    if "paint" in plan:
        paint = plan["paint"]
        lines.append(
            f"painting  {paint['tile_windows']} tile windows, about "
            f"{_duration(paint['estimate_s'])} on {paint['timed_on']} (timed here just now)"
        )
    lines.append("writes    " + "\n          ".join(plan["outputs"]))
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _setting(value: object) -> str:
    """A sampling setting in one word: groups as name:value pairs joined by commas."""
    if isinstance(value, dict):
        return ",".join(f"{k}:{_setting(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "/".join(str(v) for v in value)
    return str(value)


class TerminalReporter(Reporter):
    """Progress bar on stderr (unless quiet), warnings as log lines."""

    def __init__(self, show_progress: bool) -> None:
        self.show_progress = show_progress
        self._bar: tqdm | None = None

    def stage(self, name: str, total: int, unit: str = "block") -> None:
        self.close()
        if self.show_progress:
            self._bar = tqdm(total=total, desc=name, unit=f" {unit}", file=sys.stderr, leave=False)

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(steps)

    def warning(self, message: str) -> None:
        if self._bar is not None:
            self._bar.clear()
        click.echo(f"Warning: {message}", err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class JsonReporter(Reporter):
    """Progress and warnings as JSON lines:
    ``{"type": "progress", "stage", "done", "total", "unit"}``."""

    def __init__(self) -> None:
        self._stage, self._done, self._total, self._unit = "", 0, 0, "block"

    def stage(self, name: str, total: int, unit: str = "block") -> None:
        self._stage, self._done, self._total, self._unit = name, 0, total, unit
        emit("progress", stage=name, done=0, total=total, unit=unit)

    def advance(self, steps: int = 1) -> None:
        if steps == 0:
            return
        self._done += steps
        emit("progress", stage=self._stage, done=self._done, total=self._total, unit=self._unit)

    def warning(self, message: str) -> None:
        emit("warning", message=message)


def make_reporter(json_lines: bool, verbose: int, quiet: int) -> Reporter:
    """Progress and warnings of a run as -v/-q/--json ask."""
    _configure_logging(verbose, quiet)
    if json_lines:
        return JsonReporter()
    return TerminalReporter(show_progress=quiet == 0 and sys.stderr.isatty())


def make_log(verbose: int, quiet: int) -> Callable[[str], None]:
    """Messages of commands without a progress reporter (train, evaluate): on stderr unless
    -q, with the log level of -v/-q as everywhere else."""
    _configure_logging(verbose, quiet)
    return (lambda _message: None) if quiet else (lambda message: click.echo(message, err=True))


def _configure_logging(verbose: int, quiet: int) -> None:
    level = logging.WARNING - 10 * verbose + 10 * quiet
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s: %(message)s")
