"""``geochange acquisitions``."""

from __future__ import annotations

import json

import click

from geochange.acquisition import LIMITS, PARAMETERS, PRESETS, SEASONS, range_text


@click.command(short_help="List the acquisition-difference controls and presets.")
@click.option("--json", "json_output", is_flag=True, help="Print the list as one JSON document.")
def acquisitions(json_output: bool) -> None:
    """List the controls that make t2 look like another acquisition of the same place (units,
    defaults, ranges) and the presets with their values.

    Use them with --acquisition, e.g. --acquisition realistic or
    --acquisition realistic,noise=0.03 or --acquisition radiometry=0.3,season=autumn
    """
    if json_output:
        listing = {
            "parameters": [
                {
                    "name": p.name,
                    "unit": p.unit,
                    "default": p.default,
                    **(
                        {"values": list(SEASONS)}
                        if p.name == "season"
                        else {"minimum": LIMITS[p.name][0], "maximum": LIMITS[p.name][1]}
                    ),
                    "help": p.help,
                }
                for p in PARAMETERS
            ],
            "presets": {name: acq.to_dict() for name, acq in PRESETS.items()},
        }
        click.echo(json.dumps(listing, indent=2))
        return
    click.echo("parameters")
    for p in PARAMETERS:
        click.echo(f"    {f'{p.name}={p.default}':<22} {p.help} [{p.unit}; {range_text(p.name)}]")
    click.echo("\npresets")
    for name, acq in PRESETS.items():
        values = ",".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in acq.to_dict().items()
        )
        click.echo(f"    {name:<22} {values}")
