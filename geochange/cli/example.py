"""``geochange example``."""

from __future__ import annotations

from pathlib import Path

import click

from geochange.cli.options import output_opt, overwrite_opt, seed_opt, verbosity
from geochange.cli.reporting import make_log
from geochange.example import write_example


@click.command(short_help="Write a made-up example region to try geochange on.")
@output_opt
@overwrite_opt
@seed_opt
@click.option(
    "--size",
    type=click.IntRange(256, 8192),
    default=2048,
    show_default=True,
    help="Edge of the region in pixels (0.5 m each).",
)
@verbosity
def example(output: str, overwrite: bool, seed: int, size: int, verbose: int, quiet: int) -> None:
    """Write OUTPUT/region.tif: the land cover of a made-up town edge (roads, building blocks,
    trees, fields, water), 0.5 m pixels in UTM, OpenEarthMap codes.

    \b
    Example:
        geochange example -o example
        geochange simulate example/region.tif --events building_add -o out
    """
    log = make_log(verbose, quiet)
    path = write_example(Path(output), size=size, seed=seed, overwrite=overwrite)
    log(f"wrote {path}")
