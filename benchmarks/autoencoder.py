"""The autoencoder of one or more models on held-out crops: PSNR, SSIM and sharpness ratio.

The same crops and figures as the first table of ``geochange evaluate`` (the held-out square of
each OpenEarthMap tile and 8 crops of the held-out Dubai files), in seconds instead of the
evaluation's minutes, to compare decoders before and after a refit:

    .venv/bin/python benchmarks/autoencoder.py default build/refit [--data ../shared/data]
        [--pack build/pack.npz --pca 8:4 8:16 4:4]

``--pca F:K`` adds a reference row: a linear code of the same shape as a latent (K channels per
F x F pixels), the K leading principal components of the F x F patches of the pack's crops
(training crops only; the held-out ones are never packed). What a code of that size keeps
without any learning, so an autoencoder below it is undertrained, not short of channels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from geochange.evaluation.quality import autoencoder_scores, heldout_crops
from geochange.model import load_model
from geochange.painting import resolve_model
from geochange.training.packed import read_pack

PCA_SAMPLES = 50_000
"""Patches drawn from the pack to fit each linear code."""


class PatchPCA:
    """A linear code with an autoencoder's ``encode``/``decode``: the ``channels`` leading
    principal components of ``factor`` x ``factor`` RGB patches in [-1, 1]."""

    def __init__(self, images: np.ndarray, factor: int, channels: int) -> None:
        self.factor = factor
        patches = self._patches(torch.from_numpy(images).float() / 127.5 - 1.0)
        draw = np.random.default_rng(0).choice(len(patches), PCA_SAMPLES, replace=False)
        sample = patches[torch.from_numpy(draw)]
        self.mean = sample.mean(0)
        self.basis = torch.linalg.svd(sample - self.mean, full_matrices=False).Vh[:channels]

    def _patches(self, pixels: torch.Tensor) -> torch.Tensor:
        n, c, h, w = pixels.shape
        f = self.factor
        grid = pixels.reshape(n, c, h // f, f, w // f, f).permute(0, 2, 4, 1, 3, 5)
        return grid.reshape(-1, c * f * f)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        n, _, h, w = pixels.shape
        codes = (self._patches(pixels) - self.mean) @ self.basis.T
        return codes.reshape(n, h // self.factor, w // self.factor, -1).permute(0, 3, 1, 2)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        n, _, rows, cols = codes.shape
        f = self.factor
        flat = codes.permute(0, 2, 3, 1).reshape(-1, codes.shape[1]) @ self.basis + self.mean
        grid = flat.reshape(n, rows, cols, 3, f, f).permute(0, 3, 1, 4, 2, 5)
        return grid.reshape(n, 3, rows * f, cols * f).clamp(-1.0, 1.0)


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
        images = read_pack(args.pack)[0]
        for code in args.pca:
            factor, channels = (int(v) for v in code.split(":"))
            name = f"linear PCA, {channels} per {factor}²"
            coders.append((name, PatchPCA(images, factor, channels)))
    for spec, coder in coders:
        scores = autoencoder_scores(coder, crops)
        for folder, score in scores.items():
            print(
                f"| {spec} | {folder} | {score['psnr_db']:.2f} | {score['ssim']:.3f} "
                f"| {score['sharpness_ratio']:.3f} |"
            )


if __name__ == "__main__":
    main()
