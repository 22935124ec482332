"""Peak memory of ``geochange simulate`` and ``geochange synth`` as the region grows.

Goal (issue 7): peak RSS at the largest region ≤ 1.5x the peak at the smallest, because both
commands work block by block and stream their outputs.

The regions cost neither memory nor disk: one 4096² example land cover is written once
(``geochange.example.write_example``), and each region is a GDAL VRT mosaic that repeats it
(1x1, 4x4, 8x8, ...) with georeferenced offsets. ``synth`` uses a tiny randomly initialised model
(``preset("tiny")``) with fast sampling options: its pictures are noise, but per block it holds the
same canvases, masks and writers as a real model, so the memory that grows with the region shows.

Every run is a fresh ``geochange`` process from this venv. Its peak RSS is the process's own
``ru_maxrss`` from ``os.wait4``. Linux carries the parent's peak into a child across ``exec``,
so this script imports nothing heavy: the inputs are made in a helper process, and the floor this
launcher puts under every figure is printed (it is the peak of ``/bin/true`` started the same
way). With ``--scheduler local:N`` the Dask workers are processes of their own: ``ru_maxrss``
then holds the largest single process, and the table adds the peak of the whole process tree,
summed and sampled every 0.2 s.

    .venv/bin/python benchmarks/memory.py [--sizes 4096 16384 32768] [--commands simulate synth]
        [--scheduler local:2] [-o results.md|results.json] [--work DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from xml.sax.saxutils import escape

BASE = 4096
"""Edge of the one example land cover that every region repeats."""
BUILDINGS_PER_BASE = 50
"""building_add count per 4096² of region: the same density of change at every size."""
EVENTS = "building_add:count={buildings},deforestation:fraction=0.2"
SYNTH_OPTIONS = "--steps 2 --sampler ddim --tile-size 64 --overlap 8 --batch-size 32 --threads 1"
GEOCHANGE = Path(sys.executable).with_name("geochange")


def prepare(work: Path, sizes: list[int], model: bool) -> None:
    """Write the base land cover, a VRT per size and (for synth) the tiny model into ``work``.

    Runs in a helper process (``--prepare``) so that rasterio, numpy and torch never enter the
    launcher's memory.
    """
    import rasterio

    from geochange.example import write_example

    base = work / "base" / "region.tif"
    if not base.exists():
        write_example(base.parent, size=BASE, seed=0, overwrite=True)
    with rasterio.open(base) as src:
        info = {
            "crs": src.crs.to_wkt(),
            "transform": src.transform,
            "colormap": src.colormap(1),
            "nodata": src.nodata,
            "block": src.block_shapes[0],
        }
    for size in sizes:
        (work / f"region_{size}.vrt").write_text(mosaic_vrt(base, size, info))
    if model and not (work / "tiny" / "model_index.json").exists():
        import torch

        from geochange.model import SemanticLDM, preset

        torch.manual_seed(0)
        SemanticLDM(preset("tiny")).save_pretrained(work / "tiny")


def mosaic_vrt(base: Path, size: int, info: dict) -> str:
    """A ``size``² VRT that tiles ``base`` (``BASE``² pixels) from its top-left corner on."""
    t = info["transform"]
    geotransform = ", ".join(repr(v) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
    block_y, block_x = info["block"]
    colors = "".join(
        f'<Entry c1="{r}" c2="{g}" c3="{b}" c4="{a}"/>'
        for _, (r, g, b, a) in sorted(info["colormap"].items())
    )
    sources = []
    for row in range(0, size, BASE):
        for col in range(0, size, BASE):
            w, h = min(BASE, size - col), min(BASE, size - row)
            sources.append(
                "<SimpleSource>"
                f'<SourceFilename relativeToVRT="1">{escape(base.parent.name)}/{base.name}'
                "</SourceFilename><SourceBand>1</SourceBand>"
                f'<SourceProperties RasterXSize="{BASE}" RasterYSize="{BASE}" DataType="Byte" '
                f'BlockXSize="{block_x}" BlockYSize="{block_y}"/>'
                f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
                f'<DstRect xOff="{col}" yOff="{row}" xSize="{w}" ySize="{h}"/>'
                "</SimpleSource>"
            )
    nodata = "" if info["nodata"] is None else f"<NoDataValue>{info['nodata']:g}</NoDataValue>"
    return (
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}">\n'
        f"  <SRS>{escape(info['crs'])}</SRS>\n"
        f"  <GeoTransform>{geotransform}</GeoTransform>\n"
        '  <VRTRasterBand dataType="Byte" band="1">\n'
        f"    {nodata}<ColorInterp>Palette</ColorInterp>\n"
        f"    <ColorTable>{colors}</ColorTable>\n"
        + "".join(f"    {s}\n" for s in sources)
        + "  </VRTRasterBand>\n</VRTDataset>\n"
    )


def run_measured(command: list[str], tree: bool) -> tuple[float, float, float | None]:
    """Wall seconds, the process's own peak RSS (MiB) and, with ``tree``, the sampled peak of
    the process and all its descendants summed (MiB)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tree_peak = [0]
    done = threading.Event()
    if tree:
        threading.Thread(target=_sample_tree, args=(child.pid, tree_peak, done)).start()
    # stderr is read in a thread: a full pipe would block the child.
    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(child.stderr.read()))
    reader.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    reader.join()
    # Reaped here, so Popen must not wait for it again.
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed ({child.returncode}):\n{err[0].decode()[-4000:]}"
        )
    return wall, usage.ru_maxrss / 1024, tree_peak[0] / 2**20 if tree else None


def _sample_tree(pid: int, peak: list[int], done: threading.Event) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not done.wait(0.2):
        total = 0
        try:
            for proc in [root, *root.children(recursive=True)]:
                total += proc.memory_info().rss
        except psutil.Error:
            continue
        peak[0] = max(peak[0], total)


def command_for(name: str, size: int, out: Path, args: argparse.Namespace) -> list[str]:
    region = args.work / f"region_{size}.vrt"
    events = args.events.format(buildings=round(BUILDINGS_PER_BASE * (size / BASE) ** 2))
    command = [str(GEOCHANGE), name, str(region), "--events", events, "--seed", "1"]
    command += ["--block-size", str(args.block_size), "--scheduler", args.scheduler]
    if name == "synth":
        command += ["--model", str(args.work / "tiny"), *args.synth_options.split()]
    return [*command, "-q", "--overwrite", "-o", str(out)]


def table(rows: list[dict], tree: bool) -> str:
    """The rows as markdown, each peak also as a ratio to the same command's smallest region."""
    head = ["command", "region", "blocks", "wall s", "peak RSS MiB", "ratio to smallest"]
    if tree:
        head += ["process tree peak MiB (sampled)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    smallest: dict[str, float] = {}
    for row in rows:
        first = smallest.setdefault(row["command"], row["peak_rss_mib"])
        cells = [
            row["command"],
            f"{row['size']}²",
            str(row["blocks"]),
            f"{row['wall_s']:.1f}",
            f"{row['peak_rss_mib']:.0f}",
            f"{row['peak_rss_mib'] / first:.2f}",
        ]
        if tree:
            cells.append(f"{row['tree_peak_mib']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save(path: Path | None, rows: list[dict], header: dict, tree: bool) -> None:
    if path is None:
        return
    if path.suffix == ".json":
        path.write_text(json.dumps({**header, "runs": rows}, indent=2) + "\n")
    else:
        path.write_text(f"`{header['command']}`\n\n{table(rows, tree)}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[4096, 16384, 32768],
        help="Region edges in pixels, smallest first (default: 4096 16384 32768).",
    )
    parser.add_argument(
        "--commands",
        nargs="+",
        choices=["simulate", "synth"],
        default=["simulate", "synth"],
        help="Commands to measure (default: both).",
    )
    parser.add_argument(
        "--scheduler",
        default="local",
        help="Passed to --scheduler (default: local, this process).",
    )
    parser.add_argument(
        "--block-size", type=int, default=2048, help="Passed to --block-size (default: 2048)."
    )
    parser.add_argument(
        "--events",
        default=EVENTS,
        help=f"Events; {{buildings}} becomes {BUILDINGS_PER_BASE} per 4096² (default: {EVENTS}).",
    )
    parser.add_argument(
        "--synth-options",
        default=SYNTH_OPTIONS,
        help=f"Extra options for synth (default: {SYNTH_OPTIONS}).",
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="Also write the table (.md) or the runs (.json) here."
    )
    parser.add_argument(
        "--work", type=Path, help="Folder for inputs and outputs (default: a temporary one)."
    )
    parser.add_argument("--keep", action="store_true", help="Keep every run's output folder.")
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sizes != sorted(args.sizes):
        parser.error("--sizes must be given smallest first")
    temporary = args.work is None
    args.work = (args.work or Path(tempfile.mkdtemp(prefix="geochange-memory-"))).resolve()
    if args.prepare:
        prepare(args.work, args.sizes, "synth" in args.commands)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    tree = args.scheduler != "local"
    header = {"command": " ".join(["benchmarks/memory.py", *sys.argv[1:]])}
    try:
        helper = [sys.executable, __file__, "--work", str(args.work), "--prepare"]
        subprocess.run(
            [*helper, "--sizes", *map(str, args.sizes), "--commands", *args.commands], check=True
        )
        _, floor, _ = run_measured(["/bin/true"], tree=False)
        header["launcher_floor_mib"] = round(floor, 1)
        print(f"launcher floor (peak RSS of /bin/true started here): {floor:.0f} MiB", flush=True)
        rows: list[dict] = []
        for name in args.commands:
            for size in args.sizes:
                out = args.work / f"out_{name}_{size}"
                command = command_for(name, size, out, args)
                print(" ".join(command), flush=True)
                wall, peak, tree_peak = run_measured(command, tree)
                run = json.loads((out / "run.json").read_text())
                rows.append(
                    {
                        "command": name,
                        "size": size,
                        "blocks": run["blocks"]["count"],
                        "wall_s": round(wall, 1),
                        "peak_rss_mib": round(peak, 1),
                        "tree_peak_mib": None if tree_peak is None else round(tree_peak, 1),
                        "argv": command,
                    }
                )
                print(f"  {wall:.1f} s, peak RSS {peak:.0f} MiB", flush=True)
                if not args.keep:
                    shutil.rmtree(out)
                save(args.output, rows, header, tree)
        print(table(rows, tree))
    finally:
        if temporary and not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
