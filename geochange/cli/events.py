"""``geochange events``."""

from __future__ import annotations

import json

import click

from geochange.classes import CLASS_NAMES
from geochange.events import EVENTS


@click.command(short_help="List the change events and their parameters.")
@click.option("--json", "json_output", is_flag=True, help="Print the list as one JSON document.")
def events(json_output: bool) -> None:
    """List the change events, their parameters, defaults and the classes they change.

    Use them with --events, e.g. --events building_add:count=30,flood:fraction=0.5
    """
    if json_output:
        listing = [
            {
                "name": cls.name,
                "summary": cls.summary,
                "params": [
                    {
                        "name": p.name,
                        "type": p.kind.__name__,
                        "default": p.default,
                        "minimum": p.minimum,
                        "maximum": p.maximum,
                        "help": p.help,
                    }
                    for p in cls.params
                ],
                "transitions": sorted([CLASS_NAMES[a], CLASS_NAMES[b]] for a, b in cls.transitions),
            }
            for cls in EVENTS.values()
        ]
        click.echo(json.dumps(listing, indent=2))
        return
    for cls in EVENTS.values():
        click.echo(f"{cls.name}\n    {cls.summary}")
        for p in cls.params:
            limits = "" if p.minimum is None and p.maximum is None else f" [{p.range_text()}]"
            click.echo(f"    {f'{p.name}={p.default}':<22} {p.help}{limits}")
        sources = sorted({CLASS_NAMES[a] for a, _ in cls.transitions})
        targets = sorted({CLASS_NAMES[b] for _, b in cls.transitions})
        click.echo(f"    changes: {', '.join(sources)} -> {', '.join(targets)}\n")
