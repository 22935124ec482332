"""Throughput of ``geochange dataset`` and its CPU cost per pair outside the model.

Runs ``make_dataset`` in this process on real tiles (OpenEarthMap by default) with timers
around its parts, and prints per pair:

- *read*: cutting the crop from its tile (``TileSource.read``, redraws included);
- *events*: the change events on the crop's mask (``simulate_pair``);
- *model*: the model's ``encode``, ``decode`` and ``denoise`` calls;
- *painting outside the model*: the rest of painting t2 (exemplar fill, masks, mixing rule,
  scheduler steps, composition), with the exemplar fill also printed on its own;
- *acquisition*: t2 made another acquisition of the place (``apply_acquisition``);
- *writing*: encoding the PNGs, writing and renaming them, the pair log;
- *non-model*: everything but *model*, so the CPU cost that a GPU does not take away.

Pairs are made in one thread unless ``--threads`` says otherwise (``dataset`` makes them in
one thread per core): the per-part figures add up to a pair's cost on one core only then.

Goals (issue 16): non-model ≤ 50 ms per 256² pair on one core; ≥ 5 pairs/s end to end on 2
cores.

    .venv/bin/python benchmarks/dataset.py [--pairs 40] [--source DIR] [--precision auto|fp32|bf16]
        [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

SHARED = Path(os.environ.get("GEOCHANGE_SHARED_DATA", Path(__file__).parents[1] / "../shared/data"))
EVENTS = "building_add:count=3,deforestation:fraction=0.3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--source", type=Path, default=SHARED / "openearthmap")
    parser.add_argument("--model", default="default")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads making pairs (dataset's default: one per core); the parts are per pair "
        "only with 1 (default 1)",
    )
    args = parser.parse_args()

    import torch
    from timing import timed

    from geochange import dataset, painting, pairs
    from geochange.painting import Painter, SamplingOptions
    from geochange.pairs import DATASET_STEPS

    dataset.available_cores = lambda: args.threads
    totals: dict[str, float] = {}
    dataset.TileSource.read = timed(dataset.TileSource.read, totals, "read")
    pairs.simulate_pair = timed(pairs.simulate_pair, totals, "events")
    dataset.write_pair = timed(dataset.write_pair, totals, "writing")
    pairs.encode_pair = timed(pairs.encode_pair, totals, "encoding")
    pairs.paint_task = timed(pairs.paint_task, totals, "painting")
    pairs.apply_acquisition = timed(pairs.apply_acquisition, totals, "acquisition")
    painting.exemplar_fill = timed(painting.exemplar_fill, totals, "exemplars")
    original = Painter.__init__

    def instrumented(self: Painter, model: Any, *rest: Any, **kwargs: Any) -> None:
        for name in ("encode", "decode", "denoise"):
            setattr(model, name, timed(getattr(model, name), totals, "model"))
        original(self, model, *rest, **kwargs)

    Painter.__init__ = instrumented
    output = Path(tempfile.mkdtemp(prefix="geochange-dataset-")) / "out"
    tic = time.perf_counter()
    result = dataset.make_dataset(
        args.source,
        output,
        pairs=args.pairs,
        events=EVENTS,
        model=args.model,
        options=SamplingOptions(steps=DATASET_STEPS, precision=args.precision),
    )
    wall = time.perf_counter() - tic
    timing = result.summary["timing"]
    n = args.pairs
    model = totals.get("model", 0.0)
    outside_painting = totals["painting"] - model
    non_model = timing["seconds"] - model

    def ms(seconds: float) -> str:
        return f"{1000 * seconds / n:7.1f} ms"

    cores = os.cpu_count()
    print(
        f"{n} pairs of 256² from {args.source}, {args.precision},",
        f"torch {torch.__version__}, {cores} cores",
    )
    print(f"  read                        {ms(totals['read'])}")
    print(f"  events                      {ms(totals['events'])}")
    print(f"  model                       {ms(model)}")
    print(f"  painting outside the model  {ms(outside_painting)}")
    print(f"    of which exemplar fill    {ms(totals.get('exemplars', 0.0))}")
    print(f"  acquisition                 {ms(totals.get('acquisition', 0.0))}")
    print(f"  PNG encoding                {ms(totals['encoding'])}")
    print(f"  writing                     {ms(totals['writing'])}")
    print(f"  non-model (goal ≤ 50 ms)    {ms(non_model)}")
    print(f"pairs/s: {timing['pairs_per_second']:.2f} in the pair loop (goal ≥ 5 on 2 cores),")
    setup = wall - timing["seconds"]
    print(f"{n / wall:.2f} with the set-up (tiles hashed, model loaded: {setup:.1f} s)")


if __name__ == "__main__":
    main()
