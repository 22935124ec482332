"""``train``: one call that trains the autoencoder or the diffusion model of a model folder.

What ``geochange train autoencoder|diffusion`` runs: it opens the crops (a pack, which needs no
GIS package, or folders of tiles), makes or loads the model, keeps the output folder's rules
(an existing folder is continued with ``resume`` or replaced with ``overwrite``, and only a
model folder is ever deleted) and hands over to the loops of ``geochange.training.loops``.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geochange.errors import InputError
from geochange.model import SemanticLDM, load_model, pick_device, preset
from geochange.model.patch_autoencoder import PatchAutoencoder
from geochange.training.crops import CropSource, spread_indices
from geochange.writing.folder import MARKER, check_replaceable, output_path

if TYPE_CHECKING:
    import torch

PARTS = ("autoencoder", "diffusion")
FIT_CROPS = 64
"""Crops, spread over the data, whose patches a new ``PatchAutoencoder`` starts as the code of."""


def open_crops(
    data: Sequence[str | Path],
    gsd: float,
    *,
    crop: int | None = None,
    crops: int | None = None,
    classes: str | None = None,
    seed: int = 0,
) -> CropSource:
    """``data`` as one pack file (read without GIS packages) or folders of tiles (read
    through rasterio), at the model's pixel size ``gsd`` in metres."""
    packs = [d for d in data if Path(d).is_file()]
    if packs:
        if len(data) > 1:
            raise InputError(
                f"give one pack or folders, not {len(data)} arguments with a pack among them",
                "pack all the folders into one file with `geochange train pack`",
            )
        if classes:
            raise InputError(
                "--classes does not apply to a pack", "its classes were mapped when packing"
            )
        from geochange.training.packed import PackedData

        dataset = PackedData(packs[0], crop, seed, length=crops)
        if not math.isclose(dataset.metadata["gsd_m"], gsd):
            raise InputError(
                f"pack {packs[0]} holds {dataset.metadata['gsd_m']} m pixels, the model "
                f"{gsd} m ones",
                f"pack again with --gsd {gsd}",
            )
        return dataset
    from geochange.training.data import open_tiles

    return open_tiles(list(data), crop or 256, classes, "train", seed, length=crops, gsd=gsd)


def train(
    part: str,
    data: Sequence[str | Path],
    output: str | Path,
    *,
    preset_name: str = "cpu",
    model: str | Path | None = None,
    classes: str | None = None,
    steps: int = 10_000,
    batch_size: int = 8,
    crop: int | None = None,
    crops: int | None = None,
    lr: float = 1e-4,
    ema_decay: float = 0.999,
    checkpoint_every: int = 1000,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
    **trainer_options: Any,
) -> SemanticLDM:
    """Train ``part`` ("autoencoder" or "diffusion") on ``data`` into model folder ``output``
    and return the trained (EMA) model.

    A new model of preset ``preset_name`` is made unless ``model`` names a model folder to
    start from. ``trainer_options`` go to the part's loop: ``decoder_only`` for the
    autoencoder, ``cache_latents`` and ``normalize_latents`` for the diffusion model.
    """
    import torch

    from geochange.training.loops import train_autoencoder, train_diffusion

    if part not in PARTS:
        raise InputError(f"part must be one of {', '.join(PARTS)}, not {part!r}")
    pick_device(device)  # refused before any crop is read
    out = Path(output)
    if out.exists() and not resume:
        if not overwrite:
            raise InputError(
                f"output folder {out} exists", "pass --resume to continue it or --overwrite"
            )
        # only a model folder (or a geochange output) is deleted: never `-o .` or the data
        inputs = [*data, *([model] if model else [])]
        check_replaceable(output_path(out), inputs, (MARKER, "geochange.json"))
        shutil.rmtree(out)
    torch.manual_seed(seed)  # a new model's initial weights follow the seed too
    ldm = load_model(model) if model else SemanticLDM(preset(preset_name))
    dataset = open_crops(data, ldm.config.gsd_m, crop=crop, crops=crops, classes=classes, seed=seed)
    if not model and isinstance(ldm.vae, PatchAutoencoder):
        ldm.vae.fit(spread_crops(dataset, FIT_CROPS))
    # The UNet halves the latent once per block after the first, so both sizes must divide.
    multiple = ldm.config.downsampling * 2 ** (len(ldm.config.unet_block_out_channels) - 1)
    if dataset.crop % multiple:
        raise InputError(f"--crop {dataset.crop} is not a multiple of {multiple} for this model")
    trainer = train_autoencoder if part == "autoencoder" else train_diffusion
    return trainer(
        ldm,
        dataset,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        out_dir=out,
        checkpoint_every=checkpoint_every,
        seed=seed,
        resume=resume,
        log=log,
        ema_decay=ema_decay,
        device=device,
        progress=progress,
        **trainer_options,
    )


def spread_crops(dataset: CropSource, count: int) -> torch.Tensor:
    """Up to ``count`` crops (images in [-1, 1], stacked) at even steps through ``dataset``,
    so that every source of a pack is among them."""
    import torch

    return torch.stack([dataset.unaugmented(i)[0] for i in spread_indices(len(dataset), count)])
