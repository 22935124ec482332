"""``geochange evaluate`` end to end on real held-out data with a tiny model and segmenter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from geochange.evaluation.quality import (
    Crop,
    SegmenterRecipe,
    autoencoder_scores,
    evaluate,
    heldout_crops,
)
from geochange.evaluation.segmenter import load_segmenter
from geochange.model import SemanticLDM, preset
from geochange.painting import SamplingOptions
from geochange.training.data import HELDOUT_SIZE

pytestmark = pytest.mark.usefixtures("one_thread")


def test_heldout_crops_are_the_heldout_squares(shared_data: Path):
    crops = heldout_crops([shared_data / "openearthmap", shared_data / "dubai"], per_folder=3)
    assert [c.folder for c in crops] == ["openearthmap"] * 2 + ["dubai"] * 3
    with rasterio.open(shared_data / "openearthmap" / "images" / "houston_16.tif") as src:
        corner = src.read(
            window=((src.height - HELDOUT_SIZE, None), (src.width - HELDOUT_SIZE, None))
        )
    np.testing.assert_array_equal(crops[0].image, corner)
    assert all(c.image.dtype == np.uint8 and c.image.shape == (3, 256, 256) for c in crops)


def test_autoencoder_scores_tell_a_blurring_autoencoder_from_a_faithful_one():
    """The sharpness ratio is 1 for a reconstruction that keeps every pixel and well below 1
    for one that keeps only 8x8 means (what a weak decoder draws), whatever PSNR says."""
    image = np.random.default_rng(0).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    crops = [Crop("noise", image, np.zeros((64, 64), np.uint8))]
    model = SemanticLDM(preset("tiny"))
    model.encode = lambda x: x
    model.decode = lambda z: z
    faithful = autoencoder_scores(model, crops)["noise"]
    assert faithful["sharpness_ratio"] == pytest.approx(1.0, abs=1e-3)
    model.encode = lambda x: torch.nn.functional.avg_pool2d(x, 8)
    model.decode = lambda z: torch.nn.functional.interpolate(z, scale_factor=8, mode="bilinear")
    blurred = autoencoder_scores(model, crops)["noise"]
    assert blurred["sharpness_ratio"] < 0.1 and blurred["psnr_db"] < faithful["psnr_db"]


@pytest.mark.slow  # ~70 s on 2 busy cores; tests/test_quality_realism.py checks its parts
def test_evaluate_writes_every_figure(shared_data: Path, tmp_path: Path):
    torch.manual_seed(0)
    model_dir = SemanticLDM(preset("tiny")).save_pretrained(tmp_path / "tiny")
    out = tmp_path / "report"
    report = evaluate(
        model_dir,
        [shared_data / "openearthmap", shared_data / "dubai"],
        out,
        recipe=SegmenterRecipe(crop=64, steps=2, batch_size=2, width=8),
        options=SamplingOptions(steps=2, sampler="ddim", tile_size=128, overlap=32),
        per_folder=1,
        seeds=1,
        log=lambda _m: None,
        reference=shared_data / "second_examples",
    )
    saved = json.loads((out / "quality.json").read_text())
    assert saved["heldout_crops"] == {"openearthmap": 2, "dubai": 1}
    for folder in ("openearthmap", "dubai"):
        assert 0 < saved["autoencoder"][folder]["psnr_db"] < 60
    for row in saved["mask_influence"].values():
        assert row["with_mask"] > 0 and row["mask_dropped"] > 0
    fidelity = saved["semantic_fidelity"]
    names = [v["variant"] for v in fidelity["variants"]]
    assert names == [
        "default",
        "no layout init (pure noise)",
        "layout start 0.5",
        "layout start 0.85",
        "guidance 2.0",
        "ddim, 50 steps",
    ]
    assert all(0 <= v["miou"] <= 1 for v in fidelity["variants"])
    assert fidelity["variants"][1]["layout_init"] is False
    realism = saved["change_realism"]
    assert realism["runs"] == 2 and 0 < realism["changed_share"] < 1
    # t1 is the real image and t2 copies it in unchanged land until late: more alike there
    # than in changed land, even with a random model.
    assert realism["ssim_unchanged"] > realism["ssim_changed"]
    assert [v["variant"] for v in realism["variants"]] == [
        "pixel composition, exemplars on (default)",
        "pixel composition, exemplars off",
        "latent composition, exemplars off (the paper)",
    ]
    for row in realism["variants"]:
        assert -1 <= row["correlation_unchanged"] <= 1 and -1 <= row["correlation_changed"] <= 1
        assert row["sharpness_unchanged"] > 0 and row["sharpness_changed_vs_unchanged"] > 0
        assert 0 <= row["segmenter_agrees_with_t2_in_changed_land"] <= 1
    assert realism["correlation_unchanged"] == realism["variants"][0]["correlation_unchanged"]
    real, synthetic = saved["real_pairs_reference"]["rows"]
    assert real["correlation_unchanged"] == pytest.approx(0.30, abs=0.01)
    assert synthetic["correlation_unchanged"] == pytest.approx(0.80, abs=0.01)
    assert saved["seam_ratio"] > 0
    assert report["seam_ratio"] == saved["seam_ratio"]
    load_segmenter(out / "segmenter.safetensors")
    with rasterio.open(out / "contact_sheet.png") as sheet:
        assert sheet.count == 3 and sheet.height > 3 * 256 and sheet.width >= 4 * 256
    table = (out / "quality.md").read_text()
    assert "| openearthmap |" in table and "Seam ratio" in table
    assert "| target | 0.6-0.95 | >= 0.85 |" in table
    assert "| latent composition, exemplars off (the paper) |" in table
    assert "| real pairs (second_examples, 6) | 0.304 |" in table
