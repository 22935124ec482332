"""``geochange dataset``: a change-detection training set from real image + mask tiles."""

from __future__ import annotations

import click

from geochange.acquisition import parse_acquisition
from geochange.cli.options import (
    json_opt,
    output_opt,
    overwrite_opt,
    painting_options,
    resume_opt,
    scheduler_opt,
    seed_opt,
    verbosity,
)
from geochange.cli.reporting import emit, make_reporter


@click.command(short_help="Make a change-detection training set (LEVIR-CD or SECOND layout).")
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@output_opt
@click.option("--pairs", type=click.IntRange(min=1), required=True, help="Number of pairs.")
@click.option(
    "--layout",
    type=click.Choice(("levir", "second")),
    default="levir",
    show_default=True,
    help="levir: SPLIT/A, SPLIT/B, SPLIT/label (0/255). second: SPLIT/im1, SPLIT/im2, "
    "SPLIT/label1, SPLIT/label2 (class codes where changed, 0 elsewhere).",
)
@click.option(
    "--events",
    "events_spec",
    default="building_add:count=3,building_remove:count=1,random:fraction=0.1",
    show_default=True,
    metavar="SPEC",
    help="Change events on each pair's mask (see `geochange events`); counts are per pair.",
)
@click.option(
    "--tile-size",
    type=int,
    default=256,
    show_default=True,
    help="Edge of each pair in pixels (one model window; a multiple of the model's unit).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Pairs painted together, their tile windows in one model call. Default by device: "
    "1 on a CPU (batches are no faster there), 64 on a GPU. The pixels depend on which pairs "
    "share a batch, so the same seed gives the same bytes with the same --batch-size.",
)
@click.option(
    "--classes",
    metavar="SCHEME|YAML",
    help="Class scheme of the masks. Default by folder layout: oem for OpenEarthMap "
    "(images/ + labels/), dubai for the Dubai set, oem-index for images/ + masks/ or "
    "img_A/ + mask_A/.",
)
@click.option(
    "--gsd",
    type=float,
    help="Pixel size in metres of source tiles without georeferencing (events measure in "
    "metres). Default: the layout's own (LoveDA 0.3, FLAIR 0.2, Potsdam 0.05), else 0.5. "
    "Georeferenced tiles use their own.",
)
@seed_opt
@scheduler_opt
@resume_opt
@overwrite_opt
@json_opt
@verbosity
@painting_options
def dataset(
    source: str,
    output: str,
    pairs: int,
    layout: str,
    events_spec: str,
    tile_size: int,
    batch_size: int | None,
    classes: str | None,
    gsd: float | None,
    seed: int,
    scheduler: str,
    resume: bool,
    overwrite: bool,
    json_lines: bool,
    verbose: int,
    quiet: int,
    model_spec: str,
    steps: int | None,
    sampler: str,
    precision: str,
    composition: str,
    acquisition_spec: str,
    exemplars: bool,
    device: str,
) -> None:
    """Make a change-detection training set of --pairs pairs from the image + mask tiles in
    SOURCE, as the ChangeAnywhere paper does: t1 is a crop of a real image (copied byte for
    byte), the change events edit its real mask into the t2 land cover, and the diffusion
    model paints t2 from the real image with the ChangeAnywhere rule.

    SOURCE is a folder of OpenEarthMap tiles (images/ + labels/), the Dubai set
    (tile_*/images/ + tile_*/masks/), or images/ + masks/ or img_A/ + mask_A/ with the same
    file names. Images must be RGB uint8. Crops are drawn at random (tiles by their area),
    redrawn while less than half of the crop is labelled.

    \b
    Layouts (all files PNG, RGB uint8 images, uint8 labels):
      levir   train|val|test/A, B, label: label 255 where the class changed, 0 elsewhere;
              files train_1.png, train_2.png, ... (the same name in A, B and label).
      second  train|val|test/im1, im2, label1, label2: paletted labels holding the
              OpenEarthMap code (1 bareland ... 8 building) of t1 (label1) and t2 (label2)
              where the class changed, 0 (black) where it did not, as SECOND marks no
              change; files 00001.png, 00002.png, ...
    Pairs are split 70/10/20 into train/val/test by their index (a fixed cycle of ten), so
    a pair's split and name do not depend on --pairs. Crops are independent: one source
    area may appear in more than one split.

    Also written: dataset.json (parameters, source files with sha256, model and hash, seed,
    counts per split and per event, the share of pairs without change, versions, and the
    throughput in pairs per second) and pairs.csv (source and position of every pair, pixels
    changed per event). The same command and seed give byte-identical image and label files,
    whatever --scheduler. OUTPUT appears only when every pair is written; a run stopped
    before (Ctrl-C, a kill) keeps its pairs in .OUTPUT.partial and goes on with --resume.

    \b
    Example:
        geochange dataset ../shared/data/openearthmap --pairs 1000 --layout levir \\
            --events building_add:count=3,random:fraction=0.1 --seed 1 -o cd_pairs
    """
    # torch and diffusers load only here, so the other commands start fast
    from geochange.dataset import TileSource, make_dataset
    from geochange.distributed import open_scheduler
    from geochange.events import parse_events
    from geochange.painting import SamplingOptions
    from geochange.pairs import DATASET_STEPS
    from geochange.writing.folder import check_output

    reporter = make_reporter(json_lines, verbose, quiet)
    options = SamplingOptions(
        steps or DATASET_STEPS,
        sampler,
        tile_size=tile_size,
        precision=precision,
        composition=composition,
        acquisition=parse_acquisition(acquisition_spec),
        exemplars=exemplars,
    )
    # Bad tiles, events and outputs are refused before any Dask worker starts (seconds with
    # local:N).
    tiles = TileSource(source, classes, gsd)
    events = parse_events(events_spec)
    check_output(output, overwrite, resume, [source])
    with open_scheduler(scheduler) as workers:
        result = make_dataset(
            tiles,
            output,
            pairs=pairs,
            events=events,
            model=model_spec,
            options=options,
            seed=seed,
            device=device,
            classes=classes,
            gsd=gsd,
            layout=layout,
            batch_size=batch_size,
            overwrite=overwrite,
            resume=resume,
            scheduler=workers,
            reporter=reporter,
        )
    summary = result.summary
    timing, changes = summary["timing"], summary["changes"]
    if json_lines:
        emit(
            "result",
            output=result.output,
            splits=summary["splits"],
            changes=changes,
            timing=timing,
        )
    elif quiet == 0:
        splits = ", ".join(f"{name} {count}" for name, count in summary["splits"].items())
        speed = ""
        if timing["pairs_made"]:
            speed = (
                f"; {timing['pairs_made']} made in {timing['seconds']:.1f} s, "
                f"{timing['pairs_per_second']:.3g} pairs/s"
            )
        click.echo(
            f"Wrote {result.output}: {pairs} pairs ({splits}){speed}; "
            f"{changes['unchanged_share']:.0%} of them without change",
            err=True,
        )
