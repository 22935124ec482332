"""The autoencoder of one or more models on held-out crops: PSNR, SSIM and sharpness ratio.

The same crops and figures as the first table of ``geochange evaluate`` (the held-out square of
each OpenEarthMap tile and 8 crops of the held-out Dubai files), in seconds instead of the
evaluation's minutes, to compare decoders before and after a refit:

    .venv/bin/python benchmarks/autoencoder.py default build/refit [--data ../shared/data]
        [--pack build/pack.npz --pca 8:4 8:16 4:4]

``--pca F:K`` adds a reference row: a linear code of the same shape as a latent (K channels per
F x F pixels), the K leading principal components of the F x F patches of 64 of the pack's
crops (training crops only; the held-out ones are never packed), which is where a new
``patch`` autoencoder starts. What a code of that size keeps without any learning, so an
autoencoder below it is undertrained, not short of channels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from geochange.evaluation.quality import autoencoder_scores, heldout_crops
from geochange.model import SemanticLDM, load_model, preset
from geochange.painting import resolve_model
from geochange.training.packed import PackedData
from geochange.training.train import FIT_CROPS, spread_crops


def linear_code(pack: Path, factor: int, channels: int) -> SemanticLDM:
    """A ``patch`` model whose autoencoder is right after ``fit`` to the pack's crops, as
    ``train --preset patch`` starts it: exactly the linear code of the ``factor`` x
    ``factor`` patches, its residual stacks adding nothing yet."""
    levels = (64,) * factor.bit_length()  # downsampling 2 ** (levels - 1) = factor
    model = SemanticLDM(
        preset("patch").with_(ae_block_out_channels=levels, latent_channels=channels)
    )
    model.vae.fit(spread_crops(PackedData(pack), FIT_CROPS))
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="default or model folders")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--per-folder", type=int, default=8)
    parser.add_argument("--pack", type=Path, help="Training crops for the --pca rows.")
    parser.add_argument(
        "--pca", nargs="*", default=[], metavar="F:K", help="Linear codes: K channels per F² px."
    )
    args = parser.parse_args()
    if args.pca and args.pack is None:
        parser.error("--pca needs --pack")
    torch.set_num_threads(1)
    crops = heldout_crops(
        [args.data / "openearthmap", args.data / "dubai"], per_folder=args.per_folder
    )
    print("| model | held-out crops | PSNR (dB) | SSIM | sharpness ratio |")
    print("|---|---|---|---|---|")
    coders = [(spec, load_model(resolve_model(spec)).eval()) for spec in args.models]
    if args.pca:
        for code in args.pca:
            factor, channels = (int(v) for v in code.split(":"))
            name = f"linear PCA, {channels} per {factor}²"
            coders.append((name, linear_code(args.pack, factor, channels)))
    for spec, coder in coders:
        scores = autoencoder_scores(coder, crops)
        for folder, score in scores.items():
            print(
                f"| {spec} | {folder} | {score['psnr_db']:.2f} | {score['ssim']:.3f} "
                f"| {score['sharpness_ratio']:.3f} |"
            )


if __name__ == "__main__":
    main()
