"""The ``geochange`` command: a click group with one module per subcommand (as in rio).

Exit status: 0 success, 2 bad usage or input, 1 internal failure.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

import click

from geochange import __version__
from geochange.cli.acquisitions import acquisitions
from geochange.cli.classes import classes
from geochange.cli.dataset import dataset
from geochange.cli.evaluate import evaluate
from geochange.cli.events import events
from geochange.cli.example import example
from geochange.cli.reporting import emit
from geochange.cli.simulate import simulate
from geochange.cli.synth import synth
from geochange.cli.train import train
from geochange.errors import InputError


class GeochangeGroup(click.Group):
    """Turns errors into messages and exit codes instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> object:
        json_lines = "--json" in sys.argv
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return super().invoke(ctx)
        except InputError as err:
            _fail(json_lines, err.in_cli_terms(), 2)
        except BrokenPipeError:
            # the reader went away (e.g. `geochange events | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except KeyboardInterrupt:
            _fail(json_lines, "interrupted; no finished output was left", 1)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as err:
            if not json_lines:
                traceback.print_exc()
            _fail(json_lines, f"internal error: {type(err).__name__}: {err}", 1)
        return None


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (e.g. a cancel in QGIS) unwinds like Ctrl-C, so partial outputs are removed."""
    raise KeyboardInterrupt


def _fail(json_lines: bool, message: str, code: int) -> None:
    if json_lines:
        emit("error", message=message, exit_code=code)
    else:
        click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@click.group(cls=GeochangeGroup)
@click.version_option(__version__, prog_name="geochange")
def cli() -> None:
    """Synthetic, georeferenced change-detection data.

    Simulate land-cover change events on a real place and write the before/after land cover,
    a change raster and change polygons.
    """


cli.add_command(simulate)
cli.add_command(events)
cli.add_command(classes)
cli.add_command(acquisitions)
cli.add_command(example)
cli.add_command(synth)
cli.add_command(train)
cli.add_command(evaluate)
cli.add_command(dataset)
