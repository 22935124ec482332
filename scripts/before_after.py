"""The README's before/after figure: full-resolution crops of one real place, t1 | t2 as the
paper composes it (every pixel decoded from latents, no acquisition differences) | t2 as
geochange composes it by default (the real image kept where land did not change, exemplars
where it did, ``mild`` acquisition differences) | the change outlined.

    .venv/bin/python scripts/before_after.py [--data ../shared/data] [--model default] \
        [-o docs/before_after.png]

Runs ``synth`` twice on the real OpenEarthMap tile palu_8 with the same events and seed, then
cuts 256-px crops centred on a new building, a cleared forest and a flood.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from scipy import ndimage

from geochange.acquisition import PRESETS
from geochange.classes import BUILDING, TREE, WATER
from geochange.inputs import open_inputs
from geochange.painting import SamplingOptions
from geochange.synth import synthesize
from geochange.writing.preview import GAP, grid, outline, write_png

EVENTS = "building_add:count=20,deforestation:fraction=0.3,flood:fraction=0.2"
SIZE = 256


def _run(data: Path, out: Path, model: str, options: SamplingOptions) -> dict[str, np.ndarray]:
    label = data / "openearthmap" / "labels" / "palu_8.tif"
    image = data / "openearthmap" / "images" / "palu_8.tif"
    with open_inputs(label, events=EVENTS) as inputs:
        synthesize(inputs, out, model=model, image=image, options=options, seed=1, device="cpu")
    read = {}
    for name in ("t1", "t2"):
        with rasterio.open(out / f"{name}.tif") as src:
            read[name] = src.read()
    for name in ("t1_landcover", "t2_landcover", "change"):
        with rasterio.open(out / f"{name}.tif") as src:
            read[name] = src.read(1)
    return read


def _centre(mask: np.ndarray) -> tuple[int, int]:
    """Top-left of the crop centred on the largest connected part of ``mask``."""
    labels, count = ndimage.label(mask)
    largest = 1 + int(np.argmax(ndimage.sum_labels(mask, labels, range(1, count + 1))))
    rows, cols = ndimage.find_objects(labels)[largest - 1]
    top = (rows.start + rows.stop - SIZE) // 2
    left = (cols.start + cols.stop - SIZE) // 2
    height, width = mask.shape
    return int(np.clip(top, 0, height - SIZE)), int(np.clip(left, 0, width - SIZE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model", default="default", help="default or a model folder")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/before_after.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        paper = SamplingOptions(composition="latent", exemplars=False, acquisition=PRESETS["none"])
        paper = _run(args.data, Path(work) / "latent", args.model, paper)
        ours = _run(args.data, Path(work) / "pixel", args.model, SamplingOptions())
    changed = ours["change"] == 1
    before, after = ours["t1_landcover"] - 1, ours["t2_landcover"] - 1
    targets = [
        changed & (after == BUILDING),
        changed & (before == TREE),
        changed & (after == WATER),
    ]
    rows = []
    for target in targets:
        top, left = _centre(target)
        crop = (slice(None), slice(top, top + SIZE), slice(left, left + SIZE))
        rows.append(
            [
                ours["t1"][crop],
                paper["t2"][crop],
                ours["t2"][crop],
                outline(ours["t2"][crop], changed[crop[1:]]),
            ]
        )
    write_png(args.output, grid(rows, gap=GAP))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
