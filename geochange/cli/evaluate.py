"""``geochange evaluate``: the quality report of a model on held-out data."""

from __future__ import annotations

from pathlib import Path

import click

from geochange.cli.options import overwrite_opt, precision_opt, verbosity
from geochange.cli.reporting import make_log
from geochange.writing.folder import output_path


@click.command(short_help="Measure a model on held-out data: PSNR/SSIM, semantic fidelity, ...")
@click.argument("model_spec", metavar="MODEL")
@click.argument("data_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Report folder."
)
@overwrite_opt
@click.option(
    "--segmenter",
    type=click.Path(dir_okay=False),
    help="A segmenter saved by an earlier evaluation (segmenter.safetensors). Default: train "
    "one on the training crops of DATA_DIRS (8 crops of 128 px per step; 1000 steps took 885 s "
    "on 2 busy CPU cores).",
)
@click.option(
    "--segmenter-steps",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Training steps of a new segmenter (without --segmenter).",
)
@click.option(
    "--steps", type=click.IntRange(1), default=20, show_default=True, help="Sampling steps."
)
@click.option(
    "--sampler",
    type=click.Choice(["ddim", "dpm"]),
    default="dpm",
    show_default=True,
    help="Solver of the generated images, as in synth.",
)
@precision_opt
@click.option(
    "--crops",
    type=click.IntRange(1),
    default=8,
    show_default=True,
    help="Held-out 256² crops per file-per-region folder (every OpenEarthMap held-out square "
    "is used).",
)
@click.option(
    "--seeds",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="synth runs per held-out OpenEarthMap square for change realism.",
)
@click.option(
    "--reference",
    type=click.Path(file_okay=False),
    help="Real bi-temporal pairs for the reference rows of change realism: img_A, img_B, "
    "bcd_mask (0/255), optionally img_B_synthetic and mask_A/mask_B, in the folder or its "
    "sub-folders. Default: second_examples beside the first DATA_DIR (as in ../shared/data); "
    "the rows are skipped with a note where it is missing.",
)
@click.option(
    "--no-ablation",
    is_flag=True,
    help="Only the default sampling variant and composition (pixel/latent, exemplars).",
)
@click.option("--no-seams", is_flag=True, help="Skip the 2x2-block seam run.")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@verbosity
def evaluate(
    model_spec: str,
    data_dirs: tuple[str, ...],
    output: str,
    overwrite: bool,
    segmenter: str | None,
    segmenter_steps: int,
    steps: int,
    sampler: str,
    precision: str,
    crops: int,
    seeds: int,
    reference: str | None,
    no_ablation: bool,
    no_seams: bool,
    device: str,
    verbose: int,
    quiet: int,
) -> None:
    """Measure MODEL (default or a model folder) on the held-out part of DATA_DIRS (the split
    of `geochange train`) and write OUTPUT/quality.json, quality.md and contact_sheet.png.

    \b
    Example:
        geochange evaluate default ../shared/data/openearthmap ../shared/data/dubai -o quality
    """
    from geochange.evaluation.quality import SegmenterRecipe, evaluate
    from geochange.painting import SamplingOptions

    evaluate(
        model_spec,
        list(data_dirs),
        output,
        overwrite=overwrite,
        segmenter_path=segmenter,
        recipe=SegmenterRecipe(steps=segmenter_steps),
        options=SamplingOptions(steps=steps, sampler=sampler, precision=precision),
        per_folder=crops,
        seeds=seeds,
        ablation=not no_ablation,
        seams=not no_seams,
        device=device,
        log=make_log(verbose, quiet),
        reference=reference or Path(data_dirs[0]).parent / "second_examples",
    )
    click.echo((output_path(output) / "quality.md").read_text())
