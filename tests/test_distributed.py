"""Dask runs and resumed runs give the same files as one uninterrupted process."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner
from rasterio.crs import CRS

from geochange.cli.main import cli
from geochange.errors import InputError
from geochange.example import example_landcover
from geochange.grid import Grid
from geochange.manifest import Manifest
from geochange.plan import make_plan
from tests.conftest import write_raster

pytestmark = pytest.mark.usefixtures("one_thread")

RASTERS = ("t1_landcover.tif", "t2_landcover.tif", "change.tif", "t1.tif", "t2.tif")
EVENTS = "building_add:count=20,deforestation:fraction=0.3,flood"
PAINT = ["--steps", "2", "--sampler", "ddim", "--tile-size", "128", "--overlap", "16"]


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1040 px at 4 m: 3 x 3 blocks of 512 px, so every phase has blocks and neighbours."""
    codes = (example_landcover(1040, seed=11) + 1).astype(np.uint8)
    transform = Affine(4, 0, 5e5, 0, -4, 5.5e6)
    return write_raster(tmp_path_factory.mktemp("r") / "region.tif", codes, transform=transform)


def run(command: str, region: Path, out: Path, *extra: str | Path) -> CliRunner:
    args = [command, str(region), "--events", EVENTS, "--seed", "3", "--block-size", "512"]
    result = CliRunner().invoke(cli, [*args, "-o", str(out), "-q", *map(str, extra)])
    assert result.exit_code == 0, result.output
    return result


def assert_same_outputs(a: Path, b: Path, names: tuple[str, ...] = RASTERS) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert gpd.read_file(a / "changes.gpkg").equals(gpd.read_file(b / "changes.gpkg"))


@pytest.fixture(scope="module")
def single(region: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("single") / "out"
    run("synth", region, out, "--model", model_dir, *PAINT, "--threads", "1")
    return out


def test_local_cluster_equals_single_process(region, model_dir, single, tmp_path):
    out = tmp_path / "dask"
    run("synth", region, out, "--model", model_dir, *PAINT, "--scheduler", "local:2")
    assert_same_outputs(single, out)
    summary = json.loads((out / "run.json").read_text())
    assert summary["scheduler"] == {"spec": "local:2", "workers": 2}
    assert summary["blocks"]["count"] == 9
    assert not summary["resumed"]
    single_summary = json.loads((single / "run.json").read_text())
    assert summary["sampling"]["tile_windows"] == single_summary["sampling"]["tile_windows"]
    assert summary["sampling"]["threads"] == single_summary["sampling"]["threads"] == 1


def test_simulate_on_local_cluster_equals_single_process(region, tmp_path):
    run("simulate", region, tmp_path / "a")
    run("simulate", region, tmp_path / "b", "--scheduler", "local:2")
    assert_same_outputs(tmp_path / "a", tmp_path / "b", RASTERS[:3])


def _pid_and_square(value: int) -> tuple[int, int]:
    return os.getpid(), value * value


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="forking needs two cores or more")
def test_forked_tasks_run_in_other_processes_and_come_back_in_order():
    """The events pass's blocks: in child processes of this one, results in the items' order."""
    from geochange.distributed import Scheduler

    results = list(Scheduler().imap(_pid_and_square, iter(range(40)), forked=True))
    assert [square for _, square in results] == [v * v for v in range(40)]
    assert os.getpid() not in {pid for pid, _ in results}
    here = list(Scheduler().imap(_pid_and_square, iter(range(3))))
    assert {pid for pid, _ in here} == {os.getpid()}


KILLER = """
import os, signal, sys
from geochange.cli.main import cli
from geochange.errors import InputError
from geochange.grid import Grid
from geochange.manifest import Manifest
from geochange.plan import make_plan
from geochange.manifest import Manifest

marked = Manifest.mark

def mark_then_die(self, name, block):
    marked(self, name, block)
    if name == "paint" and len(self.done("paint")) == {after}:
        os.kill(os.getpid(), signal.SIGKILL)

Manifest.mark = mark_then_die
cli(sys.argv[1:])
"""


def kill_after(blocks: int, region: Path, model_dir: Path, out: Path) -> list[str]:
    """Run synth into ``out`` and SIGKILL it once ``blocks`` blocks are painted; its args."""
    script = out.parent / "killer.py"
    script.write_text(textwrap.dedent(KILLER).format(after=blocks))
    args = ["synth", region, "--events", EVENTS, "--seed", "3", "--block-size", "512"]
    args += ["--model", model_dir, *PAINT, "--threads", "1", "-o", out, "-q"]
    killed = subprocess.run([sys.executable, script, *map(str, args)], capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()
    return [*map(str, args)]


def test_killed_run_resumes_to_identical_files(region, model_dir, single, tmp_path):
    out = tmp_path / "out"
    args = kill_after(4, region, model_dir, out)
    partial = tmp_path / ".out.partial"
    assert not out.exists() and partial.is_dir()
    saved = json.loads((partial / ".resume" / "manifest.json").read_text())
    assert len(saved["done"]["paint"]) == 4

    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code != 0 and "an unfinished run of" in refused.output
    assert "add --resume to continue it, or --overwrite" in refused.output
    other_seed = [*args, "--resume"]
    other_seed[other_seed.index("--seed") + 1] = "4"
    refused = CliRunner().invoke(cli, other_seed)
    assert refused.exit_code != 0 and "other inputs, parameters" in refused.output
    assert json.loads((partial / ".resume" / "manifest.json").read_text()) == saved

    run("synth", region, out, "--model", model_dir, *PAINT, "--threads", "1", "--resume")
    assert_same_outputs(single, out)
    summary = json.loads((out / "run.json").read_text())
    assert summary["resumed"]
    full = json.loads((single / "run.json").read_text())["sampling"]["tile_windows"]
    assert 0 < summary["sampling"]["tile_windows"] < full
    assert not partial.exists() and not (out / "manifest.json").exists()
    assert not list(tmp_path.glob(".out*"))


@pytest.mark.slow  # a killed synth and its resume: about 50 s; the checksums are tested below
def test_resume_repaints_blocks_whose_scratch_file_was_lost(region, model_dir, single, tmp_path):
    """A deleted scratch raster came back as zeros (black t2 blocks, exit 0); the checksums in
    the manifest find the lost blocks, which are painted again, with a warning."""
    out = tmp_path / "out"
    args = kill_after(4, region, model_dir, out)
    (tmp_path / ".out.partial" / ".resume" / "t2_rgb.raw").unlink()
    resumed = CliRunner().invoke(cli, [*args[:-1], "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "4 finished blocks of the unfinished run were lost or damaged" in resumed.stderr
    assert_same_outputs(single, out)
    assert not list(tmp_path.glob(".out*"))


def test_manifest_redoes_a_done_block_whose_pixels_changed(tmp_path):
    """Each done block's checksum per scratch raster is checked on resume: a flipped byte in
    one block drops only that block; a damaged manifest is refused with a message."""
    grid = Grid(CRS.from_epsg(32633), Affine(1, 0, 0, 0, -1, 0), 1100, 700)
    plan = make_plan(grid, 512, 0)
    partial = tmp_path / ".out.partial"
    partial.mkdir()
    manifest = Manifest(partial, "key", False, plan)
    scratch = manifest.folder / "t2_rgb.raw"
    scratch.write_bytes(np.full(grid.height * grid.width * 3, 7, np.uint8).tobytes())
    for block in plan.blocks():
        manifest.mark("paint", block)
    with open(scratch, "r+b") as stream:
        stream.seek((600 * grid.width + 520) * 3)  # row 600, column 520: block (1, 1)
        stream.write(b"\x00")
    resumed = Manifest(partial, "key", True, plan)
    assert resumed.redone == 1
    assert resumed.done("paint") == {(r, c) for r in range(2) for c in range(3)} - {(1, 1)}
    (manifest.folder / "manifest.json").write_text('{"key": "ke')
    with pytest.raises(InputError, match="(?s)damaged .resume/manifest.json.*overwrite=True"):
        Manifest.verify(partial, "key")


def test_second_run_into_a_busy_output_is_refused(region, tmp_path):
    out = tmp_path / "out"
    lock = os.open(tmp_path / ".out.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        args = ["simulate", str(region), "--events", EVENTS, "-o", str(out)]
        result = CliRunner().invoke(cli, args)
    finally:
        os.close(lock)
    assert result.exit_code != 0 and "another geochange run is writing" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [("local:0", "positive integer"), ("ray://x", "not understood")],
)
def test_bad_scheduler_names_the_forms(region, tmp_path, spec, message):
    args = ["simulate", str(region), "--events", EVENTS, "-o", str(tmp_path / "o")]
    args += ["--scheduler", spec]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and message in result.output
    assert "local:N" in result.output or "local:4" in result.output


def test_local_cluster_listens_on_this_machine_only_and_serves_no_dashboard():
    """dashboard_address=None still left Dask's HTTP server on 127.0.0.1:8787."""
    import psutil

    from geochange.distributed import open_scheduler

    with open_scheduler("local:1"):
        here = psutil.Process()
        listening = [
            connection.laddr
            for process in [here, *here.children(recursive=True)]
            for connection in process.net_connections(kind="inet")
            if connection.status == psutil.CONN_LISTEN
        ]
    assert listening and all(address.ip == "127.0.0.1" for address in listening), listening
    assert 8787 not in {address.port for address in listening}


def test_quiet_run_on_a_local_cluster_prints_nothing(region, tmp_path):
    """Dask's own INFO logs follow -q like geochange's messages (events that fit the region, so
    that no warning is due)."""
    geochange = Path(sys.executable).with_name("geochange")
    events = "deforestation:fraction=0.3,flood"
    args = ["simulate", region, "--events", events, "--block-size", "512", "-q"]
    args += ["--scheduler", "local:1", "-o", tmp_path / "o"]
    result = subprocess.run([geochange, *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
