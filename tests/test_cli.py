"""The command line as a user (or the QGIS plugin) meets it: exit codes, --json, --dry-run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geochange.cli.main import cli
from geochange.events import EVENTS
from tests.conftest import write_raster


def geochange(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "geochange.cli", *args], capture_output=True, text=True
    )


def test_json_mode_prints_only_json_lines_and_a_result(town_tif, tmp_path):
    out = tmp_path / "out"
    done = geochange(
        "simulate", str(town_tif), "--events", "building_add:count=5", "--json", "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    kinds = {line["type"] for line in lines}
    assert kinds <= {"progress", "warning", "result"}
    assert lines[-1]["type"] == "result"
    assert lines[-1]["files"]["t2_landcover"] == str(out / "t2_landcover.tif")
    stages = {line["stage"] for line in lines if line["type"] == "progress"}
    assert {"scan", "events", "write"} <= stages


def test_exit_codes_and_messages(town_tif, tmp_path):
    bad = geochange("simulate", str(town_tif), "--events", "tornado", "-o", str(tmp_path / "x"))
    assert bad.returncode == 2 and "unknown event 'tornado'" in bad.stderr
    assert "Traceback" not in bad.stderr
    as_json = geochange(
        "simulate", str(town_tif), "--events", "tornado", "--json", "-o", str(tmp_path / "x")
    )
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout.splitlines()[-1])["type"] == "error"
    usage = geochange("simulate", str(town_tif), "--block-size", "100", "-o", str(tmp_path / "x"))
    assert usage.returncode == 2 and "multiple of 512" in usage.stderr
    assert not (tmp_path / "x").exists()


def test_dry_run_prints_plan_and_writes_nothing(town_tif, tmp_path):
    out = tmp_path / "out"
    args = ["simulate", str(town_tif), "--events", "flood:fraction=0.5", "--dry-run", "-o", out]
    result = CliRunner().invoke(cli, [*map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["type"] == "plan"
    assert plan["grid"]["width"] == 1024 and plan["grid"]["crs"] == "EPSG:32633"
    assert plan["events"] == [{"name": "flood", **EVENTS["flood"]().values, "fraction": 0.5}]
    assert plan["blocks"]["count"] == 1
    readable = CliRunner().invoke(cli, [*map(str, args)]).output
    assert "EPSG:32633, 1024 x 1024 px" in readable
    assert "flood fraction=0.5" in readable and "1 (1 x 1) of " in readable
    assert f"{out}/change.tif" in readable
    assert not out.exists()


def test_events_lists_every_event_with_parameters():
    result = CliRunner().invoke(cli, ["events"])
    assert result.exit_code == 0
    for name, cls in EVENTS.items():
        assert f"\n{name}\n" in f"\n{result.output}"
        for param in cls.params:
            assert f"{param.name}=" in result.output
    listing = json.loads(CliRunner().invoke(cli, ["events", "--json"]).output)
    assert {item["name"] for item in listing} == set(EVENTS)


def test_example_then_simulate_with_creation_options(tmp_path):
    runner = CliRunner()
    made = runner.invoke(cli, ["example", "-o", str(tmp_path / "ex"), "--size", "512"])
    assert made.exit_code == 0, made.output
    region = tmp_path / "ex" / "region.tif"
    with rasterio.open(region) as src:
        assert src.crs.to_epsg() == 32633 and src.res == (0.5, 0.5)
        assert set(np.unique(src.read(1))) <= set(range(1, 9))
    assert f"wrote {region}" in made.stderr
    again = runner.invoke(cli, ["example", "-o", str(tmp_path / "ex"), "--size", "512"])
    assert again.exit_code == 2 and "--overwrite" in again.output
    quiet = ["example", "-o", str(tmp_path / "ex"), "--size", "256", "--overwrite", "-q"]
    quietly = runner.invoke(cli, quiet)
    assert quietly.exit_code == 0 and quietly.output == ""
    with rasterio.open(region) as src:
        assert src.shape == (256, 256)
    out = tmp_path / "out"
    ran = runner.invoke(
        cli,
        [
            "simulate",
            str(region),
            "--events",
            "building_add",
            "--co",
            "COMPRESS=LZW",
            "-q",
            "-o",
            str(out),
        ],
    )
    assert ran.exit_code == 0, ran.output
    with rasterio.open(out / "t2_landcover.tif") as src:
        assert src.compression.name == "lzw"


def test_no_crs_message_from_cli(tmp_path):
    region = write_raster(tmp_path / "r.tif", np.full((30, 30), 2, np.uint8), crs=None)
    done = geochange("simulate", str(region), "--events", "regrowth", "-o", str(tmp_path / "o"))
    assert done.returncode == 2 and "--crs" in done.stderr


def test_sigterm_removes_the_partial_output(tmp_path):
    import signal
    import time

    made = CliRunner().invoke(cli, ["example", "-o", str(tmp_path / "ex"), "--size", "2048"])
    assert made.exit_code == 0
    out = tmp_path / "out"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "geochange.cli",
            "simulate",
            str(tmp_path / "ex/region.tif"),
            "--events",
            "deforestation,regrowth,flood",
            "--block-size",
            "512",
            "--json",
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:
        if json.loads(line).get("stage") == "events":
            break
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 1
    time.sleep(0.1)
    assert not out.exists()
    assert not list(tmp_path.glob(".out*")), "no partial folder or lock is left"


def test_cli_starts_without_torch():
    """simulate, events and example never need torch; only synth and train load it, on use."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys, geochange.cli.main; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize(
    "path",
    [
        ["simulate"],
        ["synth"],
        ["dataset"],
        ["evaluate"],
        ["train", "pack"],
        ["train", "autoencoder"],
        ["train", "diffusion"],
        ["train", "exemplars"],
    ],
    ids=" ".join,
)
def test_every_working_command_takes_the_same_verbosity_options(path: list[str]):
    """-v and -q are counts everywhere (train's -q was a flag, evaluate had none)."""
    command = cli
    for name in path:
        command = command.commands[name]
    options = {p.name: p for p in command.params}
    for name, flags in (("verbose", ["-v", "--verbose"]), ("quiet", ["-q", "--quiet"])):
        assert options[name].opts == flags and options[name].count, (path, name)
