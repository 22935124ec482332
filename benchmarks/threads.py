"""``geochange synth`` on a busy CPU: the default thread count against ``--threads 1``.

Makes an example region, then times ``synth`` (each run in its own process) on a quiet machine
and again while this script keeps the cores busy with spinning processes of its own (``--load``
of them, default twice the cores). ``--old-spin`` adds the rows of torch's OpenMP default
(``GOMP_SPINCOUNT=300000``, what ``synth`` ran with before the CLI lowered it). The images of
the default runs, quiet and loaded, must be byte-identical: the thread count is the same, so
the arithmetic is.

Goal (issue 16): under load the default is no slower than ``--threads 1``.

    .venv/bin/python benchmarks/threads.py [--size 512] [--load 4] [--old-spin]
"""

from __future__ import annotations

import argparse
import filecmp
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EVENTS = "building_add:count=4,deforestation:fraction=0.4"


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def synth(region: Path, output: Path, extra: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one ``geochange synth`` run (process start and model load included)."""
    command = [sys.executable, "-m", "geochange.cli", "synth", str(region), "--events", EVENTS]
    command += ["--seed", "1", "-o", str(output), "--overwrite", "-q", *extra]
    tic = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, **env}, stderr=subprocess.DEVNULL)
    return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="Region side in pixels.")
    parser.add_argument("--load", type=int, default=2 * os.cpu_count(), help="Busy processes.")
    parser.add_argument("--old-spin", action="store_true", help="Add GOMP_SPINCOUNT=300000 rows.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="geochange-threads-"))
    example = [sys.executable, "-m", "geochange.cli", "example", "-o", str(work / "example")]
    subprocess.run([*example, "--size", str(args.size)], check=True, stdout=subprocess.DEVNULL)
    region = work / "example" / "region.tif"
    runs = [("default", [], {}), ("--threads 1", ["--threads", "1"], {})]
    if args.old_spin:
        runs.append(("default, GOMP_SPINCOUNT=300000", [], {"GOMP_SPINCOUNT": "300000"}))
    rows = []
    for loaded in (False, True):
        busy = [multiprocessing.Process(target=spin, args=(3600,)) for _ in range(args.load)]
        for process in busy if loaded else []:
            process.start()
        try:
            for name, extra, env in runs:
                output = work / f"{'loaded' if loaded else 'quiet'}-{len(rows)}"
                rows.append((loaded, name, synth(region, output, extra, env), output))
        finally:
            for process in busy if loaded else []:
                process.terminate()
    print(f"synth of a {args.size}² example region, {os.cpu_count()} cores, load {args.load}")
    print("| machine | threads | wall s |\n|---|---|---|")
    for loaded, name, seconds, _ in rows:
        print(f"| {'busy' if loaded else 'quiet'} | {name} | {seconds:.1f} |")
    quiet, busy = (
        next(r for r in rows if r[0] == loaded and r[1] == "default") for loaded in (0, 1)
    )
    one = next(r for r in rows if r[0] and r[1] == "--threads 1")
    same = all(filecmp.cmp(quiet[3] / n, busy[3] / n, shallow=False) for n in ("t1.tif", "t2.tif"))
    print(f"busy: default / --threads 1 = {busy[2] / one[2]:.2f} (goal ≤ 1.0)")
    print(f"default quiet and busy byte-identical: {same}")


if __name__ == "__main__":
    main()
