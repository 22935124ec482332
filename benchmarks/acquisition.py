"""Realism of the acquisition presets: t1/t2 correlation in unchanged and changed land.

Runs ``synth`` on the real OpenEarthMap tiles (t1 = the real image) once per ``--acquisition``
preset, with the same events and seed, and prints the pooled Pearson correlation of t1 and t2
in unchanged and in changed land, beside the same figures of the real bi-temporal pairs in
``second_examples`` and of the ChangeAnywhere authors' synthetic t2 of those pairs.

    .venv/bin/python benchmarks/acquisition.py [--data ../shared/data] [--seed 0] [--tiles ...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

from geochange.acquisition import PRESETS
from geochange.evaluation.metrics import masked_correlation
from geochange.inputs import open_inputs
from geochange.painting import SamplingOptions
from geochange.synth import synthesize

EVENTS = "building_add:count=20,deforestation:fraction=0.3,flood:fraction=0.2"
TILES = ("palu_8", "houston_16")


def _synth_figures(data: Path, tile: str, preset: str, seed: int, work: Path) -> tuple:
    folder = data / "openearthmap"
    out = work / f"{tile}_{preset}"
    with open_inputs(folder / "labels" / f"{tile}.tif", events=EVENTS) as inputs:
        options = SamplingOptions(acquisition=PRESETS[preset])
        synthesize(
            inputs,
            out,
            image=folder / "images" / f"{tile}.tif",
            options=options,
            seed=seed,
            device="cpu",
        )
    with rasterio.open(out / "t1.tif") as a, rasterio.open(out / "t2.tif") as b:
        t1, t2 = a.read(), b.read()
    with rasterio.open(out / "change.tif") as src:
        change = src.read(1)
    return masked_correlation(t1, t2, change == 0), masked_correlation(t1, t2, change == 1)


def _pairs_figures(root: Path, second: str) -> tuple[float, float]:
    """Pooled over the pairs of ``root``'s folders: unchanged and changed correlation."""
    unchanged, changed = [], []
    for folder in sorted(p for p in root.iterdir() if (p / "img_A").is_dir()):
        for path in sorted((folder / "img_A").iterdir()):
            a = np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)
            b = np.asarray(Image.open(folder / second / path.name).convert("RGB"))
            mask = np.asarray(Image.open(folder / "bcd_mask" / path.name)) > 0
            mask = mask if mask.ndim == 2 else mask[..., 0]
            unchanged.append(masked_correlation(a, b.transpose(2, 0, 1), ~mask))
            changed.append(masked_correlation(a, b.transpose(2, 0, 1), mask))
    return float(np.mean(unchanged)), float(np.mean(changed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiles", nargs="+", default=list(TILES), help="OpenEarthMap tiles")
    args = parser.parse_args()
    print("| t2 | corr. t1/t2 unchanged | corr. t1/t2 changed |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for preset in PRESETS:
            figures = [
                _synth_figures(args.data, t, preset, args.seed, Path(work)) for t in args.tiles
            ]
            mean = np.mean(figures, axis=0)
            print(f"| geochange, --acquisition {preset} | {mean[0]:.3f} | {mean[1]:.3f} |")
    examples = args.data / "second_examples"
    for second, name in (("img_B", "real pairs"), ("img_B_synthetic", "authors' synthetic t2")):
        unchanged, changed = _pairs_figures(examples, second)
        print(f"| {name} (second_examples, mean of pairs) | {unchanged:.3f} | {changed:.3f} |")


if __name__ == "__main__":
    main()
