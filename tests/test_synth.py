"""``synth``: painted t1/t2 images on the grid, deterministic per seed, anchored on a real image.

The model is tiny and randomly initialised, so pixels are noise-like: the tests check geometry,
masks, determinism and the t1 anchoring, not how the images look.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from click.testing import CliRunner
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from geochange.acquisition import PRESETS
from geochange.classes import load_scheme
from geochange.cli.main import cli
from geochange.evaluation.metrics import seam_ratio
from geochange.example import example_landcover
from geochange.grid import Grid, ImageOnGrid
from geochange.inputs import open_inputs
from geochange.model import SemanticLDM, load_model, preset
from geochange.painting import (
    DEFAULT_MODEL_DIR,
    LEVEL_BAND,
    Painter,
    SamplingOptions,
    level_to_neighbours,
    model_hash,
    native_precision,
    painted_mask,
)
from geochange.plan import Block
from geochange.run import Run, plan_for
from geochange.sampling import change_maps
from geochange.synth import synth_passes
from geochange.writing.preview import GAP, OUTLINE
from tests.conftest import crop_openearthmap, write_raster

FAST = ["--steps", "4", "--tile-size", "64", "--overlap", "16", "--device", "cpu", "--json"]


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    codes = (example_landcover(160, seed=3) + 1).astype(np.uint8)
    codes[:6, :9] = 0  # a no-data corner
    return write_raster(tmp_path_factory.mktemp("r") / "region.tif", codes)


def synth(*args: str | Path) -> list[dict]:
    result = CliRunner().invoke(cli, ["synth", *map(str, args)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_images_on_grid_masked_and_deterministic(region: Path, model_dir: Path, tmp_path: Path):
    events = ["--events", "building_add:count=6,deforestation:fraction=0.5"]
    lines = synth(region, *events, "--model", model_dir, *FAST, "-o", tmp_path / "a")
    assert any(e["type"] == "progress" and e["stage"] == "paint" for e in lines)
    synth(region, *events, "--model", model_dir, *FAST, "-o", tmp_path / "b")
    synth(region, *events, "--model", model_dir, *FAST, "--seed", "1", "-o", tmp_path / "c")
    out = tmp_path / "a"
    with rasterio.open(region) as src, rasterio.open(out / "t1_landcover.tif") as lc:
        grid = (src.crs, src.transform, src.shape)
        labels = lc.read(1)
    for name in ("t1.tif", "t2.tif"):
        with rasterio.open(out / name) as img:
            assert (img.crs, img.transform, img.shape) == grid
            assert img.count == 3 and img.dtypes == ("uint8",) * 3
            assert img.descriptions[0].startswith("red")
            np.testing.assert_array_equal(img.read_masks(1) > 0, labels > 0)
        assert cog_validate(out / name, quiet=True)[0]
    t2 = (out / "t2.tif").read_bytes()
    assert t2 == (tmp_path / "b" / "t2.tif").read_bytes()
    assert t2 != (tmp_path / "c" / "t2.tif").read_bytes()
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["sha256"] == model_hash(model_dir)
    assert run["sampling"]["steps"] == 4 and run["sampling"]["sampler"] == "dpm"
    assert str(out / "t2.tif") in run["outputs"]


def test_dpm_sampler_and_blocks(region: Path, model_dir: Path, tmp_path: Path):
    """Several blocks (512 px on a 600 px grid) and the DPM-Solver++ path; progress of the
    paint pass in tile windows, ticking within blocks and ending at the count that --dry-run
    gives beforehand and run.json records."""
    codes = (example_landcover(600, seed=5) + 1).astype(np.uint8)
    big = write_raster(tmp_path / "big.tif", codes)
    args = ["--events", "regrowth:fraction=0.3", "--block-size", "512", "--sampler", "dpm"]
    args += ["--model", model_dir, *FAST, "--steps", "2", "-o", tmp_path / "out"]
    (plan,) = synth(big, *args, "--dry-run")
    lines = synth(big, *args)
    with rasterio.open(tmp_path / "out" / "t2.tif") as img:
        assert img.shape == (600, 600)
        assert (img.read_masks(1) == 255).all()
    painted = [e for e in lines if e["type"] == "progress" and e["stage"] == "paint"]
    windows = json.loads((tmp_path / "out" / "run.json").read_text())["sampling"]["tile_windows"]
    assert {e["unit"] for e in painted} == {"tile window"}
    assert {e["total"] for e in painted} == {windows}
    done = [e["done"] for e in painted]
    assert done == sorted(done) and done[-1] == windows
    assert len(done) > 4 + 1  # more steps than the four blocks
    assert plan["paint"]["tile_windows"] == windows
    assert plan["paint"]["estimate_s"] > 0
    assert plan["paint"]["timed_on"].startswith("cpu, ")


@pytest.fixture(scope="module")
def houston(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 192 px crop of a real OpenEarthMap label and its image."""
    window = Window(400, 400, 192, 192)
    return crop_openearthmap(shared_data, "houston_16", window, tmp_path_factory.mktemp("h"))


def test_image_mode_keeps_the_real_image(houston: tuple[Path, Path], model_dir: Path, tmp_path):
    label, image = houston
    out = tmp_path / "out"
    args = ["--events", "building_add:count=8,deforestation:fraction=0.6", "--image", image]
    synth(label, *args, "--model", model_dir, *FAST, "-o", out)
    with rasterio.open(image) as src, rasterio.open(out / "t1.tif") as t1:
        assert (t1.crs, t1.transform, t1.shape) == (src.crs, src.transform, src.shape)
        np.testing.assert_array_equal(t1.read(), src.read())
    with rasterio.open(out / "t2.tif") as t2:
        assert (t2.crs, t2.transform) == (src.crs, src.transform)
    run = json.loads((out / "run.json").read_text())
    assert run["inputs"]["image"]["sha256"] and run["sampling"]["image"] == str(image)


def test_unchanged_latents_stay_anchored_on_the_image(houston: tuple[Path, Path], model_dir):
    """z_B stays near z_A where land is unchanged and drifts where it changed."""

    label, image = houston
    with rasterio.open(label) as src:
        t1 = src.read(1) - 1
    t2 = t1.copy()
    t2[:96] = np.where(t1[:96] == 4, 0, 4)  # top half: tree <-> bareland, everywhere
    model = load_model(model_dir)
    with rasterio.open(image) as src:
        grid = Grid(src.crs, src.transform, src.width, src.height)
    painter = Painter(
        model,
        SamplingOptions(steps=10, sampler="ddim"),
        0,
        torch.device("cpu"),
        ImageOnGrid(image, grid),
    )
    window = Window(0, 0, 192, 192)
    block = Block(0, 0, window, window)
    pixels, _ = painter.image.read(window)
    z_a = model.encode(torch.from_numpy(pixels).float()[None] / 127.5 - 1)
    cls1, cls2 = torch.from_numpy(t1).long()[None], torch.from_numpy(t2).long()[None]
    unchanged, hold = change_maps(cls1, cls2, z_a.shape[-2:])
    z_b = painter._sample(block, 2, z_a, unchanged, hold, cls2)
    gap = (z_b - z_a).abs().mean(1)[0]
    m = unchanged[0, 0] > 0
    assert m.any() and (~m).any()
    assert gap[m].mean() < 0.5 * gap[~m].mean()


def test_default_model_paints_out_of_the_box(region: Path, tmp_path: Path):
    out = tmp_path / "o"
    args = ["--events", "building_add:count=6", "--steps", "2", "--device", "cpu", "--json"]
    synth(region, *args, "-o", out)
    run = json.loads((out / "run.json").read_text())
    assert Path(run["model"]["path"]) == DEFAULT_MODEL_DIR.absolute()
    assert run["model"]["sha256"] == model_hash(DEFAULT_MODEL_DIR)
    model = load_model(DEFAULT_MODEL_DIR)
    assert model.config.name == "cpu" and model.config.gsd_m == 0.5
    with rasterio.open(out / "t1.tif") as t1:
        image = t1.read(masked=True)
    assert image.std() > 5, "a trained model paints structure, not a flat colour"


def test_loading_the_default_model_is_silent():
    """AutoencoderTiny saves a config key it then warns about on every load; we drop that.
    In a fresh process: diffusers' log handler keeps the stderr it found at import."""
    code = f"from geochange.model import load_model; load_model({str(DEFAULT_MODEL_DIR)!r})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_default_model_missing_says_how_to_get_one(
    region: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("geochange.painting.DEFAULT_MODEL_DIR", tmp_path / "not-installed")
    result = CliRunner().invoke(
        cli, ["synth", str(region), "--events", "regrowth", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "default model is missing" in result.output and "--model" in result.output
    assert not (tmp_path / "o").exists()


def test_bad_sampling_options_name_the_fix(model_dir: Path):
    from geochange.errors import InputError

    model = load_model(model_dir)
    with pytest.raises(InputError, match="needs steps= 2"):
        SamplingOptions(steps=1, sampler="dpm").check(model)
    with pytest.raises(InputError, match="tile_size= must be a positive multiple"):
        SamplingOptions(tile_size=3).check(model)


def test_block_halos_anchored_on_painted_neighbours(tmp_path: Path):
    """2x2 blocks: halos pinned on the painted neighbours lower the seam; reruns are identical.

    A random autoencoder does not reconstruct what it encodes, so re-encoded neighbours could not
    be continued whatever the sampler did: the tiny model gets a fixed, nearly invertible one
    (mean pooling / bilinear upsampling) and keeps its random denoiser.
    """
    torch.manual_seed(0)
    model = SemanticLDM(preset("tiny"))
    f = model.config.downsampling
    model.encode = lambda x: torch.cat([F.avg_pool2d(x, f), F.avg_pool2d(x[:, :1], f) * 0], 1)
    model.decode = lambda z: F.interpolate(z[:, :3], scale_factor=f, mode="bilinear")
    codes = (example_landcover(544, seed=5) + 1).astype(np.uint8)
    # 4 m pixels keep the 100 m event halo (and so the block windows) small
    region = write_raster(tmp_path / "r.tif", codes, transform=Affine(4, 0, 5e5, 0, -4, 5.5e6))
    # No acquisition differences: the written t2 stands in for the painted scratch below.
    none = PRESETS["none"]
    options = SamplingOptions(steps=2, sampler="ddim", tile_size=128, overlap=16, acquisition=none)
    ratios, outputs = {}, {}
    for name, anchored in (("free", False), ("anchored", True), ("again", True)):
        painter = Painter(model, options, 0, torch.device("cpu"), anchor_blocks=anchored)
        with open_inputs(region, events="regrowth:fraction=0.3") as inputs:
            synth_passes(Run(inputs, tmp_path / name, block_size=512, images=painter))
        outputs[name] = (tmp_path / name / "t2.tif").read_bytes()
        with rasterio.open(tmp_path / name / "t2.tif") as src:
            ratios[name] = seam_ratio(src.read(), 512)
    assert ratios["anchored"] < 0.95 * ratios["free"], ratios
    assert outputs["anchored"] == outputs["again"]
    _assert_last_block_repaints_from_disk(model, options, region, tmp_path / "anchored")


def _assert_last_block_repaints_from_disk(
    model: SemanticLDM, options: SamplingOptions, region: Path, out: Path
) -> None:
    """What a resumed run does: the last block, painted again from the finished neighbours as
    written to disk and the written land cover, equals the uninterrupted run's pixels."""
    with open_inputs(region, events="regrowth:fraction=0.3") as inputs:
        plan = plan_for(inputs, 512)
    *before, last = list(plan.phased())
    window = last.window
    classes, neighbours = [], {}
    for name in ("t1", "t2"):
        with rasterio.open(out / f"{name}_landcover.tif") as src:
            classes.append(load_scheme("oem").classify(src.read(1, window=window))[0])
        with rasterio.open(out / f"{name}.tif") as src:
            neighbours[name] = src.read(window=window)
    known = painted_mask(plan, last, {(b.row, b.col) for b in before})
    assert known.any() and not known.all()
    painter = Painter(model, options, 0, torch.device("cpu"))
    images, _ = painter.paint_block(last, classes, neighbours, known)
    rows, cols = last.core_in_window
    for name, image in zip(("t1", "t2"), images, strict=True):
        np.testing.assert_array_equal(image[:, rows, cols], neighbours[name][:, rows, cols])


def test_timestamps_chain_fresh_events(region: Path, model_dir: Path, tmp_path: Path):
    """--timestamps 3: t3_landcover.tif has fresh events on t2's land cover, t3.tif paints it."""
    events = ["--events", "regrowth:fraction=0.3"]
    out = tmp_path / "out"
    synth(region, *events, "--model", model_dir, *FAST, "--timestamps", "3", "-o", out)
    with (
        rasterio.open(out / "t2_landcover.tif") as lc2,
        rasterio.open(out / "t3_landcover.tif") as lc3,
    ):
        grid = (lc2.crs, lc2.transform, lc2.shape)
        assert (lc3.crs, lc3.transform, lc3.shape) == grid
        t2, t3 = lc2.read(1), lc3.read(1)
    assert (t3 != t2).any() and ((t3 > 0) == (t2 > 0)).all()
    with rasterio.open(out / "t3.tif") as img:
        assert (img.crs, img.transform, img.shape) == grid and img.count == 3
        np.testing.assert_array_equal(img.read_masks(1) > 0, t3 > 0)
    run = json.loads((out / "run.json").read_text())
    assert {str(out / "t3.tif"), str(out / "t3_landcover.tif")} <= set(run["outputs"])
    assert run["sampling"]["timestamps"] == 3


def test_bf16_autocast_paints_close_to_fp32_and_fp16_needs_cuda(
    region: Path, model_dir: Path, tmp_path: Path
):
    events = ["--events", "building_add:count=4"]
    synth(
        region, *events, "--model", model_dir, *FAST, "--precision", "fp32", "-o", tmp_path / "fp32"
    )
    synth(
        region, *events, "--model", model_dir, *FAST, "--precision", "bf16", "-o", tmp_path / "bf"
    )
    run = json.loads((tmp_path / "bf" / "run.json").read_text())
    assert run["sampling"]["precision"] == "bf16"
    with (
        rasterio.open(tmp_path / "fp32" / "t2.tif") as a,
        rasterio.open(tmp_path / "bf" / "t2.tif") as b,
    ):
        full, half = a.read().astype(float), b.read().astype(float)
    assert not np.array_equal(full, half), "bf16 arithmetic was not used"
    # measured: mean difference 0.55 grey levels against a spread of 35
    assert np.abs(full - half).mean() < 0.1 * np.abs(full - full.mean()).mean()
    result = CliRunner().invoke(
        cli,
        [
            "synth",
            str(region),
            *events,
            "--model",
            str(model_dir),
            *FAST,
            "--precision",
            "fp16",
            "-o",
            str(tmp_path / "h"),
        ],
    )
    assert result.exit_code == 2 and "needs --device cuda" in result.output


def test_auto_precision_is_bf16_only_where_the_cpu_has_it_and_runs_record_the_choice(
    region: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cpu = torch.device("cpu")
    for bf16, amx, expected in (
        (False, False, "fp32"),
        (True, False, "bf16"),
        (False, True, "bf16"),
    ):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda bf16=bf16: bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda amx=amx: amx)
        assert native_precision(cpu) == expected
    monkeypatch.undo()
    synth(
        region,
        "--events",
        "building_add:count=2",
        "--model",
        model_dir,
        *FAST,
        "-o",
        tmp_path / "a",
    )
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["sampling"]["precision"] == native_precision(cpu)


def test_preview_sheet_shows_both_images_and_the_change(
    region: Path, model_dir: Path, tmp_path: Path
):
    out = tmp_path / "out"
    events = ["--events", "building_add:count=6,deforestation:fraction=0.5"]
    lines = synth(region, *events, "--model", model_dir, *FAST, "--preview", "-o", out)
    assert lines[-1]["files"]["preview"] == str(out / "preview.png")
    assert not list(out.glob(".preview*"))
    item = json.loads((out / "item.json").read_text())
    assert item["assets"]["preview"]["href"] == "./preview.png"
    with rasterio.open(out / "t2.tif") as t2, rasterio.open(out / "change.tif") as change:
        image, changed = t2.read(), change.read(1) == 1
    with rasterio.open(out / "preview.png") as sheet:
        assert (sheet.height, sheet.width) == (2 * 160 + GAP, 2 * 160 + GAP)
        top_right = sheet.read(window=Window(160 + GAP, 0, 160, 160))
    red = (top_right == np.array(OUTLINE, np.uint8)[:, None, None]).all(axis=0)
    assert changed.any() and changed[red].mean() > 0.9, "the outline lies on changed pixels"
    np.testing.assert_array_equal(top_right[:, ~changed], image[:, ~changed])


def test_leveling_joins_a_block_to_its_painted_neighbours():
    """A core decoded 20 grey levels off its neighbour continues it at the border, and is left
    as it is beyond the fade band."""
    rng = np.random.default_rng(0)
    texture = rng.integers(90, 110, (3, 64, 128)).astype(np.uint8)
    known = np.zeros((64, 128), bool)
    known[:, :40] = True
    decoded = (texture.astype(int) + 20).clip(0, 255).astype(np.uint8)
    leveled = level_to_neighbours(decoded, texture, known)
    jump = np.abs(leveled[:, :, 40].astype(int) - texture[:, :, 39]).mean()
    inside = np.abs(np.diff(texture.astype(int), axis=2)).mean()
    assert jump <= 1.2 * inside
    np.testing.assert_array_equal(
        leveled[:, :, 40 + LEVEL_BAND :], decoded[:, :, 40 + LEVEL_BAND :]
    )
    np.testing.assert_array_equal(level_to_neighbours(decoded, texture, known * False), decoded)


def test_compile_option_compiles_the_unet(model_dir: Path):
    """--compile hands the UNet to torch.compile (compiled on first call, minutes on a CPU)."""
    model = load_model(model_dir)
    assert model.unet._compiled_call_impl is None
    Painter(model, SamplingOptions(compile=True), 0, torch.device("cpu"))
    assert model.unet._compiled_call_impl is not None
