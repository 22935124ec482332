"""Options shared by every command, defined once so they mean the same everywhere (as in rio)."""

from __future__ import annotations

import click

from geochange.events.base import DEFAULT_MIN_AREA_M2

output_opt = click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False, writable=True),
    help="Output folder. It appears only when the run has finished.",
)
overwrite_opt = click.option(
    "--overwrite", is_flag=True, default=False, help="Replace an existing output folder."
)
resume_opt = click.option(
    "--resume",
    is_flag=True,
    default=False,
    help="Go on with a run of the same command into the same -o folder that was stopped "
    "before it finished (its work is kept in .OUTPUT.partial beside it), redoing only what was "
    "not finished; refused if the inputs or parameters differ.",
)
scheduler_opt = click.option(
    "--scheduler",
    default="local",
    show_default=True,
    metavar="local|local:N|tcp://HOST:PORT",
    help="Where blocks (or pairs) are computed: this process, a new Dask cluster of N worker "
    "processes here, or a running Dask scheduler (its workers need geochange and the model). "
    "The files are the same as from one process (synth: with the same --threads).",
)
min_area_opt = click.option(
    "--min-area",
    type=click.FloatRange(min=0),
    default=DEFAULT_MIN_AREA_M2,
    show_default=True,
    metavar="M2",
    help="Smallest change kept, in m²: smaller specks of change are undone, or merged into the "
    "change beside them, in every output (rasters and polygons alike). 0 keeps every pixel.",
)
seed_opt = click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Random seed (0 or more); same seed, same output.",
)
json_opt = click.option(
    "--json",
    "json_lines",
    is_flag=True,
    help="Print one JSON object per line (progress, warning, result) and nothing else on stdout.",
)
verbosity_opts = [
    click.option("-v", "--verbose", count=True, help="More log messages (repeatable)."),
    click.option("-q", "--quiet", count=True, help="Fewer messages: no progress bar."),
]


def parse_creation_options(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    options = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", ctx=ctx, param=param)
        options[name.strip().upper()] = value.strip()
    return options


creation_options_opt = click.option(
    "--co",
    "--profile",
    "creation_options",
    multiple=True,
    metavar="NAME=VALUE",
    callback=parse_creation_options,
    help="GDAL COG creation option for the rasters (repeatable), e.g. --co COMPRESS=ZSTD. "
    "Default: COMPRESS=DEFLATE, BLOCKSIZE=512, OVERVIEW_RESAMPLING=MODE.",
)


def verbosity(func):
    for option in reversed(verbosity_opts):
        func = option(func)
    return func
