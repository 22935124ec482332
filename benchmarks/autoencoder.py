"""The autoencoder of one or more models on held-out crops: PSNR, SSIM and sharpness ratio.

The same crops and figures as the first table of ``geochange evaluate`` (the held-out square of
each OpenEarthMap tile and 8 crops of the held-out Dubai files), in seconds instead of the
evaluation's minutes, to compare decoders before and after a refit:

    .venv/bin/python benchmarks/autoencoder.py default build/refit [--data ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from geochange.evaluation.quality import autoencoder_scores, heldout_crops
from geochange.model import load_model
from geochange.painting import resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="default or model folders")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--per-folder", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    crops = heldout_crops(
        [args.data / "openearthmap", args.data / "dubai"], per_folder=args.per_folder
    )
    print("| model | held-out crops | PSNR (dB) | SSIM | sharpness ratio |")
    print("|---|---|---|---|---|")
    for spec in args.models:
        scores = autoencoder_scores(load_model(resolve_model(spec)).eval(), crops)
        for folder, score in scores.items():
            print(
                f"| {spec} | {folder} | {score['psnr_db']:.2f} | {score['ssim']:.3f} "
                f"| {score['sharpness_ratio']:.3f} |"
            )


if __name__ == "__main__":
    main()
