"""``geochange classes``."""

from __future__ import annotations

import json

import click

from geochange.classes import NODATA, SCHEMES, ClassScheme

SOURCES = {
    "oem": "OpenEarthMap",
    "oem-index": "OpenEarthMap indices",
    "dubai": "Dubai (Humans in the Loop)",
    "loveda": "LoveDA",
    "potsdam": "ISPRS Potsdam",
    "flair": "FLAIR-1",
    "worldcover": "ESA WorldCover",
    "second": "SECOND labels",
}
"""The data set each built-in scheme reads, as a user knows it; the names listed are those of
geochange.classes.SCHEMES, and a scheme missing here is still listed, by its values alone."""


def _span(values: list[int]) -> str:
    """Sorted values, short: ``1-8``, ``0, 6`` or ``10, 20, ..., 100``."""
    if len(values) > 1 and values[-1] - values[0] == len(values) - 1:
        return f"{values[0]}-{values[-1]}"
    if len(values) <= 3:
        return ", ".join(map(str, values))
    return f"{values[0]}, {values[1]}, ..., {values[-1]}"


def describe(scheme: ClassScheme) -> str:
    """One line: the data set, then the values the scheme reads, from the scheme itself so the
    line cannot disagree with what ``--classes`` does."""
    if scheme.colours is not None:
        kept = sum(index != NODATA for index in scheme.colours.values())
        ignored = len(scheme.colours) - kept
        values = f"RGB, {kept} colours" + (f"; {ignored} no data" if ignored else "")
    else:
        codes = scheme.codes or {}
        values = f"codes {_span(sorted(v for v, i in codes.items() if i != NODATA))}"
        ignored = sorted(v for v, i in codes.items() if i == NODATA)
        values += f"; {_span(ignored)} no data" if ignored else ""
    source = SOURCES.get(scheme.name)
    return f"{source}, {values}" if source else values


@click.command(short_help="List the built-in class schemes of --classes.")
@click.option("--json", "json_output", is_flag=True, help="Print the list as one JSON document.")
def classes(json_output: bool) -> None:
    """List the built-in class schemes, the values --classes takes besides a YAML file.

    Each line says which land-cover values the scheme reads and which it ignores (no data).
    """
    listing = [{"name": name, "description": describe(scheme)} for name, scheme in SCHEMES.items()]
    if json_output:
        click.echo(json.dumps(listing, indent=2))
        return
    width = max(len(item["name"]) for item in listing)
    for item in listing:
        click.echo(f"{item['name']:<{width}}  {item['description']}")
    click.echo("\nOr give a YAML file with a codes: or colours: mapping of values to class names.")
