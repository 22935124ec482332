"""``geochange train pack``, ``geochange train autoencoder`` and ``geochange train diffusion``.

Training from a pack imports no GIS package (``python -m geochange.training`` runs these
commands alone, for a machine that has none); packing and training from folders do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from geochange.cli.options import (
    option_group,
    overwrite_opt,
    seed_opt,
    verbosity,
    verbosity_opts,
)
from geochange.cli.reporting import make_log
from geochange.model.config import PRESETS

if TYPE_CHECKING:
    pass

classes_opt = click.option(
    "--classes",
    metavar="SCHEME|YAML",
    help="Class scheme of the masks: oem, oem-index, dubai, loveda, flair, potsdam, worldcover, "
    "second, or a YAML file. Default: by layout (OpenEarthMap oem, LoveDA loveda, FLAIR flair, "
    "Potsdam potsdam, Dubai dubai, plain oem-index).",
)


_training_options = option_group(
    [
        click.argument("data", nargs=-1, required=True, type=click.Path(exists=True)),
        classes_opt,
        click.option(
            "--preset",
            "preset_name",
            type=click.Choice(list(PRESETS)),
            default="cpu",
            show_default=True,
            help="Model size for a new model (tiny is for tests).",
        ),
        click.option(
            "--model",
            "model_path",
            type=click.Path(exists=True, file_okay=False),
            help="Start from this model folder (e.g. a trained autoencoder) instead of --preset.",
        ),
        click.option(
            "--steps",
            type=click.IntRange(1),
            default=10_000,
            show_default=True,
            help="Optimizer steps in all (a resumed run stops at the same total).",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(1),
            default=8,
            show_default=True,
            help="Crops per step.",
        ),
        click.option(
            "--crop",
            type=click.IntRange(16),
            help="Crop edge in pixels; a multiple of the model's total downsampling. Default: "
            "256 from folders, the pack's crop from a pack (a smaller one takes windows of it).",
        ),
        click.option(
            "--crops",
            type=click.IntRange(1),
            help="Distinct crops to draw from. Default: one per quarter-crop stride over the "
            "training area of folders; every crop of a pack (every window, with a smaller --crop).",
        ),
        click.option(
            "--lr", type=float, default=1e-4, show_default=True, help="AdamW learning rate."
        ),
        click.option(
            "--ema-decay",
            type=click.FloatRange(0, 1, max_open=True),
            default=0.999,
            show_default=True,
            help="EMA decay of the saved weights.",
        ),
        click.option(
            "--checkpoint-every",
            type=click.IntRange(1),
            default=1000,
            show_default=True,
            help="Steps between checkpoints and preview PNGs.",
        ),
        click.option(
            "--resume",
            is_flag=True,
            help="Continue from the latest OUTPUT/checkpoint-STEP at its step.",
        ),
        click.option(
            "--device",
            type=click.Choice(["auto", "cpu", "cuda"]),
            default="auto",
            show_default=True,
            help="auto: CUDA when available. CUDA trains with bf16 autocast.",
        ),
        seed_opt,
        # Not the shared output_opt: a training folder fills up while it runs (checkpoints).
        click.option(
            "-o",
            "--output",
            required=True,
            type=click.Path(file_okay=False, writable=True),
            help="Output folder: checkpoints and losses.csv as it runs, the model at the end.",
        ),
        overwrite_opt,
        *verbosity_opts,
    ]
)
"""The options both subcommands share, so they mean the same in each."""


def _run(part: str, extra: dict[str, Any], **kw: Any) -> None:
    """Shared body of the subcommands; ``extra`` holds the trainer's own keyword arguments.

    torch and the model are imported by ``train``, so other commands start without them.
    """
    from geochange.training.train import train as run_training

    log = make_log(kw["verbose"], kw["quiet"])
    run_training(
        part,
        kw["data"],
        kw["output"],
        preset_name=kw["preset_name"],
        model=kw["model_path"],
        classes=kw["classes"],
        steps=kw["steps"],
        batch_size=kw["batch_size"],
        crop=kw["crop"],
        crops=kw["crops"],
        lr=kw["lr"],
        ema_decay=kw["ema_decay"],
        checkpoint_every=kw["checkpoint_every"],
        resume=kw["resume"],
        overwrite=kw["overwrite"],
        device=kw["device"],
        seed=kw["seed"],
        log=log,
        progress=not kw["quiet"],
        **extra,
    )
    log(f"Wrote model {kw['output']} (load it with --model {kw['output']})")


@click.group(short_help="Train the autoencoder or the diffusion model on image + mask tiles.")
def train() -> None:
    """Train on DATA: one or more folders, each drawn equally often, or one pack file made by
    `geochange train pack` (which needs no GIS package to read, e.g. on a lent GPU).

    Folders: OpenEarthMap (images/ + labels/ GeoTIFFs), LoveDA or Potsdam (images/ + labels/
    PNGs in a folder named after the source), FLAIR (images/IMG_N + masks/MSK_N), Dubai
    (tile_*/images + masks) or plain PNG pairs (images/ + masks/, img_A/ + mask_A/). LoveDA,
    FLAIR and Potsdam are resampled to the model's pixel size.

    OUTPUT becomes a model folder (usable with --model) holding losses.csv (step,loss) and
    checkpoint-STEP/ folders with a preview.png. A held-out region is never trained on (nor
    packed): the bottom-right 256x256 px of every OpenEarthMap tile, or one file in ten
    otherwise.
    """


@train.command("pack", short_help="Pack training crops of folders into one .npz file.")
@click.argument("data_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="The pack file to write (.npz); it appears only when complete.",
)
@click.option(
    "--crop",
    type=click.IntRange(16),
    default=256,
    show_default=True,
    help="Crop edge in pixels at --gsd. Training may take smaller windows of these crops.",
)
@click.option(
    "--crops",
    type=click.IntRange(1),
    help="Crops in all, shared equally among the folders, none taking more than about two "
    "per crop area of its training pixels. Default: 280 at 256 px, scaled by area for other "
    "crops (about 24 MB).",
)
@classes_opt
@click.option(
    "--gsd",
    type=click.FloatRange(0, min_open=True),
    default=0.5,
    show_default=True,
    help="Pixel size in metres to pack at (the model's): LoveDA, FLAIR and Potsdam are "
    "resampled to it.",
)
@seed_opt
@overwrite_opt
@verbosity
def pack_command(
    data_dirs: tuple[str, ...],
    output: str,
    crop: int,
    crops: int | None,
    classes: str | None,
    gsd: float,
    seed: int,
    overwrite: bool,
    verbose: int,
    quiet: int,
) -> None:
    """Read training crops of DATA_DIRS as training does (same held-out regions, never packed)
    and write them to one compressed numpy file: uint8 images and class masks, each crop's
    source, and a record of sources, class schemes, held-out rules and file hashes. Train from
    it with `geochange train autoencoder|diffusion PACK.npz`."""
    from geochange.training.pack import pack

    result = pack(list(data_dirs), output, crop, crops, classes, seed, gsd, overwrite)
    if not quiet:
        shares = ", ".join(f"{name} {n}" for name, n in result.crops.items())
        click.echo(
            f"Wrote {result.path}: {sum(result.crops.values())} crops of {crop} px "
            f"({shares}), {result.bytes / 1e6:.1f} MB",
            err=True,
        )


@train.command("exemplars", short_help="Give a model an exemplar bank of real class crops.")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The model folder to write exemplars.safetensors into (replacing any there).",
)
@click.option(
    "--per-class",
    type=click.IntRange(1),
    default=6,
    show_default=True,
    help="Crops kept per class: among those full of it, the most unlike in its colour.",
)
@click.option(
    "--crop",
    type=click.IntRange(16),
    default=192,
    show_default=True,
    help="Crop edge in pixels (a pack's crops are cut to it).",
)
@classes_opt
@seed_opt
@verbosity
def exemplars(
    data: tuple[str, ...],
    model_path: str,
    per_class: int,
    crop: int,
    classes: str | None,
    seed: int,
    verbose: int,
    quiet: int,
) -> None:
    """Keep real crops of every class from DATA (a pack or folders, training crops only) in
    the model folder, so that synth can give changed land the texture of a class its image
    lacks. The crops carry DATA's licence."""
    from geochange.model import load_model
    from geochange.training.bank import build_bank
    from geochange.training.train import open_crops

    model = load_model(model_path)
    crops = open_crops(data, model.config.gsd_m, crop=crop, classes=classes, seed=seed)
    bank = build_bank(crops, per_class)
    path = bank.save(model_path)
    make_log(verbose, quiet)(f"Wrote {path}: {len(bank.images)} crops of {crop} px")


@train.command(short_help="Train the autoencoder to reconstruct image crops.")
@_training_options
@click.option(
    "--decoder-only",
    is_flag=True,
    help="Train only the decoder of --model's autoencoder: its latents stay the same, so its "
    "diffusion model stays valid.",
)
@click.option(
    "--adversarial",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Weight of a patch critic's loss, relative to the reconstruction loss at the "
    "decoder's last layer (0: none). It pays the decoder for real-looking detail instead of "
    "a blur; 0.1-0.5 is usual.",
)
@click.option(
    "--adversarial-start",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Steps the critic trains alone before the decoder feels it.",
)
def autoencoder(decoder_only: bool, adversarial: float, adversarial_start: int, **kw: Any) -> None:
    """Train the autoencoder on the image crops of DATA (masks pick the split only)."""
    options = {
        "decoder_only": decoder_only,
        "adversarial": adversarial,
        "adversarial_start": adversarial_start,
    }
    _run("autoencoder", options, **kw)


@train.command(short_help="Train the mask encoder and UNet on a frozen autoencoder.")
@_training_options
@click.option(
    "--cache-latents",
    is_flag=True,
    help="Encode each crop once per rotation and flip drawn, and keep the latents (faster; "
    "uses memory per crop and turn seen).",
)
@click.option(
    "--normalize-latents/--keep-latent-scale",
    default=None,
    help="Measure the latents' mean and spread on training crops and rescale them to zero mean "
    "and unit variance before training. Default: only for a model without diffusion training.",
)
def diffusion(cache_latents: bool, normalize_latents: bool | None, **kw: Any) -> None:
    """Train the mask-conditioned diffusion model on DATA; pass a trained autoencoder with
    --model (the autoencoder stays frozen)."""
    _run(
        "diffusion", {"cache_latents": cache_latents, "normalize_latents": normalize_latents}, **kw
    )
