"""Dataset pairs per second from a pack of crops, importing no GIS package: the benchmark that
runs on the GPU machine (issue 16), which has torch and diffusers but no rasterio or geopandas.

Makes ``--pairs`` pairs as ``geochange dataset`` does (``geochange.pairs``: events on the crop's
mask, t2 painted from its image, PNGs encoded; written in the LEVIR-CD layout into a temporary
folder by this process, in index order) from the crops of a training pack (``geochange train
pack``), ``--batch-size`` pairs at a time with their model calls batched, in this process or in
``--workers`` spawned processes (each with its own copy of the model) while this one writes.
Prints pairs/s, the share of time inside the model (in this process only) and, for a batched
run, how many bytes of t2 differ from pairs made one at a time. A first group, untimed, warms
the device up.

    python benchmarks/pairs.py --pack build/pack.npz [--pairs 200] [--device cuda] [--steps 10]
        [--batch-size N] [--workers N] [--compare 8]

On the GPU machine, carry the pack and the wheels (``scripts/carry_wheels.sh``) and put the
wheels on ``PYTHONPATH`` first, as ``scripts/train_gpu.sh`` does.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from timing import timed

from geochange.distributed import in_order
from geochange.events import parse_events
from geochange.painting import Painter, SamplingOptions, built, open_painter
from geochange.pairs import (
    DATASET_STEPS,
    PAIR_BATCH,
    PairJob,
    PairMaker,
    PairResult,
    make_pairs,
    write_pair,
)
from geochange.training.packed import read_pack

EVENTS = "building_add:count=3,deforestation:fraction=0.3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, required=True, help="A pack of 256² crops.")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda.")
    parser.add_argument(
        "--steps", type=int, default=DATASET_STEPS, help="Sampler steps (DPM-Solver++)."
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-size", type=int, help="Pairs painted together (default by device: PAIR_BATCH)."
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="Spawned painting processes (0: this one)."
    )
    parser.add_argument(
        "--compare",
        type=int,
        default=0,
        help="Make the first N pairs again one at a time and count the t2 bytes that differ.",
    )
    args = parser.parse_args()

    images, masks, _, metadata = read_pack(args.pack)
    gsd = float(metadata["gsd_m"])
    size = images.shape[-1]
    options = SamplingOptions(args.steps, tile_size=size, overlap=0, batch_size=1, threads=1)
    painter: Painter = open_painter(args.model, options, args.seed, args.device)
    batch = args.batch_size or PAIR_BATCH[painter.device.type]
    sync = torch.cuda.synchronize if painter.device.type == "cuda" else None
    totals = {"model": 0.0}
    for name in ("encode", "decode", "denoise"):
        setattr(painter.model, name, timed(getattr(painter.model, name), totals, "model", sync))
    events = tuple(parse_events(EVENTS))
    maker = PairMaker(events, args.seed, painter, options.acquisition)
    draws = np.random.default_rng(args.seed).integers(0, len(images), batch + args.pairs)

    def job(index: int) -> PairJob:
        crop = int(draws[index])
        valid = np.ones(masks[crop].shape, bool)
        return PairJob(index, crop, 0, 0, images[crop], valid, masks[crop], (gsd, gsd))

    def groups(first: int, last: int) -> Iterator[list[PairJob]]:
        for start in range(first, last, batch):
            yield [job(i) for i in range(start, min(start + batch, last))]

    folder = Path(tempfile.mkdtemp(prefix="geochange-pairs-"))
    made: list[PairResult] = []
    if args.workers:
        spec = PairMaker(events, args.seed, painter.spec, options.acquisition)
        make = functools.partial(make_pairs, spec)
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(
            args.workers, mp_context=context, initializer=built, initargs=(painter.spec,)
        )
        list(pool.map(make, [next(groups(0, batch))] * args.workers))  # loads and warms up
        tic = time.perf_counter()
        stream = in_order(pool.submit, make, groups(batch, batch + args.pairs), 2 * args.workers)
    else:
        make_pairs(maker, next(groups(0, batch)))  # warms the device up
        tic, totals["model"] = time.perf_counter(), 0.0
        stream = map(functools.partial(make_pairs, maker), groups(batch, batch + args.pairs))
    for results in stream:
        for result in results:
            write_pair(folder, "levir", result, len(events))
            if len(made) < args.compare:
                made.append(result)
    seconds = time.perf_counter() - tic
    device = torch.cuda.get_device_name(0) if sync else "cpu, 1 thread"
    where = f"{args.workers} spawned processes" if args.workers else "this process"
    print(f"{args.pairs} pairs of {size}² on {device}, {args.steps} steps, {where}, ", end="")
    print(f"batches of {batch}:")
    print(f"  {args.pairs / seconds:.2f} pairs/s, {1000 * seconds / args.pairs:.1f} ms a pair")
    if not args.workers:
        print(f"  model {100 * totals['model'] / seconds:.0f} % of the time")
        outside = 1000 * (seconds - totals["model"]) / args.pairs
        print(f"  outside the model {outside:.1f} ms a pair")
    if made:
        differ = sum(
            int(np.sum(make_pairs(maker, [result.job])[0].image != result.image)) for result in made
        )
        total = len(made) * 3 * size * size
        print(f"  t2 bytes that differ from one pair at a time: {differ} of {total}")


if __name__ == "__main__":
    main()
