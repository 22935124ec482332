"""How much a model's denoising leans on its mask, from a pack (no GIS package: runs on the GPU
machine too).

For crops spread over the pack, at a few noise levels, the denoising error (MSE of the UNet's
output against its target, epsilon or v) with each crop's own mask and with another crop's.
A model that follows its masks has a much larger error with the wrong one where the layout is
decided (high noise). Also prints the latents' mean square, which the noise schedule assumes
is one.

    .venv/bin/python benchmarks/mask_influence.py default build/model --pack build/pack.npz
        [--crops 24] [--device cpu]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from geochange.model import load_model, one_hot
from geochange.painting import resolve_model
from geochange.training.crops import spread_indices
from geochange.training.packed import PackedData

TIMESTEPS = (100, 300, 500, 700, 900)
BATCH = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="default or model folders")
    parser.add_argument("--pack", type=Path, required=True)
    parser.add_argument("--crops", type=int, default=24)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    data = PackedData(args.pack)
    picks = spread_indices(len(data), args.crops)
    images = torch.stack([data.unaugmented(i)[0] for i in picks]).to(args.device)
    masks = torch.stack([data.unaugmented(i)[1] for i in picks]).to(args.device)
    others = masks.roll(1, 0)
    header = " | ".join(f"t = {t}" for t in TIMESTEPS)
    print(f"| model | latent mean square | {header} |")
    print("|---" * (len(TIMESTEPS) + 2) + "|")
    for name in args.models:
        model = load_model(resolve_model(name)).to(args.device).eval()
        generator = torch.Generator(args.device).manual_seed(0)
        cells = []
        with torch.no_grad():
            latents = torch.cat([model.encode(b) for b in images.split(BATCH)])
            for t in TIMESTEPS:
                noise = torch.randn(latents.shape, generator=generator, device=args.device)
                steps = torch.full((len(latents),), t, device=args.device)
                noisy = model.scheduler.add_noise(latents, noise, steps)
                target = model.target(latents, noise, steps)
                errors = []
                for chosen in (masks, others):
                    predicted = torch.cat(
                        [
                            model.denoise(noisy[i : i + BATCH], t, one_hot(chosen[i : i + BATCH]))
                            for i in range(0, len(latents), BATCH)
                        ]
                    )
                    errors.append(float((predicted - target).square().mean()))
                cells.append(f"{errors[0]:.3f} ({errors[1]:.3f})")
        print(f"| {name} | {float(latents.square().mean()):.2f} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
