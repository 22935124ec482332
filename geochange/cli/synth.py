"""``geochange synth``: ``simulate`` plus the t1/t2 images painted by the diffusion model."""

from __future__ import annotations

import click

from geochange.acquisition import parse_acquisition
from geochange.cli.options import painting_options, region_options
from geochange.cli.reporting import emit, make_reporter, print_plan
from geochange.distributed import open_scheduler
from geochange.inputs import open_inputs
from geochange.run import Run


@click.command(short_help="Simulate change events and paint the t1/t2 images.")
@region_options
@click.option(
    "--image",
    type=click.Path(dir_okay=False),
    help="A real RGB uint8 image of REGION, warped onto the grid (bilinear): t1.tif is this "
    "image and t2 keeps its unchanged land. Default: t1 is generated from the t1 land cover.",
)
@click.option(
    "--eta", type=float, default=0.0, show_default=True, help="DDIM eta (0 = deterministic)."
)
@click.option(
    "--guidance",
    type=float,
    default=1.0,
    show_default=True,
    help="Classifier-free guidance scale; 1 = none (other values need mask dropout training).",
)
@click.option(
    "--compile",
    "compile_unet",
    is_flag=True,
    help="torch.compile the UNet: slow to start (about a minute), faster per step on a GPU.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Torch threads per painting process on a CPU. Default: all cores here, 1 per Dask "
    "worker. Outputs are byte-identical only between runs with the same value, so compare a "
    "--scheduler local:N run with --threads 1 here.",
)
@click.option(
    "--batch-size",
    type=int,
    default=4,
    show_default=True,
    help="Tile windows per model call.",
)
@click.option(
    "--tile-size",
    type=int,
    default=256,
    show_default=True,
    help="Edge of the tile windows the model sees, in image pixels.",
)
@click.option(
    "--overlap",
    type=int,
    default=64,
    show_default=True,
    help="Overlap of neighbouring tile windows, in image pixels (fused every step).",
)
@click.option(
    "--timestamps",
    type=click.IntRange(min=2),
    default=2,
    show_default=True,
    help="Images t1 ... tN: from t3 on, the events run again on the land cover before "
    "(tN_landcover.tif) and tN is painted from t(N-1).",
)
@click.option(
    "--preview",
    is_flag=True,
    help="Also write OUTPUT/preview.png: t1 | t2 with the change outlined in red, over the t1 | "
    "t2 land cover (at most 1024 px a side per panel).",
)
@painting_options
def synth(
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
    image: str | None,
    model_spec: str,
    steps: int | None,
    sampler: str,
    eta: float,
    precision: str,
    guidance: float,
    composition: str,
    acquisition_spec: str,
    exemplars: bool,
    device: str,
    compile_unet: bool,
    threads: int | None,
    batch_size: int,
    tile_size: int,
    overlap: int,
    timestamps: int,
    preview: bool,
) -> None:
    """Simulate land-cover change events on REGION and paint the before/after images.

    Writes everything `geochange simulate` writes plus t1.tif and t2.tif (... tN.tif and
    tN_landcover.tif with --timestamps N): RGB uint8
    Cloud-Optimized GeoTIFFs on the same grid, with an internal mask for no-data. run.json
    records the model (path, preset, sha256) and the sampling parameters.

    \b
    Example:
        geochange synth region.tif --image ortho.tif \\
            --events building_add:count=30 --model MODEL -o out
    """
    # torch and diffusers load only here, so the other commands start fast
    from geochange.painting import SamplingOptions, model_hash, open_painter, resolve_model
    from geochange.synth import synthesize

    reporter = make_reporter(json_lines, verbose, quiet)
    options = SamplingOptions(
        steps or SamplingOptions.steps,
        sampler,
        eta,
        guidance,
        tile_size,
        overlap,
        batch_size,
        precision,
        composition=composition,
        acquisition=parse_acquisition(acquisition_spec),
        exemplars=exemplars,
        compile=compile_unet,
        threads=threads,
    )
    folder = resolve_model(model_spec)
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
            run = Run(inputs, output, block_size=block_size)
            plan = run.describe()
            names = [f"t{k}_landcover.tif" for k in range(3, timestamps + 1)]
            names += [f"t{k}.tif" for k in range(1, timestamps + 1)]
            names += ["preview.png"] if preview else []
            plan["outputs"] += [str(run.output / name) for name in names]
            plan["model"] = {"path": str(folder), "sha256": model_hash(folder)}
            plan["sampling"] = options.to_dict()
            painter = open_painter(model_spec, options, seed, device)
            plan["paint"] = painter.estimate(run.plan, timestamps, image is not None)
            print_plan(plan, json_lines)
            return
        with open_scheduler(scheduler) as workers:
            result = synthesize(
                inputs,
                output,
                model=model_spec,
                image=image,
                options=options,
                seed=seed,
                device=device,
                timestamps=timestamps,
                overwrite=overwrite,
                creation_options=creation_options,
                block_size=block_size,
                reporter=reporter,
                scheduler=workers,
                resume=resume,
                preview=preview,
            )
    if json_lines:
        emit("result", output=result.output, files=result.files, changes=result.summary["changes"])
    elif quiet == 0:
        images = ", ".join(f"t{k}.tif" for k in range(1, timestamps + 1))
        click.echo(f"Wrote {result.output} ({images} and the change maps)", err=True)
