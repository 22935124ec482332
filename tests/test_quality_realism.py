"""Change realism in the quality report: the composition ablation on real held-out squares
with a tiny model, the real-pairs reference rows and their Markdown table."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from geochange.evaluation.quality import (
    REALISM_TARGETS,
    ablation_variants,
    change_realism,
    composition_variants,
    real_pairs_reference,
    realism_markdown,
)
from geochange.evaluation.segmenter import Segmenter
from geochange.painting import SamplingOptions

pytestmark = pytest.mark.usefixtures("one_thread")

FIGURES = (
    "correlation_unchanged",
    "correlation_changed",
    "sharpness_unchanged",
    "sharpness_changed_vs_unchanged",
    "ssim_unchanged",
    "ssim_changed",
    "sharpness_changed_vs_same_class",
    "segmenter_agrees_with_t2_in_changed_land",
    "segmenter_agrees_with_t1_in_changed_land",
    "segmenter_agrees_on_real_land",
)
FAST = SamplingOptions(steps=2, sampler="ddim", tile_size=128, overlap=32)


def _segmenter() -> Segmenter:
    torch.manual_seed(0)
    return Segmenter(width=8)


def _second_examples(shared_data: Path) -> Path:
    folder = shared_data / "second_examples"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found; the SECOND examples are part of ../shared/data")
    return folder


def _check_figures(row: dict) -> None:
    """Every figure present, a float, and inside the range its definition allows."""
    for name in FIGURES:
        assert isinstance(row[name], float) and math.isfinite(row[name]), (name, row[name])
    for name in ("correlation_unchanged", "correlation_changed", "ssim_unchanged"):
        assert -1 <= row[name] <= 1, (name, row[name])
    for name in FIGURES[2:4] + FIGURES[6:7]:
        assert 0 < row[name] < 100, (name, row[name])
    for name in FIGURES[-3:]:
        assert 0 <= row[name] <= 1, (name, row[name])


def test_with_a_bank_the_models_levers_are_measured_without_it():
    from geochange.model.config import preset

    config = preset("cpu")
    variants = ablation_variants(SamplingOptions(), config, bank=True)
    names = list(variants)
    assert names[:2] == ["default", "exemplars off (the model alone)"]
    assert variants["default"][0].exemplars
    assert not any(options.exemplars for options, _ in list(variants.values())[1:])
    assert "exemplars off (the model alone)" not in ablation_variants(SamplingOptions(), config)


def test_composition_variants_name_the_ablation():
    variants = composition_variants(SamplingOptions(steps=3), ablation=True)
    assert list(variants) == [
        "pixel composition, exemplars on (default)",
        "pixel composition, exemplars off",
        "latent composition, exemplars off (the paper)",
    ]
    assert [(v.composition, v.exemplars, v.steps) for v in variants.values()] == [
        ("pixel", True, 3),
        ("pixel", False, 3),
        ("latent", False, 3),
    ]
    acquisitions = [v.acquisition.is_identity() for v in variants.values()]
    assert acquisitions == [False, False, True]  # the paper's pairs differ only where changed
    # Options outside the three come first, as the run's own; without ablation they are alone.
    odd = SamplingOptions(composition="latent", exemplars=True)
    assert list(composition_variants(odd, ablation=True))[0] == "latent composition, exemplars on"
    assert len(composition_variants(odd, ablation=True)) == 4
    assert list(composition_variants(odd, ablation=False).values()) == [odd]


def test_change_realism_ablation_on_real_heldout_squares(
    shared_data: Path, model_dir: Path, tmp_path: Path
):
    lines: list[str] = []
    realism, runs = change_realism(
        model_dir,
        shared_data / "openearthmap",
        _segmenter(),
        FAST,
        seeds=1,
        device="cpu",
        work=tmp_path,
        ablation=True,
        log=lines.append,
    )
    rows = realism["variants"]
    assert [(r["composition"], r["exemplars"]) for r in rows] == [
        ("pixel", True),
        ("pixel", False),
        ("latent", False),
    ]
    assert len(lines) == 3 and all("change realism" in line for line in lines)
    for row in rows:
        _check_figures(row)
        assert row["seconds_per_run"] > 0
    # The section's own figures are the first variant's; its two runs (one per held-out
    # square) are returned for the contact sheet.
    assert realism["runs"] == len(runs) == 2
    assert all(realism[name] == rows[0][name] for name in FIGURES)
    assert realism["targets"] == REALISM_TARGETS
    assert 0 < realism["changed_share"] < 0.5
    # Even with a random model, the pixel composition keeps t1's real pixels in unchanged land,
    # while the paper's decodes them from latents: the ablation switches what it says it does.
    pixel, latent = rows[0]["correlation_unchanged"], rows[2]["correlation_unchanged"]
    assert pixel > 0.5 and pixel > latent + 0.3, (pixel, latent)


def test_real_pairs_reference_reproduces_the_published_figures(shared_data: Path):
    """Real SECOND / LsSCD pairs: 0.30 unchanged, 0.19 changed; the ChangeAnywhere authors'
    synthetic t2: 0.80 and -0.16 (issue 13)."""
    reference = real_pairs_reference(_second_examples(shared_data), _segmenter())
    real, synthetic = reference["rows"]
    assert real["variant"] == "real pairs (second_examples, 6)"
    assert "authors' synthetic" in synthetic["variant"]
    assert real["correlation_unchanged"] == pytest.approx(0.30, abs=0.01)
    assert real["correlation_changed"] == pytest.approx(0.19, abs=0.01)
    assert synthetic["correlation_unchanged"] == pytest.approx(0.80, abs=0.01)
    assert synthetic["correlation_changed"] == pytest.approx(-0.16, abs=0.01)
    # Real t2 is as sharp as t1 where nothing changed; the authors' decoded t2 is not.
    assert real["sharpness_unchanged"] == pytest.approx(1.0, abs=0.05)
    assert synthetic["sharpness_unchanged"] < 0.8
    for row in (real, synthetic):
        _check_figures(row)


def test_real_pairs_reference_reads_one_folder_and_skips_a_missing_one(
    shared_data: Path, tmp_path: Path
):
    source = _second_examples(shared_data) / "lsscd"
    single = tmp_path / "pairs"
    for part in ("img_A", "img_B", "bcd_mask"):  # no synthetic t2, no class maps
        shutil.copytree(source / part, single / part)
    reference = real_pairs_reference(single, _segmenter())
    (row,) = reference["rows"]
    assert row["variant"] == "real pairs (pairs, 3)"
    assert "segmenter_agrees_with_t2_in_changed_land" not in row
    assert -1 <= row["correlation_unchanged"] <= 1
    assert "no folder" in real_pairs_reference(tmp_path / "absent", _segmenter())["skipped"]
    assert "no folder" in real_pairs_reference(None, _segmenter())["skipped"]


def test_realism_markdown_has_a_target_row_and_every_row():
    figures = dict.fromkeys(FIGURES, 0.5)
    realism = {
        "events": "building_add",
        "runs": 2,
        "changed_share": 0.1,
        "ssim_unrelated_pairs": 0.2,
        "variants": [
            {"variant": "pixel composition", **figures, "seconds_per_run": 1.5},
            {"variant": "latent composition", **figures, "correlation_unchanged": -0.25},
        ],
    }
    reference = {"folder": "/data/pairs", "rows": [{"variant": "real pairs", **figures}]}
    lines = realism_markdown(realism, reference)
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + 1 + 3  # header, rule, target, three rows
    assert table[2].startswith("| target | 0.6-0.95 | >= 0.85 |")
    assert all(line.count("|") == table[0].count("|") for line in table)
    assert "| latent composition | -0.250 |" in table[4]
    assert table[3].endswith("| 1.500 |") and table[5].endswith("|  |")
    assert any("/data/pairs" in line for line in lines)
    skipped = realism_markdown(realism, {"skipped": "no folder of real pairs at None"})
    assert any("skipped: no folder" in line for line in skipped)
    assert realism_markdown(None, {"skipped": "x"}) == ["", "Reference rows skipped: x."]


def test_unchanged_sharpness_leaves_out_the_edge_of_changed_land():
    """Blur and misregistration carry the step at a bright new patch's edge into the unchanged
    land beside it; that step is not the unchanged land's detail."""
    import numpy as np
    from scipy import ndimage

    from geochange.evaluation.metrics import sharpness_ratio
    from geochange.evaluation.quality import pair_figures

    rng = np.random.default_rng(0)
    t1 = rng.integers(80, 100, (3, 96, 96)).astype(np.uint8)  # fine, low-contrast texture
    changed = np.zeros((96, 96), bool)
    changed[30:60, 30:60] = True
    t2 = t1.copy()
    t2[:, changed] = 250
    near = (ndimage.distance_transform_edt(~changed) <= 2) & ~changed
    smeared = ndimage.gaussian_filter(t2.astype(float), (0, 1, 1))
    t2[:, near] = np.round(smeared[:, near]).astype(np.uint8)
    figures = pair_figures(t1, t2, changed, ~changed)
    assert figures["sharpness_unchanged"] == pytest.approx(1.0)
    assert sharpness_ratio(t1, t2, ~changed) > 1.2  # what counting the edge gave (1.36)
