"""Options shared by every command, defined once so they mean the same everywhere (as in rio)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from geochange.classes import SCHEMES
from geochange.defaults import DEFAULT_BLOCK
from geochange.events.base import DEFAULT_MIN_AREA_M2

Command = TypeVar("Command", bound=Callable[..., Any])

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
    help="Where blocks (or pairs) are computed: this process (dataset on a CPU: a thread per "
    "core), a new Dask cluster of N worker processes here, or a running Dask scheduler (its "
    "workers need geochange and the model). The files are the same as from one process (synth: "
    "with the same --threads).",
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


precision_opt = click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="Model arithmetic: fp32, or bf16/fp16 autocast (fp16 on CUDA only). auto: bf16 on a "
    "CUDA GPU or a CPU that computes it natively (AVX-512 BF16 or AMX; 1.7x the model's speed, "
    "pixels within 2 grey levels of fp32's), fp32 elsewhere.",
)


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
    "Default: COMPRESS=DEFLATE, BLOCKSIZE=512, OVERVIEW_RESAMPLING=MODE (NEAREST for "
    "change.tif, AVERAGE for images).",
)


def option_group(options: list[Callable[[Command], Command]]) -> Callable[[Command], Command]:
    """One decorator that adds ``options`` in the order listed, as if written one above the
    other, so commands that share them declare them once."""

    def apply(func: Command) -> Command:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


verbosity = option_group(verbosity_opts)


def _check_block_size(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value <= 0 or value % 512:
        raise click.BadParameter("must be a positive multiple of 512", ctx=ctx, param=param)
    return value


REGION_OPTS = [
    click.argument("region", type=click.Path(dir_okay=False)),
    click.option(
        "--classes",
        default="oem",
        show_default=True,
        metavar="SCHEME|YAML",
        help=f"Class scheme of REGION: {', '.join(SCHEMES)} (`geochange classes` says what "
        "each reads), or a YAML file mapping codes or colours to classes.",
    ),
    click.option(
        "--events",
        "events_spec",
        default="",
        metavar="SPEC",
        help="Events to simulate, e.g. 'building_add:count=30,deforestation:fraction=0.2'. "
        "See `geochange events`.",
    ),
    click.option(
        "--buildings",
        type=click.Path(dir_okay=False),
        help="Building footprints (any OGR format) burned into the land cover as building first.",
    ),
    click.option(
        "--changes",
        type=click.Path(dir_okay=False),
        help="User-drawn change polygons with a 'to_class' field (class name or code 1-8) and an "
        "optional 'event' label; applied before --events.",
    ),
    click.option(
        "--where",
        type=click.Path(dir_okay=False),
        help="Polygons that confine the --events: they only change land inside them.",
    ),
    seed_opt,
    min_area_opt,
    click.option(
        "--crs",
        help="Output CRS (e.g. EPSG:32633); REGION is reprojected to it. For a REGION without a "
        "CRS, the CRS it is in. Default: REGION's CRS.",
    ),
    click.option(
        "--gsd",
        type=float,
        help="Output pixel size in metres on the ground, whatever the CRS's unit (feet are "
        "converted; in Web Mercator or a geographic CRS a pixel measures this at the region's "
        "centre); classes are resampled by mode. For a REGION without georeferencing, its pixel "
        "size. Default: REGION's.",
    ),
    click.option(
        "--block-size",
        type=int,
        callback=_check_block_size,
        default=DEFAULT_BLOCK,
        show_default=True,
        help="Block edge in pixels (multiple of 512); bounds memory.",
    ),
    output_opt,
    overwrite_opt,
    resume_opt,
    scheduler_opt,
    creation_options_opt,
    json_opt,
    click.option("--dry-run", is_flag=True, help="Print the plan (grid, blocks, events, outputs)."),
    *verbosity_opts,
]
"""What `simulate` and `synth` read and write: the region, its events and the run's folder."""


region_options = option_group(REGION_OPTS)


PAINTING_OPTS = [
    click.option(
        "--model",
        "model_spec",
        default="default",
        show_default=True,
        metavar="default|PATH",
        help="Model folder written by `geochange train diffusion`, or the model shipped with "
        "geochange.",
    ),
    click.option(
        "--steps",
        type=click.IntRange(min=1),
        help="Denoising steps per image (the mixing rule's constants are fractions of them). "
        "Default: 20 for synth, 10 for dataset, whose pairs measured the same at 1.3-1.4 times the "
        "speed.",
    ),
    click.option(
        "--sampler",
        type=click.Choice(("ddim", "dpm")),
        default="dpm",
        show_default=True,
        help="Solver: DPM-Solver++ multistep (good in 20 steps) or DDIM (the paper's, 50 steps).",
    ),
    precision_opt,
    click.option(
        "--composition",
        type=click.Choice(("pixel", "latent")),
        default="pixel",
        show_default=True,
        help="pixel: each image after t1 keeps the image before where land did not change (its "
        "real pixels plus the model's variation) and takes the model's where it changed; latent: "
        "every pixel decoded from the latents, as in the ChangeAnywhere paper.",
    ),
    click.option(
        "--acquisition",
        "acquisition_spec",
        default="mild",
        show_default=True,
        metavar="PRESET|NAME=VALUE,...",
        help="How t2 (and later images) differ from t1 as another acquisition would, labels "
        "untouched: a preset (none, mild, realistic, strong), NAME=VALUE pairs, or a preset then "
        "overrides (realistic,noise=0.03). `geochange acquisitions` lists the controls with units.",
    ),
    click.option(
        "--exemplars/--no-exemplars",
        default=True,
        show_default=True,
        help="Start changed land from real pixels of its new class cut from within 256 px of it "
        "(harmonized by the model), rather than from the model alone.",
    ),
    click.option(
        "--device",
        type=click.Choice(("auto", "cpu", "cuda")),
        default="auto",
        show_default=True,
        help="Where the model runs; auto = cuda when available.",
    ),
]
"""How `synth` and `dataset` paint: the model, its sampler and the acquisition differences."""


painting_options = option_group(PAINTING_OPTS)
