"""Speed and memory of ``geochange simulate`` against a plain rasterio copy to COG.

Makes generated land covers of 4096² and 16384² pixels (the example town, tiled with flips),
then runs, each in its own process so peak RSS is the process's own:

- ``geochange simulate`` with two events,
- a plain ``rasterio.shutil.copy`` of the same raster to a COG with the same compression.

Goals (issue 2): simulate ≤ 3x the plain copy's time at 16384²; simulate's peak RSS at 16384²
≤ 1.5x its peak RSS at 4096².

    .venv/bin/python benchmarks/simulate.py [--sizes 4096 16384] [--work DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import rasterio
from rasterio.windows import Window

EVENTS = "building_add:count=200,deforestation:fraction=0.2"
COPY = """
import sys, rasterio, rasterio.shutil
with rasterio.Env(GDAL_CACHEMAX=64):
    rasterio.shutil.copy(sys.argv[1], sys.argv[2], driver="COG", COMPRESS="DEFLATE",
                         NUM_THREADS="ALL_CPUS", BLOCKSIZE="512", OVERVIEW_RESAMPLING="MODE")
"""


def make_region(path: Path, size: int) -> None:
    """Tile the 2048² example town (flipped, so tiles join seamlessly) into a size² raster."""
    from geochange.classes import gdal_colormap
    from geochange.example import EXAMPLE_CRS, example_landcover, example_transform

    tile = example_landcover(2048, seed=0) + 1
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint8",
        "crs": EXAMPLE_CRS,
        "transform": example_transform(size),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "nodata": 0,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write_colormap(1, gdal_colormap())
        for row in range(0, size, 2048):
            for col in range(0, size, 2048):
                block = tile[:: -1 if (row // 2048) % 2 else 1, :: -1 if (col // 2048) % 2 else 1]
                dst.write(block[None], window=Window(col, row, 2048, 2048))


def measure(command: list[str]) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MiB) of one command, from GNU time.

    GNU time is a small C program, so the peak it reports is the command's own (a child forked
    from this Python process would inherit this process's peak in its rusage).
    """
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    seconds, kib = done.stderr.split()[-2:]
    return float(seconds), int(kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--work", type=Path, help="Working folder (default: a temporary one).")
    parser.add_argument("--make-region", nargs=2, metavar=("PATH", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_region:
        make_region(Path(args.make_region[0]), int(args.make_region[1]))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="geochange-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    geochange = [sys.executable, "-m", "geochange.cli"]
    rows = []
    try:
        for size in args.sizes:
            region = work / f"region_{size}.tif"
            if not region.exists():
                subprocess.run([sys.executable, __file__, "--make-region", str(region), str(size)])
            out = work / f"out_{size}"
            sim_s, sim_rss = measure(
                [
                    *geochange,
                    "simulate",
                    str(region),
                    "--events",
                    EVENTS,
                    "-q",
                    "--overwrite",
                    "-o",
                    str(out),
                ]
            )
            copy_s, copy_rss = measure(
                [sys.executable, "-c", COPY, str(region), str(work / "c.tif")]
            )
            rows.append((size, sim_s, sim_rss, copy_s, copy_rss))
            print(
                f"{size:>6}²  simulate {sim_s:7.1f} s {sim_rss:7.0f} MiB   "
                f"plain COG copy {copy_s:6.1f} s {copy_rss:6.0f} MiB   "
                f"time ratio {sim_s / copy_s:4.2f}",
                flush=True,
            )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        print(
            f"peak RSS {large[0]}² / {small[0]}²: {large[2] / small[2]:.2f} (goal ≤ 1.5); "
            f"time vs plain copy at {large[0]}²: {large[1] / large[3]:.2f}x (goal ≤ 3)"
        )


if __name__ == "__main__":
    main()
