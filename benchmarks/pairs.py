"""Dataset pairs per second from a pack of crops, importing no GIS package: the benchmark that
runs on the GPU machine (issue 16), which has torch and diffusers but no rasterio or geopandas.

Makes ``--pairs`` pairs as ``geochange dataset`` does (``geochange.pairs``: events on the crop's
mask, t2 painted from its image, PNGs written in the LEVIR-CD layout into a temporary folder)
from the crops of a training pack (``geochange train pack``), one pair at a time, and prints
pairs/s with the share of time inside the model. A first pair, untimed, warms the device up.

    python benchmarks/pairs.py --pack build/pack.npz [--pairs 200] [--device cuda] [--steps 20]

On the GPU machine, carry the pack and the wheels (``scripts/carry_wheels.sh``) and put the
wheels on ``PYTHONPATH`` first, as ``scripts/train_gpu.sh`` does.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geochange.events import parse_events
from geochange.painting import Painter, SamplingOptions, open_painter
from geochange.pairs import PairJob, PairMaker, make_pair, write_pair
from geochange.training.packed import read_pack

EVENTS = "building_add:count=3,deforestation:fraction=0.3"


def timed(function: Callable, totals: dict[str, float], cuda: bool) -> Callable:
    """Time spent in ``function``, synchronised on CUDA so queued work is charged to it."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if cuda:
            torch.cuda.synchronize()
        tic = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            if cuda:
                torch.cuda.synchronize()
            totals["model"] += time.perf_counter() - tic

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, required=True, help="A pack of 256² crops.")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda.")
    parser.add_argument("--steps", type=int, default=20, help="Sampler steps (DPM-Solver++).")
    parser.add_argument("--model", default="default")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    images, masks, _, metadata = read_pack(args.pack)
    gsd = float(metadata["gsd_m"])
    size = images.shape[-1]
    options = SamplingOptions(args.steps, tile_size=size, overlap=0, batch_size=1, threads=1)
    painter: Painter = open_painter(args.model, options, args.seed, args.device)
    cuda = painter.device.type == "cuda"
    totals = {"model": 0.0}
    for name in ("encode", "decode", "denoise"):
        setattr(painter.model, name, timed(getattr(painter.model, name), totals, cuda))
    maker = PairMaker(tuple(parse_events(EVENTS)), args.seed, painter, options.acquisition)
    draws = np.random.default_rng(args.seed).integers(0, len(images), args.pairs + 1)
    folder = Path(tempfile.mkdtemp(prefix="geochange-pairs-"))
    tic = 0.0
    for index, crop in enumerate(draws):
        if index == 1:  # the first pair warms the device up
            tic, totals["model"] = time.perf_counter(), 0.0
        valid = np.ones(masks[crop].shape, bool)
        job = PairJob(index, int(crop), 0, 0, images[crop], valid, masks[crop], (gsd, gsd))
        write_pair(folder, "levir", make_pair(maker, job), len(maker.events))
    seconds = time.perf_counter() - tic
    device = torch.cuda.get_device_name(0) if cuda else "cpu, 1 thread"
    print(f"{args.pairs} pairs of {size}² on {device}, {args.steps} steps:")
    print(f"  {args.pairs / seconds:.2f} pairs/s, {1000 * seconds / args.pairs:.1f} ms a pair")
    print(f"  model {100 * totals['model'] / seconds:.0f} % of the time")
    print(f"  outside the model {1000 * (seconds - totals['model']) / args.pairs:.1f} ms a pair")


if __name__ == "__main__":
    main()
