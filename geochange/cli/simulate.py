"""``geochange simulate``."""

from __future__ import annotations

import click

from geochange.cli.options import (
    creation_options_opt,
    json_opt,
    min_area_opt,
    output_opt,
    overwrite_opt,
    resume_opt,
    scheduler_opt,
    seed_opt,
    verbosity,
)
from geochange.cli.reporting import emit, make_reporter, print_plan
from geochange.distributed import open_scheduler
from geochange.inputs import open_inputs
from geochange.run import DEFAULT_BLOCK, Run
from geochange.simulate import simulate as run_simulation


def _check_block_size(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value <= 0 or value % 512:
        raise click.BadParameter("must be a positive multiple of 512", ctx=ctx, param=param)
    return value


@click.command(short_help="Simulate land-cover change events and write change maps.")
@click.argument("region", type=click.Path(dir_okay=False))
@click.option(
    "--classes",
    default="oem",
    show_default=True,
    metavar="SCHEME|YAML",
    help="Class scheme of REGION: oem (codes 1-8, 0 no data), oem-index (indices 0-7), dubai, "
    "worldcover, second, or a YAML file mapping codes or colours to classes.",
)
@click.option(
    "--events",
    "events_spec",
    default="",
    metavar="SPEC",
    help="Events to simulate, e.g. 'building_add:count=30,deforestation:fraction=0.2'. "
    "See `geochange events`.",
)
@click.option(
    "--buildings",
    type=click.Path(dir_okay=False),
    help="Building footprints (any OGR format) burned into the land cover as building first.",
)
@click.option(
    "--changes",
    type=click.Path(dir_okay=False),
    help="User-drawn change polygons with a 'to_class' field (class name or code 1-8) and an "
    "optional 'event' label; applied before --events.",
)
@click.option(
    "--where",
    type=click.Path(dir_okay=False),
    help="Polygons that confine the --events: they only change land inside them.",
)
@seed_opt
@min_area_opt
@click.option(
    "--crs",
    help="Output CRS (e.g. EPSG:32633); REGION is reprojected to it. For a REGION without a "
    "CRS, the CRS it is in. Default: REGION's CRS.",
)
@click.option(
    "--gsd",
    type=float,
    help="Output pixel size in metres on the ground, whatever the CRS's unit (feet are "
    "converted; in Web Mercator or a geographic CRS a pixel measures this at the region's "
    "centre); classes are resampled by mode. For a REGION without georeferencing, its pixel "
    "size. Default: REGION's.",
)
@click.option(
    "--block-size",
    type=int,
    callback=_check_block_size,
    default=DEFAULT_BLOCK,
    show_default=True,
    help="Block edge in pixels (multiple of 512); bounds memory.",
)
@output_opt
@overwrite_opt
@resume_opt
@scheduler_opt
@creation_options_opt
@json_opt
@click.option("--dry-run", is_flag=True, help="Print the plan (grid, blocks, events, outputs).")
@verbosity
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
