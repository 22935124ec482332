"""``python -m geochange.training``: the ``geochange train`` commands alone.

The full CLI imports the GIS packages; this entry point imports only what training needs, so a
machine without them (a lent GPU, carrying 64 MiB) trains from a pack. Errors and signals are
handled as ``geochange`` handles them: a bad input is a message and exit status 2, and SIGTERM
(a time budget's ``timeout``) unwinds like Ctrl-C, so the loop saves a checkpoint first.
"""

from __future__ import annotations

import signal
import sys

import click

from geochange.cli.train import train
from geochange.errors import InputError


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        train.main(prog_name="python -m geochange.training", standalone_mode=False)
    except InputError as err:
        click.echo(f"Error: {err.in_cli_terms()}", err=True)
        sys.exit(2)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.Abort:
        click.echo("interrupted", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
