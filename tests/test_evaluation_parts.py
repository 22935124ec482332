"""Image metrics, label metrics, seam ratio and the small segmenter (overfit on real crops)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from geochange.classes import NODATA
from geochange.errors import InputError
from geochange.evaluation.metrics import (
    confusion_matrix,
    masked_correlation,
    mean_iou,
    per_class_iou,
    psnr,
    same_class_sharpness_ratio,
    seam_ratio,
    sharpness,
    sharpness_ratio,
    ssim,
)
from geochange.evaluation.segmenter import (
    Segmenter,
    load_segmenter,
    predict,
    save_segmenter,
    train_segmenter,
)
from geochange.training.data import TileDataset

pytestmark = pytest.mark.usefixtures("one_thread")


def _texture(seed: int, shape: tuple[int, ...] = (3, 48, 48)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def test_psnr_identical_and_known_offset():
    image = _texture(0)
    assert psnr(image, image) == float("inf")
    # uint8 must not wrap: 250 + 10 would be 4 in uint8 arithmetic
    darker = np.full((3, 8, 8), 240, np.uint8)
    brighter = darker + np.uint8(10)
    assert psnr(darker, brighter) == pytest.approx(10 * np.log10(255**2 / 100))
    assert psnr(np.zeros(5), np.full(5, 0.5), data_range=1.0) == pytest.approx(
        10 * np.log10(1 / 0.25)
    )


def test_ssim_identical_noise_and_mask():
    image = _texture(1)
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-6)
    assert abs(ssim(image, _texture(2))) < 0.1
    smooth = np.add.outer(np.arange(48.0), np.arange(48.0)) * 2
    assert ssim(smooth, smooth + _texture(3, (48, 48)) * 0.2) < 0.99  # (H, W) is accepted

    # Left half identical, right half unrelated: the masked score is ~1, the whole one is not.
    other = image.copy()
    other[:, :, 24:] = _texture(4)[:, :, 24:]
    left = np.zeros((48, 48), bool)
    left[:, :16] = True  # away from the seam, so no window sees the changed half
    assert ssim(image, other, mask=left) == pytest.approx(1.0, abs=1e-6)
    assert ssim(image, other) < 0.6
    right = ~left
    assert ssim(image, other, mask=right) < ssim(image, other) < ssim(image, other, mask=left)
    assert np.isnan(ssim(image, other, mask=np.zeros((48, 48), bool)))


def test_confusion_and_iou_by_hand():
    truth = np.array([[0, 0, 1, 1], [2, 2, NODATA, NODATA]])
    predicted = np.array([[0, 1, 1, 1], [2, 0, 3, 7]])
    confusion = confusion_matrix(truth, predicted, num_classes=4)
    expected = np.zeros((4, 4), np.int64)
    expected[0, 0], expected[0, 1], expected[1, 1], expected[2, 2], expected[2, 0] = 1, 1, 2, 1, 1
    np.testing.assert_array_equal(confusion, expected)  # pixels under NODATA are skipped
    assert confusion.dtype == np.int64
    # class 0: 1 / (2 + 2 - 1); class 1: 2 / (2 + 3 - 2); class 2: 1 / (2 + 1 - 1); 3 absent
    iou = per_class_iou(confusion)
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 1 / 2])
    assert np.isnan(iou[3])
    assert mean_iou(confusion) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert np.isnan(mean_iou(np.zeros((4, 4), np.int64)))
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(truth, predicted, num_classes=2)  # truth holds 2


def test_seam_ratio_smooth_and_offset():
    rows, cols = np.mgrid[0:64, 0:96]
    ramp = np.stack([rows + cols, 2 * rows + cols, rows + 3 * cols]).astype(float)
    assert seam_ratio(ramp, 32) == pytest.approx(1.0, abs=0.1)
    seam = ramp.copy()
    seam[:, :, 32:] += 10
    assert seam_ratio(seam, 32) > 2


def test_seam_ratio_matches_the_single_border_definition():
    """The figures measured so far used one border line each way (tests/test_synth.py)."""
    image = _texture(5, (3, 40, 40)).astype(float)
    cols = np.abs(np.diff(image, axis=2)).mean(axis=(0, 1))
    rows = np.abs(np.diff(image, axis=1)).mean(axis=(0, 2))
    inside = np.r_[np.delete(cols, 23), np.delete(rows, 23)].mean()
    assert seam_ratio(image, 24) == pytest.approx((cols[23] + rows[23]) / 2 / inside)


def test_masked_correlation_identical_negative_and_unrelated():
    image = _texture(7)
    everywhere = np.ones((48, 48), bool)
    assert masked_correlation(image, image, everywhere) == pytest.approx(1.0)
    assert masked_correlation(image, 255 - image, everywhere) == pytest.approx(-1.0)
    assert abs(masked_correlation(image, _texture(8), everywhere)) < 0.05
    # A brightness and contrast change is not a difference to Pearson's r.
    assert masked_correlation(image, image // 2 + 60, everywhere) == pytest.approx(1.0, abs=1e-3)
    assert masked_correlation(image[0], image[0], everywhere) == pytest.approx(1.0)  # (H, W)
    assert np.isnan(masked_correlation(image, image, np.zeros((48, 48), bool)))
    assert np.isnan(masked_correlation(image, np.full_like(image, 9), everywhere))
    with pytest.raises(ValueError, match="mask shape"):
        masked_correlation(image, image, np.ones((48, 47), bool))


def test_masked_correlation_counts_the_mask_only():
    image = _texture(9)
    other = image.copy()
    other[:, 20:] = 255 - image[:, 20:]  # the lower part is the negative
    top = np.zeros((48, 48), bool)
    top[:20] = True
    assert masked_correlation(image, other, top) == pytest.approx(1.0)
    assert masked_correlation(image, other, ~top) == pytest.approx(-1.0)
    assert -1 < masked_correlation(image, other, top | ~top) < 0.5


def test_masked_correlation_pools_the_bands():
    """Pooled: one Pearson r over all bands' values, not the mean of per-band ones."""
    rng = np.random.default_rng(10)
    a, b = rng.integers(0, 256, (2, 3, 16, 16)).astype(np.uint8)
    mask = rng.random((16, 16)) < 0.5
    x, y = a[:, mask].astype(float).ravel(), b[:, mask].astype(float).ravel()
    assert masked_correlation(a, b, mask) == pytest.approx(np.corrcoef(x, y)[0, 1])


def test_masked_correlation_on_a_real_second_pair(shared_data: Path):
    """SECOND example 1: the real t2 is far less like t1 in unchanged land than the
    ChangeAnywhere authors' synthetic t2 of the same pair."""
    folder = shared_data / "second_examples" / "second"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found; the SECOND examples are part of ../shared/data")

    def read(part: str) -> np.ndarray:
        return np.array(Image.open(folder / part / "1.png"))

    before, after, synthetic = (
        read(p).transpose(2, 0, 1) for p in ("img_A", "img_B", "img_B_synthetic")
    )
    changed = read("bcd_mask") == 255
    assert 0.2 < changed.mean() < 0.4
    real = masked_correlation(before, after, ~changed)
    assert real == pytest.approx(0.13, abs=0.01)
    assert masked_correlation(before, after, changed) == pytest.approx(0.39, abs=0.01)
    assert masked_correlation(before, synthetic, ~changed) == pytest.approx(0.75, abs=0.01)
    assert masked_correlation(before, synthetic, changed) == pytest.approx(-0.33, abs=0.01)


def test_sharpness_by_hand_and_edge_pairs_left_out():
    image = np.zeros((3, 4, 4), np.uint8)
    image[:, :, 2:] = 10  # a step of 10 between columns 1 and 2
    whole = np.ones((4, 4), bool)
    # Horizontal pairs: 12, one in three has a step of 10 -> 100 / 3; vertical pairs: all 0.
    assert sharpness(image, whole) == pytest.approx(100 / 3)
    left = np.zeros((4, 4), bool)
    left[:, :2] = True
    assert sharpness(image, left) == 0.0  # the step straddles the mask edge
    image[:, :, 1] = 4
    assert sharpness(image, left) == pytest.approx(16.0)  # the 4 inside counts (0 down)
    assert np.isnan(sharpness(image, np.eye(4, dtype=bool)))  # no neighbour pairs inside
    with pytest.raises(ValueError, match="RGB"):
        sharpness(image[0], whole)


def test_sharpness_ratio_of_blur_and_noise():
    image = _texture(11, (3, 64, 64))
    mask = np.ones((64, 64), bool)
    assert sharpness_ratio(image, image, mask) == pytest.approx(1.0)
    ratios = [
        sharpness_ratio(image, gaussian_filter(image, (0, s, s)), mask) for s in (0.5, 1.0, 2.0)
    ]
    assert 1 > ratios[0] > ratios[1] > ratios[2] > 0
    smooth = gaussian_filter(image, (0, 2, 2))
    noise = np.random.default_rng(12).normal(0, 8, smooth.shape)
    noisy = np.clip(smooth + noise, 0, 255).astype(np.uint8)
    assert sharpness_ratio(smooth, noisy, mask) > 1.5
    assert np.isnan(sharpness_ratio(np.full_like(image, 7), image, mask))


def test_sharpness_ignores_pixels_outside_the_mask():
    image = gaussian_filter(_texture(13, (3, 32, 32)), (0, 1, 1))
    mask = np.zeros((32, 32), bool)
    mask[8:24, 4:20] = True
    other = image.copy()
    other[:, ~mask] = _texture(14, (3, 32, 32))[:, ~mask]  # sharper and unrelated outside
    assert sharpness(other, mask) == sharpness(image, mask)
    assert sharpness_ratio(image, other, mask) == 1.0
    assert masked_correlation(image, other, mask) == pytest.approx(1.0)
    whole = np.ones((32, 32), bool)
    assert sharpness_ratio(image, other, whole) > 2
    assert masked_correlation(image, other, whole) < 0.5


def test_same_class_sharpness_compares_new_land_with_old_land_of_its_class():
    """A flood in a town: smooth new water beside busy streets reads as blur to the plain
    ratio, but is as smooth as the old water; a blurred new roof is caught either way."""
    rough = _texture(15, (3, 96, 96)).astype(np.float64)
    smooth = gaussian_filter(rough, (0, 3, 3))
    classes = np.zeros((96, 96), int)  # town on the left...
    classes[:, 48:] = 5  # ...water on the right
    image = np.where(classes == 5, smooth, rough)
    changed = np.zeros((96, 96), bool)
    changed[:40, 56:90] = True  # new water (a flood) within the water's half
    assert sharpness(image, changed) / sharpness(image, ~changed) < 0.5
    assert same_class_sharpness_ratio(image, classes, changed) == pytest.approx(1.0, abs=0.2)
    blurred = image.copy()
    blurred[:, changed] = gaussian_filter(image, (0, 2, 2))[:, changed]
    assert same_class_sharpness_ratio(blurred, classes, changed) < 0.5
    assert np.isnan(same_class_sharpness_ratio(image, np.where(changed, 7, classes), changed))


def test_segmenter_shapes_and_padding():
    torch.manual_seed(0)
    segmenter = Segmenter(width=8)
    assert segmenter(torch.zeros(2, 3, 16, 24)).shape == (2, 8, 16, 24)
    images = _texture(6, (3, 3, 20, 27))
    classes = predict(segmenter, images, batch_size=2)
    assert classes.shape == (3, 20, 27) and classes.dtype == np.int64
    as_float = torch.from_numpy(images).float() / 127.5 - 1
    np.testing.assert_array_equal(predict(segmenter, as_float), classes)


class _Noise:
    """Random images and masks (with no data) standing in for ``TileDataset``."""

    def __len__(self) -> int:
        return 5

    def item(self, index: int, variant: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([index, variant])
        mask = rng.integers(0, 8, (16, 16))
        mask[:4] = NODATA
        return torch.from_numpy(
            rng.uniform(-1, 1, (3, 16, 16)).astype(np.float32)
        ), torch.from_numpy(mask)


def test_train_segmenter_same_seed_same_weights():
    runs = [train_segmenter(_Noise(), steps=3, batch_size=2, width=8, seed=s) for s in (1, 1, 2)]
    first, again, other = (run.state_dict() for run in runs)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not torch.equal(first["head.weight"], other["head.weight"])


def test_segmenter_overfits_real_crops_and_round_trips(shared_data: Path, tmp_path: Path):
    crops = TileDataset(shared_data / "openearthmap", crop=64, seed=0, length=4)
    lines: list[str] = []
    segmenter = train_segmenter(crops, steps=150, batch_size=4, width=16, log=lines.append)
    assert len(lines) == 3 and "loss" in lines[-1]
    images = torch.stack([crops.item(i, 0)[0] for i in range(4)])
    truth = torch.stack([crops.item(i, 0)[1] for i in range(4)]).numpy()
    labelled = truth != NODATA
    predicted = predict(segmenter, images)
    accuracy = (predicted == truth)[labelled].mean()
    majority = np.bincount(truth[labelled]).max() / labelled.sum()
    assert accuracy > 0.6 and accuracy > majority + 0.2, (accuracy, majority)

    save_segmenter(segmenter, tmp_path / "segmenter.safetensors")
    loaded = load_segmenter(tmp_path / "segmenter.safetensors")
    assert loaded.width == 16
    np.testing.assert_array_equal(predict(loaded, images), predicted)


def test_load_segmenter_rejects_other_files(tmp_path: Path):
    with pytest.raises(InputError, match="does not exist"):
        load_segmenter(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(InputError, match="not a safetensors file"):
        load_segmenter(junk)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2)}, str(other))
    with pytest.raises(InputError, match="not a geochange segmenter"):
        load_segmenter(other)
