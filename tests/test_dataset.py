"""``geochange dataset``: the LEVIR-CD and SECOND layouts, byte-identical reruns and resumes.

The model is tiny and randomly initialised, so t2 images are noise-like: the tests check the
layouts, the labels against the simulated classes, the real t1 crops and reproducibility, not
how the images look.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner
from PIL import Image
from rasterio.windows import Window

from geochange.classes import PALETTE, load_scheme
from geochange.cli.main import cli
from geochange.distributed import available_cores
from geochange.events import parse_events
from geochange.example import example_landcover
from geochange.model import SemanticLDM, preset
from geochange.painting import model_hash
from geochange.pairs import SECOND_PALETTE, png_bytes, simulate_pair, split_of
from geochange.writing.folder import MARKER, FolderLock

pytestmark = pytest.mark.usefixtures("one_thread")

EVENTS = "building_add:count=2,random:fraction=0.2"
TILE = 64


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three plain image + mask PNG tiles (mask: class indices 0-7), one of them too small."""
    root = tmp_path_factory.mktemp("src")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for name, size in (("a", 128), ("b", 96), ("small", 48)):
        classes = example_landcover(size, seed=len(name) + size).astype(np.uint8)
        Image.fromarray(classes).save(root / "masks" / f"{name}.png")
        rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(root / "images" / f"{name}.png")
    return root


def fast(model_dir: Path) -> list[str]:
    return ["--model", str(model_dir), "--steps", "2", "--tile-size", str(TILE), "--device", "cpu"]


def run(*args: str | Path) -> list[dict]:
    result = CliRunner().invoke(cli, ["dataset", *map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def refused(*args: str | Path) -> str:
    """The message of a run that must stop with exit status 2 (bad input)."""
    result = CliRunner().invoke(cli, ["dataset", *map(str, args)])
    assert result.exit_code == 2, result.output
    return result.output


def make(source: Path, out: Path, model_dir: Path, *more: str, pairs: int = 10) -> list[dict]:
    return run(source, "-o", out, "--pairs", pairs, "--events", EVENTS, *fast(model_dir), *more)


@pytest.fixture(scope="module")
def levir(source: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("levir") / "out"
    lines = make(source, out, model_dir)
    assert lines[-1]["type"] == "result"
    assert any(e["type"] == "progress" and e["stage"] == "pairs" for e in lines)
    return out


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (hidden ones too) by relative path; dataset.json without
    its timing, the one part that differs between runs."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == "dataset.json":
                summary = json.loads(data)
                del summary["timing"]
                data = json.dumps(summary).encode()
            found[path.relative_to(folder).as_posix()] = data
    return found


def read_png(path: Path) -> tuple[str, np.ndarray]:
    with Image.open(path) as image:
        return image.mode, np.array(image)


def pair_rows(out: Path) -> list[dict]:
    with open(out / "pairs.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def t1_t2(source: Path, row: dict, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The pair's t1 classes read from the source mask, and t2 simulated again."""
    mask = source / "masks" / Path(row["source_image"]).name
    window = Window(int(row["col"]), int(row["row"]), TILE, TILE)
    with rasterio.open(mask) as ds:
        t1 = load_scheme("oem-index").map(ds.read(1, window=window))
    t2, _ = simulate_pair(parse_events(EVENTS), t1, (0.5, 0.5), 0, index)
    return t1, t2


def test_levir_layout(levir: Path, source: Path, model_dir: Path):
    names = {"train": 7, "val": 1, "test": 2}
    expected = {"dataset.json", "pairs.csv", MARKER}
    for split, count in names.items():
        for sub in ("A", "B", "label"):
            expected |= {f"{split}/{sub}/{split}_{k}.png" for k in range(1, count + 1)}
    assert set(files_of(levir)) == expected
    rows = pair_rows(levir)
    assert [(r["split"], r["name"]) for r in rows] == [
        (split_of(i)[0], f"{split_of(i)[0]}_{split_of(i)[1]}.png") for i in range(10)
    ]
    assert {r["source_image"] for r in rows} <= {"images/a.png", "images/b.png"}
    changed_px = 0
    for index, row in enumerate(rows):
        folder = levir / row["split"]
        for sub in ("A", "B"):
            mode, rgb = read_png(folder / sub / row["name"])
            assert mode == "RGB" and rgb.shape == (TILE, TILE, 3) and rgb.dtype == np.uint8
        with Image.open(source / row["source_image"]) as image:
            real = np.array(image)
        r, c = int(row["row"]), int(row["col"])
        np.testing.assert_array_equal(
            read_png(folder / "A" / row["name"])[1], real[r : r + TILE, c : c + TILE]
        )
        mode, label = read_png(folder / "label" / row["name"])
        assert mode == "L" and label.shape == (TILE, TILE) and label.dtype == np.uint8
        assert set(np.unique(label)) <= {0, 255}
        t1, t2 = t1_t2(source, row, index)
        np.testing.assert_array_equal(label == 255, t1 != t2)
        assert int(row["building_add_px"]) + int(row["random_px"]) == (label == 255).sum()
        changed_px += (label == 255).sum()
    assert changed_px > 0
    summary = json.loads((levir / "dataset.json").read_text())
    assert summary["splits"] == names
    assert summary["model"]["sha256"] == model_hash(model_dir)
    assert summary["seed"] == 0 and summary["tile_size"] == TILE and summary["pairs"] == 10
    by_event = {e["event"]: e["pixels"] for e in summary["changes"]["by_event"]}
    assert sum(by_event.values()) == changed_px
    share = summary["changes"]["changed_pixel_share"]
    assert share == pytest.approx(changed_px / (10 * TILE * TILE), abs=1e-6)
    listed = [f["image"] for f in summary["source"]["files"]]
    assert listed == ["images/a.png", "images/b.png", "images/small.png"]
    assert summary["timing"]["pairs_made"] == 10 and summary["timing"]["pairs_per_second"] > 0


def test_second_layout(levir: Path, source: Path, model_dir: Path, tmp_path: Path):
    out = tmp_path / "second"
    make(source, out, model_dir, "--layout", "second", pairs=4)
    expected = {"dataset.json", "pairs.csv", MARKER}
    for split, count in {"train": 2, "val": 1, "test": 1}.items():
        for sub in ("im1", "im2", "label1", "label2"):
            expected |= {f"{split}/{sub}/{k:05d}.png" for k in range(1, count + 1)}
    assert set(files_of(out)) == expected
    for index, row in enumerate(pair_rows(out)):
        folder = out / row["split"]
        labels = []
        for sub in ("label1", "label2"):
            with Image.open(folder / sub / row["name"]) as image:
                assert image.mode == "P"
                assert image.getpalette()[: 3 * 9] == list(SECOND_PALETTE[: 3 * 9])
                labels.append(np.array(image))
        t1, t2 = t1_t2(source, row, index)
        changed = t1 != t2
        np.testing.assert_array_equal(labels[0], np.where(changed, t1 + 1, 0))
        np.testing.assert_array_equal(labels[1], np.where(changed, t2 + 1, 0))
        assert labels[0].max() <= 8
        # The same seed makes the same pairs in both layouts.
        levir_name = f"{row['split']}_{int(row['name'][:5])}.png"
        for sub, other in (("im1", "A"), ("im2", "B")):
            ours = (folder / sub / row["name"]).read_bytes()
            assert ours == (levir / row["split"] / other / levir_name).read_bytes()
    assert SECOND_PALETTE[3:6] == bytes(PALETTE[0])


def test_same_seed_same_bytes(levir: Path, source: Path, model_dir: Path, tmp_path: Path):
    make(source, tmp_path / "again", model_dir)
    assert files_of(tmp_path / "again") == files_of(levir)
    make(source, tmp_path / "seed1", model_dir, "--seed", "1")
    for name in ("train/A/train_1.png", "train/B/train_1.png"):
        assert (tmp_path / "seed1" / name).read_bytes() != (levir / name).read_bytes()


def test_existing_output_refused(levir: Path, source: Path, model_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    error = refused(source, "-o", out, "--pairs", 1, *fast(model_dir))
    assert "already exists" in error and "--overwrite" in error
    error = refused(source, "-o", out, "--pairs", 1, "--resume", *fast(model_dir))
    assert "nothing to resume" in error
    error = refused(source, "-o", out, "--pairs", 1, "--resume", "--overwrite", *fast(model_dir))
    assert "exclude each other" in error
    make(source, out, model_dir, "--overwrite")
    assert files_of(out) == files_of(levir)


def test_second_run_into_a_busy_output_is_refused(source: Path, model_dir: Path, tmp_path: Path):
    """The dataset's lock: a run while another holds the folder is told who holds it."""
    out = tmp_path / "out"
    lock = FolderLock(out)
    lock.acquire()
    try:
        error = refused(source, "-o", out, "--pairs", 1, *fast(model_dir))
    finally:
        lock.release()
    assert f"another geochange run (PID {os.getpid()}) is writing {out}" in error
    assert not out.exists() and not (tmp_path / ".out.partial").exists()


class Killed(BaseException):
    """Stands for a kill: no ``except Exception`` catches it."""


def crash_at_pair_2(
    monkeypatch: pytest.MonkeyPatch, source: Path, out: Path, model_dir: Path, *more: str
) -> None:
    """A 10-pair run that dies between two renames of pair 2 (after its A, before its B)."""
    renames = []
    real_replace = os.replace

    def crash_on_the_tenth(src: Path, dst: Path) -> None:
        renames.append(dst)
        if len(renames) == 10:  # 2 at the start, 3 per pair
            raise Killed
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_the_tenth)
    args = ["dataset", str(source), "-o", str(out), "--pairs", "10", "--events", EVENTS]
    with pytest.raises(Killed):
        CliRunner().invoke(cli, [*args, *fast(model_dir), *more], catch_exceptions=False)
    monkeypatch.undo()


def test_crash_mid_pair_then_resume(
    levir: Path, source: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A crash between two renames of one pair: that pair is made again on resume."""
    out = tmp_path / "out"
    crash_at_pair_2(monkeypatch, source, out, model_dir)
    partial = tmp_path / ".out.partial"
    assert not out.exists() and partial.is_dir()
    assert len((partial / "pairs.jsonl").read_text().splitlines()) == 2
    assert list(partial.glob("*/B/.*.tmp"))
    error = refused(source, "-o", out, "--pairs", 10, "--events", EVENTS, *fast(model_dir))
    assert "unfinished run" in error and "--resume" in error
    # a file of a logged pair lost since (as after a power cut): checked, and that pair remade
    first = json.loads((partial / "pairs.jsonl").read_text().splitlines()[0])
    (partial / next(iter(first["files"]))).unlink()
    lines = make(source, out, model_dir, "--resume")
    warnings = [line["message"] for line in lines if line["type"] == "warning"]
    assert "1 finished pairs of the unfinished run were lost or damaged" in warnings[0]
    assert not partial.exists()
    assert files_of(out) == files_of(levir)
    timing = json.loads((out / "dataset.json").read_text())["timing"]
    assert (timing["pairs_made"], timing["pairs_resumed"]) == (9, 1)


def test_batched_pairs_crash_then_resume(
    levir: Path, source: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """``--batch-size 4``: pairs painted four at a time, their model calls batched. A crash in
    the first group and a resume give the bytes of an uninterrupted batched run (the group is
    painted again whole; its finished pairs are not rewritten), and the pairs differ from those
    made one at a time only where the batch's float sums round the other way."""
    whole, out = tmp_path / "whole", tmp_path / "out"
    make(source, whole, model_dir, "--batch-size", "4")
    crash_at_pair_2(monkeypatch, source, out, model_dir, "--batch-size", "4")
    error = refused(source, "-o", out, "--pairs", 10, "--events", EVENTS, "--resume",
                    *fast(model_dir))  # fmt: skip
    assert "other model" in error  # the sampling options, batch size among them, differ
    lines = make(source, out, model_dir, "--resume", "--batch-size", "4")
    assert files_of(out) == files_of(whole)
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["sampling"]["batch_size"] == 4
    assert (summary["timing"]["pairs_made"], summary["timing"]["pairs_resumed"]) == (8, 2)
    progress = [line for line in lines if line["type"] == "progress"]
    assert progress[-1]["done"] == progress[-1]["total"] == 10
    one_at_a_time, batched = files_of(levir), files_of(whole)
    assert one_at_a_time.keys() == batched.keys()
    changed = 0
    for name, data in one_at_a_time.items():
        if "/B/" not in name:  # t1 crops, labels, pairs.csv: the same
            assert data == batched[name] or name == "dataset.json", name
            continue
        a, b = (read_png(folder / name)[1].astype(int) for folder in (levir, whole))
        assert np.abs(a - b).max() <= 1, name
        changed += int(np.sum(a != b))
    assert changed <= 0.001 * 10 * TILE * TILE * 3


def test_sigkill_then_resume(source: Path, model_dir: Path, tmp_path: Path):
    """A real SIGKILL of the command: a resume with other settings is refused, one with the
    same settings finishes byte-identical to an uninterrupted run."""
    args = ["--pairs", "60", "--events", EVENTS, *fast(model_dir), "-q"]
    out, partial = tmp_path / "out", tmp_path / ".out.partial"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "geochange.cli", "dataset", str(source), "-o", str(out)]
    process = subprocess.Popen(command + args, env=env, stderr=subprocess.PIPE)
    log = partial / "pairs.jsonl"
    deadline = time.monotonic() + 120
    while not (log.is_file() and log.read_text().count("\n") >= 2):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists() and partial.is_dir()
    done = log.read_text().count("\n")
    assert 2 <= done < 60
    error = refused(source, "-o", out, "--resume", "--seed", "3", *args)
    assert "other seed" in error
    torch.manual_seed(1)
    other = SemanticLDM(preset("tiny")).save_pretrained(tmp_path / "other")
    error = refused(source, "-o", out, "--resume", *args, "--model", other)
    assert "other model" in error
    result = run(source, "-o", out, "--resume", *args[:-1])[-1]
    assert result["timing"]["pairs_resumed"] == done
    run(source, "-o", tmp_path / "whole", *args[:-1])
    assert files_of(out) == files_of(tmp_path / "whole")


def test_pairs_made_in_threads_equal_those_made_one_after_another(
    levir: Path, source: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cores = available_cores()
    if cores < 2:
        pytest.skip("this machine gives the process one core, so every run makes pairs in one")
    timing = json.loads((levir / "dataset.json").read_text())["timing"]
    assert timing["threads"] == cores
    monkeypatch.setattr("geochange.dataset.available_cores", lambda: 1)
    make(source, tmp_path / "one", model_dir)
    assert json.loads((tmp_path / "one" / "dataset.json").read_text())["timing"]["threads"] == 1
    assert files_of(tmp_path / "one") == files_of(levir)


@pytest.mark.slow
def test_local_cluster_equals_single_process(levir: Path, source: Path, model_dir: Path, tmp_path):
    make(source, tmp_path / "dask", model_dir, "--scheduler", "local:2")
    assert files_of(tmp_path / "dask") == files_of(levir)
    timing = json.loads((tmp_path / "dask" / "dataset.json").read_text())["timing"]
    assert timing["scheduler"] == {"spec": "local:2", "workers": 2}


def test_real_openearthmap(shared_data: Path, model_dir: Path, tmp_path: Path):
    """Pairs from the real OpenEarthMap tiles: A is the GeoTIFF crop, labels follow the mask."""
    root = shared_data / "openearthmap"
    out = tmp_path / "oem"
    run(root, "-o", out, "--pairs", "3", "--layout", "levir", *fast(model_dir))
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["source"]["layout"] == "openearthmap"
    assert summary["source"]["classes"] == "oem"
    assert {f["image"] for f in summary["source"]["files"]} == {
        "images/houston_16.tif",
        "images/palu_8.tif",
    }
    for f in summary["source"]["files"]:
        assert all(0.2 < size < 1.0 for size in f["pixel_size_m"])
    for row in pair_rows(out):
        window = Window(int(row["col"]), int(row["row"]), TILE, TILE)
        with rasterio.open(root / row["source_image"]) as ds:
            real = ds.read([1, 2, 3], window=window).transpose(1, 2, 0)
        with rasterio.open(root / "labels" / Path(row["source_image"]).name) as ds:
            labelled = (ds.read(1, window=window) > 0).mean()
        assert labelled >= 0.5
        folder = out / row["split"]
        np.testing.assert_array_equal(read_png(folder / "A" / row["name"])[1], real)
        mode, label = read_png(folder / "label" / row["name"])
        assert mode == "L" and set(np.unique(label)) <= {0, 255}
        changed = sum(int(v) for k, v in row.items() if k.endswith("_px") and k != "labelled_px")
        assert (label == 255).sum() == changed


def test_bad_tiles_and_events_are_refused_before_dask_starts(
    source: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A cluster takes seconds to start: a mistake in the command is told before that."""

    def no_cluster(spec: str) -> None:
        raise AssertionError(f"a scheduler ({spec}) was started for a command that is refused")

    monkeypatch.setattr("geochange.distributed.open_scheduler", no_cluster)
    empty = tmp_path / "empty"
    empty.mkdir()
    common = ["--pairs", 1, "--scheduler", "local:2", *fast(model_dir)]
    error = refused(empty, "-o", tmp_path / "a", "--events", EVENTS, *common)
    assert str(empty) in error
    error = refused(source, "-o", tmp_path / "b", "--events", "building_ad", *common)
    assert "building_ad" in error
    (tmp_path / "c").mkdir()
    error = refused(source, "-o", tmp_path / "c", "--events", EVENTS, *common)
    assert "already exists" in error and "--overwrite" in error
    error = refused(
        source, "-o", tmp_path / "d", "--events", EVENTS, "--resume", "--overwrite", *common
    )
    assert "exclude each other" in error


def test_pngs_decode_to_the_arrays_they_were_made_of():
    """The project's own PNG writer (up filter, zlib): RGB, grey and paletted, odd sizes."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 37, 53), dtype=np.uint8)
    labels = rng.integers(0, 9, (37, 53), dtype=np.uint8)
    image = Image.open(io.BytesIO(png_bytes(rgb, None)))
    assert image.mode == "RGB" and np.array_equal(np.asarray(image).transpose(2, 0, 1), rgb)
    image = Image.open(io.BytesIO(png_bytes(labels, None)))
    assert image.mode == "L" and np.array_equal(np.asarray(image), labels)
    image = Image.open(io.BytesIO(png_bytes(labels, SECOND_PALETTE)))
    assert image.mode == "P" and np.array_equal(np.asarray(image), labels)
    assert bytes(image.getpalette()[:27]) == SECOND_PALETTE[:27]
    assert png_bytes(rgb, None) == png_bytes(rgb.copy(), None)
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(rgb.astype(np.uint16), None)


def test_tiles_of_a_known_layout_have_its_pixel_size(shared_data: Path):
    """LoveDA and FLAIR PNGs carry no georeferencing: their pixels are the layout's 0.3 and
    0.2 m unless --gsd says otherwise, so events measure in true metres."""
    from geochange.dataset import TileSource

    assert {t.pixel_size_m for t in TileSource(shared_data / "loveda").tiles} == {(0.3, 0.3)}
    assert {t.pixel_size_m for t in TileSource(shared_data / "flair").tiles} == {(0.2, 0.2)}
    forced = TileSource(shared_data / "flair", gsd=0.5)
    assert {t.pixel_size_m for t in forced.tiles} == {(0.5, 0.5)}


def test_tiles_far_from_the_models_pixel_size_are_warned_of(
    shared_data: Path, model_dir: Path, tmp_path: Path
):
    out = tmp_path / "flair"
    lines = run(shared_data / "flair", "-o", out, "--pairs", "1", *fast(model_dir))
    warnings = [line["message"] for line in lines if line.get("type") == "warning"]
    assert len(warnings) == 1 and "source tile's pixels are 0.2 m" in warnings[0], lines
    summary = json.loads((out / "dataset.json").read_text())
    assert {tuple(f["pixel_size_m"]) for f in summary["source"]["files"]} == {(0.2, 0.2)}


def test_pairs_take_ten_steps_unless_told(source: Path, model_dir: Path, tmp_path: Path):
    """dataset's own default (synth keeps 20): 10 steps gave the same realism figures."""
    common = ["--pairs", "1", "--events", EVENTS, "--model", str(model_dir)]
    common += ["--tile-size", str(TILE), "--device", "cpu"]
    run(source, "-o", tmp_path / "default", *common)
    run(source, "-o", tmp_path / "three", "--steps", "3", *common)
    steps = [
        json.loads((tmp_path / name / "dataset.json").read_text())["sampling"]["steps"]
        for name in ("default", "three")
    ]
    assert steps == [10, 3]
