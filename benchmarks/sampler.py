"""Throughput of ``geochange synth`` and the share of its wall time spent outside the model.

For each preset (default: ``cpu`` and ``paper``, compared in the same run) a model with
**randomly initialised weights** is saved to a temporary folder; random weights paint noise, but
the arithmetic per call, and so the speed, is that of a trained model of the same preset. Each
preset then runs ``geochange synth --json`` on the generated example region, in its own process,
with the autoencoder's ``encode``/``decode`` and the UNet's ``denoise`` wrapped in timers (on
CUDA the timers synchronise, so queued GPU work is charged to whoever waits on it).

Figures, per preset:

- *wall s*: ``timings.total_s`` of ``run.json`` — scan, events, change maps, painting and COG
  writing; excludes process start, imports and model loading, which are paid once per run.
- *tile windows*: ``sampling.tile_windows`` of ``run.json`` — tile-window denoising calls, i.e.
  for every denoising step of every block and timestamp (t1 generated from its mask, then t2),
  the number of latent tile windows sent through the UNet. A batch of 4 windows counts 4.
- *windows/s*: tile windows / wall s, the end-to-end rate including everything outside the model.
- *model %*: time inside ``denoise`` + ``encode`` + ``decode`` / wall s.
- *outside %*: 100 - model %: reading scratch rasters, events, change maps, one-hot masks, canvas
  fusion, the mixing rule, scheduler steps, RGB conversion and GeoTIFF writing.

Goal (issue 3): outside % ≤ 15 on CPU.

    .venv/bin/python benchmarks/sampler.py [--presets cpu paper] [--device cpu] [--sampler ddim]
        [--steps 20] [--size 512] [--tile-size 256] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EVENTS = "building_add:count=10,deforestation:fraction=0.2"
GOAL_OUTSIDE = 15.0
"""Largest share (percent) of wall time outside the model that issue 3 accepts on CPU."""


def timed(method: Callable, totals: dict[str, float], cuda: bool) -> Callable:
    """Wrap a model method so its time adds to ``totals[name]``.

    On CUDA the device is synchronised before and after, so the model's time is its own and not
    that of work queued earlier (which stays outside the model, where it belongs).
    """
    import torch

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if cuda:
            torch.cuda.synchronize()
        tic = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            if cuda:
                torch.cuda.synchronize()
            totals[method.__name__] = totals.get(method.__name__, 0.0) + time.perf_counter() - tic

    return wrapper


def device_name(device: str) -> str:
    """The chip, for the table: GPU name, or CPU model and core count."""
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name(0)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """One preset, in this (child) process: make the model, run ``synth``, gather the figures."""
    import torch

    from geochange.cli.main import cli
    from geochange.model import SemanticLDM, preset

    work = Path(spec["work"])
    torch.manual_seed(0)
    model = SemanticLDM(preset(spec["preset"]))
    params = sum(p.numel() for p in model.parameters())
    folder = model.save_pretrained(work / f"model_{spec['preset']}")
    del model

    totals: dict[str, float] = {}
    cuda = spec["device"] == "cuda"
    for name in ("denoise", "encode", "decode"):
        setattr(SemanticLDM, name, timed(getattr(SemanticLDM, name), totals, cuda))
    output = work / f"out_{spec['preset']}"
    argv = [
        "synth",
        spec["region"],
        "--events",
        EVENTS,
        "--model",
        str(folder),
        "--device",
        spec["device"],
        "--sampler",
        spec["sampler"],
        "--steps",
        str(spec["steps"]),
        "--tile-size",
        str(spec["tile_size"]),
        "--batch-size",
        str(spec["batch_size"]),
        "--precision",
        spec["precision"],
        *(["--compile"] if spec["compile"] else []),
        "--seed",
        "0",
        "--json",
        "--overwrite",
        "-o",
        str(output),
    ]
    try:
        cli.main(argv, prog_name="geochange", standalone_mode=False)
    except SystemExit as stop:  # the CLI exits on handled errors after printing them
        if stop.code:
            raise
    run = json.loads((output / "run.json").read_text())
    wall = run["timings"]["total_s"]
    model_s = sum(totals.values())
    return {
        **spec,
        "params_m": params / 1e6,
        "device_name": device_name(spec["device"]),
        "tile_windows": run["sampling"]["tile_windows"],
        "wall_s": wall,
        "model_s": model_s,
        "parts_s": totals,
        "timings": run["timings"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table, so ``gpu.sh`` can write it straight into a document."""
    head = (
        "| preset | params (M) | device | sampler | steps | size | tile windows | wall s "
        "| windows/s | model s (denoise / enc+dec) | model % | outside % | outside ≤ 15 % |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        share = 100.0 * r["model_s"] / r["wall_s"]
        parts = r["parts_s"]
        coder = parts.get("encode", 0.0) + parts.get("decode", 0.0)
        met = "yes" if 100.0 - share <= GOAL_OUTSIDE else "no"
        lines.append(
            f"| {r['preset']} | {r['params_m']:.1f} | {r['device']} | {r['sampler']} "
            f"| {r['steps']} | {r['size']}² | {r['tile_windows']} | {r['wall_s']:.1f} "
            f"| {r['tile_windows'] / r['wall_s']:.2f} "
            f"| {r['model_s']:.1f} ({parts.get('denoise', 0.0):.1f} / {coder:.1f}) "
            f"| {share:.1f} | {100.0 - share:.1f} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper"])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sampler", choices=("ddim", "dpm"), default="ddim")
    parser.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=[20],
        help="Denoising steps; one value for all presets or one per preset.",
    )
    parser.add_argument("--size", type=int, default=512, help="Region edge in pixels.")
    parser.add_argument("--tile-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--compile", action="store_true", help="synth --compile (torch.compile).")
    parser.add_argument("--work", type=Path, help="Working folder (default: a temporary one).")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: a JSON spec
    args = parser.parse_args()
    if args.one:
        spec = json.loads(args.one)
        Path(spec["result"]).write_text(json.dumps(run_one(spec)))
        return
    if len(args.steps) not in (1, len(args.presets)):
        parser.error("--steps takes one value or one per preset")
    steps = args.steps * len(args.presets) if len(args.steps) == 1 else args.steps

    from geochange.example import write_example

    work = args.work or Path(tempfile.mkdtemp(prefix="geochange-sampler-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        region = write_example(work / f"region_{args.size}", size=args.size, seed=0, overwrite=True)
        for name, n in zip(args.presets, steps, strict=True):
            spec = {
                "preset": name,
                "device": args.device,
                "sampler": args.sampler,
                "steps": n,
                "size": args.size,
                "tile_size": args.tile_size,
                "batch_size": args.batch_size,
                "precision": args.precision,
                "compile": args.compile,
                "region": str(region),
                "work": str(work),
                "result": str(work / f"result_{name}.json"),
            }
            # Each preset in its own process: no warm caches or allocator state carried over.
            done = subprocess.run(
                [sys.executable, __file__, "--one", json.dumps(spec)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            if done.returncode != 0:
                raise SystemExit(f"preset {name} failed:\n{done.stderr}")
            rows.append(json.loads(Path(spec["result"]).read_text()))
            print(f"{name}: done in {rows[-1]['wall_s']:.1f} s", file=sys.stderr, flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    import torch

    print(f"Device: {rows[0]['device_name']}; torch {torch.__version__}")
    print(
        f"Region {args.size}² (generated example), events {EVENTS}, tile {args.tile_size} px, "
        f"batch {args.batch_size}. Model weights are random (untrained): speed is that of a "
        "trained model of the same preset, the pictures are not."
    )
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
