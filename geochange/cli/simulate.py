"""``geochange simulate``."""

from __future__ import annotations

import click

from geochange.cli.options import region_options
from geochange.cli.reporting import emit, make_reporter, print_plan
from geochange.distributed import open_scheduler
from geochange.inputs import open_inputs
from geochange.run import Run
from geochange.simulation import simulate as run_simulation


@click.command(short_help="Simulate land-cover change events and write change maps.")
@region_options
def simulate(
    region: str,
    classes: str,
    events_spec: str,
    buildings: str | None,
    changes: str | None,
    where: str | None,
    seed: int,
    min_area: float,
    crs: str | None,
    gsd: float | None,
    block_size: int,
    output: str,
    overwrite: bool,
    resume: bool,
    scheduler: str,
    creation_options: dict[str, str],
    json_lines: bool,
    dry_run: bool,
    verbose: int,
    quiet: int,
) -> None:
    """Simulate land-cover change events on REGION and write georeferenced change maps.

    Writes to the -o folder: t1_landcover.tif and t2_landcover.tif (OpenEarthMap codes 1-8,
    0 = no data, with a colour table and a .qml style), change.tif (0 unchanged, 1 changed,
    255 no data), changes.gpkg (layer 'changes': event, from_class, to_class, area_m2) and
    run.json.

    \b
    Example:
        geochange simulate region.tif \\
            --events building_add:count=30,deforestation:fraction=0.2 -o out
    """
    reporter = make_reporter(json_lines, verbose, quiet)
    with open_inputs(
        region,
        classes=classes,
        events=events_spec,
        buildings=buildings,
        changes=changes,
        where=where,
        crs=crs,
        gsd=gsd,
        reporter=reporter,
        min_area=min_area,
    ) as inputs:
        if dry_run:
            print_plan(Run(inputs, output, block_size=block_size).describe(), json_lines)
            return
        with open_scheduler(scheduler) as workers:
            result = run_simulation(
                inputs,
                output,
                seed=seed,
                overwrite=overwrite,
                creation_options=creation_options,
                block_size=block_size,
                reporter=reporter,
                scheduler=workers,
                resume=resume,
            )
    if json_lines:
        emit("result", output=result.output, files=result.files, changes=result.summary["changes"])
    elif quiet == 0:
        pixels = result.summary["changes"]["pixels_by_event"]
        listing = ", ".join(f"{name} {count} px" for name, count in pixels.items())
        click.echo(f"Wrote {result.output} ({listing})", err=True)
