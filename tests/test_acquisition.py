"""Acquisition differences on real OpenEarthMap tiles: each control moves what it should and
nothing else, blocks join without seams, misregistration is measured by phase correlation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from scipy.ndimage import distance_transform_edt

from geochange import acquisition as acq
from geochange.acquisition import (
    PRESETS,
    Acquisition,
    apply_acquisition,
    margin,
    parse_acquisition,
    shift_of,
)
from geochange.classes import BARELAND, BUILDING, NODATA, ROAD, TREE
from geochange.cli.main import cli
from geochange.errors import InputError
from geochange.evaluation.metrics import masked_correlation, sharpness

GSD = 0.5
"""OpenEarthMap's ground sampling distance, metres."""


def _tile(shared_data: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A real OpenEarthMap image and its land cover as model indices."""
    folder = shared_data / "openearthmap"
    with rasterio.open(folder / "images" / f"{name}.tif") as src:
        rgb = src.read()
    with rasterio.open(folder / "labels" / f"{name}.tif") as src:
        codes = src.read(1)
    return rgb, np.where(codes == 0, NODATA, codes - 1).astype(np.uint8)


@pytest.fixture(scope="module")
def palu(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    return _tile(shared_data, "palu_8")


@pytest.fixture(scope="module")
def houston(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    return _tile(shared_data, "houston_16")


def _apply(tile: tuple[np.ndarray, np.ndarray], seed: int = 5, **controls) -> np.ndarray:
    rgb, classes = tile
    return apply_acquisition(rgb, classes, Acquisition(**controls), seed, (0, 0), GSD)


def _everywhere(rgb: np.ndarray) -> np.ndarray:
    return np.ones(rgb.shape[1:], bool)


def phase_shift(a: np.ndarray, b: np.ndarray, band: float = 0.1) -> tuple[float, float]:
    """(dy, dx) by which ``b`` is ``a`` moved, by phase correlation of the luminances (Hann
    windowed), the peak refined by evaluating the inverse DFT on ever finer grids.

    The whitened cross-power spectrum is weighted by a Gaussian of ``band`` cycles per pixel:
    bilinear resampling moves low frequencies by exactly the shift but bends the phase of the
    highest ones, which would pull an unweighted estimate toward whole pixels."""
    la, lb = (x.astype(np.float64).mean(axis=0) for x in (a, b))
    hann = np.outer(np.hanning(la.shape[0]), np.hanning(la.shape[1]))
    fa, fb = (np.fft.fft2((x - x.mean()) * hann) for x in (la, lb))
    cross = fb * np.conj(fa)
    freq_y, freq_x = (np.fft.fftfreq(n) for n in cross.shape)
    weight = np.exp(-(freq_y[:, None] ** 2 + freq_x[None, :] ** 2) / (2 * band**2))
    cross *= weight / (np.abs(cross) + 1e-12)
    peak = np.unravel_index(np.argmax(np.fft.ifft2(cross).real), cross.shape)
    size = np.array(cross.shape)
    centre = np.where(np.array(peak) <= size // 2, peak, np.array(peak) - size).astype(float)
    for step in (0.1, 0.01, 0.001):
        offsets = np.arange(-15, 16) * step
        ey = np.exp(2j * np.pi * np.outer(centre[0] + offsets, freq_y))
        ex = np.exp(2j * np.pi * np.outer(centre[1] + offsets, freq_x))
        surface = (ey @ cross @ ex.T).real
        best = np.unravel_index(np.argmax(surface), surface.shape)
        centre = centre + offsets[list(best)]
    return float(centre[0]), float(centre[1])


# --- the spec syntax -------------------------------------------------------------------------


def test_parse_presets_pairs_and_overrides():
    assert parse_acquisition(None) == parse_acquisition("") == Acquisition()
    assert parse_acquisition("realistic") == PRESETS["realistic"]
    assert parse_acquisition(" Realistic , noise=0.03") == Acquisition(
        **{**PRESETS["realistic"].to_dict(), "noise": 0.03}
    )
    parsed = parse_acquisition("radiometry=0.3,misregistration=1.5,season=autumn")
    assert parsed == Acquisition(radiometry=0.3, misregistration=1.5, season="autumn")
    for preset in PRESETS.values():
        assert Acquisition(**preset.to_dict()) == preset
        spec = ",".join(f"{k}={v}" for k, v in preset.to_dict().items())
        assert parse_acquisition(spec) == preset
    assert PRESETS["none"].is_identity() and not PRESETS["mild"].is_identity()


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("fancy", ["'fancy'", "realistic", "radiometry"]),
        ("sharpness=1", ["'sharpness'", "misregistration", "season"]),
        ("noise=0.1,noise=0.2", ["'noise'", "twice"]),
        ("haze=nan", ["haze", "0 to 1"]),
        ("blur=inf", ["blur", "pixels"]),
        ("misregistration=-1", ["misregistration", "metres"]),
        ("shadows=1.5", ["shadows", "0 to 1"]),
        ("radiometry=lots", ["radiometry", "'lots'"]),
        ("season=monsoon", ["'monsoon'", "autumn", "dry"]),
        ("noise=0.1,realistic", ["'realistic'", "only come first"]),
    ],
)
def test_parse_errors_name_the_problem_and_the_valid_choices(spec: str, says: list[str]):
    with pytest.raises(InputError) as err:
        parse_acquisition(spec)
    for text in says:
        assert text in str(err.value)


def test_direct_construction_is_checked_too():
    """Values read back from a run.json go through the same checks as typed ones."""
    with pytest.raises(InputError, match="noise"):
        Acquisition(noise=-0.1)
    with pytest.raises(InputError, match="monsoon"):
        Acquisition(season="monsoon")
    assert Acquisition(blur=1).to_dict()["blur"] == 1


def test_listing_shows_units_defaults_and_presets():
    result = CliRunner().invoke(cli, ["acquisitions"])
    assert result.exit_code == 0, result.output
    for text in ("misregistration=0.0", "metres", "fraction of 255", "pixels", "realistic"):
        assert text in result.output
    listing = json.loads(CliRunner().invoke(cli, ["acquisitions", "--json"]).output)
    assert [p["name"] for p in listing["parameters"]] == [p.name for p in acq.PARAMETERS]
    assert listing["presets"]["strong"] == PRESETS["strong"].to_dict()


# --- what each control does ------------------------------------------------------------------


def test_identity_is_an_exact_copy_and_inputs_are_left_alone(palu):
    rgb, classes = palu
    before = rgb.copy(), classes.copy()
    out = _apply(palu)
    assert out.dtype == np.uint8 and np.array_equal(out, rgb) and out is not rgb
    _apply(palu, **PRESETS["strong"].to_dict())
    assert np.array_equal(rgb, before[0]) and np.array_equal(classes, before[1])
    assert margin(Acquisition(), GSD) == 0


def test_deterministic_for_a_seed(palu):
    rgb, classes = palu[0][:, :300, :300], palu[1][:300, :300]
    strong = PRESETS["strong"]
    first = apply_acquisition(rgb, classes, strong, 7, (40, 90), GSD)
    assert np.array_equal(first, apply_acquisition(rgb, classes, strong, 7, (40, 90), GSD))
    assert not np.array_equal(first, apply_acquisition(rgb, classes, strong, 8, (40, 90), GSD))


def test_windows_join_without_seams(palu):
    """Four 256 px windows with margins give exactly the pixels of the 512 px block processed at
    once, for every control together, at an origin that is not on the lattice."""
    rgb, classes = palu[0][:, 200:712, 300:812], palu[1][200:712, 300:812]
    strong, origin, seed = PRESETS["strong"], (200, 300), 11
    whole = apply_acquisition(rgb, classes, strong, seed, origin, GSD)
    pad = margin(strong, GSD)
    assert 20 < pad < 128
    for top in (0, 256):
        for left in (0, 256):
            rows = slice(max(top - pad, 0), min(top + 256 + pad, 512))
            cols = slice(max(left - pad, 0), min(left + 256 + pad, 512))
            window = apply_acquisition(
                rgb[:, rows, cols],
                classes[rows, cols],
                strong,
                seed,
                (origin[0] + rows.start, origin[1] + cols.start),
                GSD,
            )
            core = window[:, top - rows.start : top - rows.start + 256]
            core = core[:, :, left - cols.start : left - cols.start + 256]
            assert np.array_equal(core, whole[:, top : top + 256, left : left + 256])


def test_global_shift_is_measured_by_phase_correlation(palu, monkeypatch):
    monkeypatch.setattr(acq, "LOCAL_WARP_FRACTION", 0.0)
    rgb = palu[0]
    for seed, metres in ((1, 0.6), (2, 1.5), (3, 2.3)):
        requested = shift_of(Acquisition(misregistration=metres), seed, GSD)
        assert np.hypot(*requested) == pytest.approx(metres / GSD)
        measured = phase_shift(rgb, _apply(palu, seed, misregistration=metres))
        assert np.allclose(measured, requested, atol=0.1), (measured, requested)


def test_misregistration_warps_the_image_only(palu):
    """With the local warp the image still moves by about the global shift, its values keep
    their distribution, and a smooth warp (not a pure shift) is what remains."""
    rgb = palu[0]
    out = _apply(palu, 4, misregistration=1.5)
    requested = shift_of(Acquisition(misregistration=1.5), 4, GSD)
    assert np.allclose(phase_shift(rgb, out), requested, atol=0.5)
    core = (slice(None), slice(16, -16), slice(16, -16))
    assert np.abs(out[core].mean(axis=(1, 2)) - rgb[core].mean(axis=(1, 2))).max() < 1.0
    measured = phase_shift(rgb[:, :256, :256], out[:, :256, :256])
    other = phase_shift(rgb[:, -256:, -256:], out[:, -256:, -256:])
    assert np.hypot(measured[0] - other[0], measured[1] - other[1]) > 0.05


def test_radiometry_keeps_the_rank_of_values_within_each_band(palu, monkeypatch):
    rgb = palu[0]
    monkeypatch.setattr(acq, "GAIN_FIELD_STD", 0.0)
    monkeypatch.setattr(acq, "BAND_FIELD_STD", 0.0)
    out = _apply(palu, 3, radiometry=1.0)
    assert not np.array_equal(out, rgb)
    for band in range(3):
        # one output value per input value, never decreasing as the input rises
        levels = np.full(256, -1)
        for value in np.unique(rgb[band]):
            outputs = np.unique(out[band][rgb[band] == value])
            assert len(outputs) == 1
            levels[value] = outputs[0]
        used = levels[levels >= 0]
        assert (np.diff(used) >= 0).all()
        assert len(np.unique(used)) > 0.6 * len(used)  # not flattened into a few levels
    assert phase_shift(rgb, out) == pytest.approx((0.0, 0.0), abs=0.02)


def test_radiometry_field_varies_smoothly_across_the_scene(palu):
    rgb = palu[0].astype(float)
    out = _apply(palu, 3, radiometry=1.0).astype(float)
    blocks = (3, 8, 128, 8, 128)
    ratio = out.reshape(blocks).mean(axis=(0, 2, 4)) / rgb.reshape(blocks).mean(axis=(0, 2, 4))
    assert np.std(ratio) > 0.05  # the gain differs across the scene
    step = np.abs(np.diff(ratio, axis=1))
    assert step.max() < 0.25  # but neighbours stay close


def test_noise_changes_the_spread_not_the_mean(palu):
    rgb = palu[0].astype(float)
    difference = _apply(palu, noise=0.03).astype(float) - rgb
    inside = (rgb > 30) & (rgb < 225)  # away from clipping
    assert difference[inside].std() == pytest.approx(0.03 * 255, rel=0.05)
    assert abs(difference[inside].mean()) < 0.2
    # independent from pixel to pixel: no spatial structure
    assert (
        abs(np.corrcoef(difference[0, :, 1:].ravel(), difference[0, :, :-1].ravel())[0, 1]) < 0.02
    )


def test_blur_lowers_gradient_energy_and_keeps_the_mean(palu):
    rgb = palu[0]
    out = _apply(palu, blur=1.0)
    assert sharpness(out, _everywhere(rgb)) < 0.6 * sharpness(rgb, _everywhere(rgb))
    assert np.abs(out.mean(axis=(1, 2)) - rgb.mean(axis=(1, 2))).max() < 0.5
    assert phase_shift(rgb, out) == pytest.approx((0.0, 0.0), abs=0.02)


def test_haze_raises_the_dark_end_and_flattens_contrast(palu):
    rgb = palu[0].astype(float)
    out = _apply(palu, haze=0.4).astype(float)
    for band in range(3):
        assert np.percentile(out[band], 2) > np.percentile(rgb[band], 2) + 15
        assert out[band].std() < 0.85 * rgb[band].std()
    assert out[2].mean() - rgb[2].mean() > out[0].mean() - rgb[0].mean()  # bluish airlight


def test_shadows_fall_beside_buildings_and_trees_not_on_roofs(palu):
    rgb, classes = palu
    out = _apply(palu, shadows=1.0)
    luminance = out.astype(float).mean(axis=0) - rgb.astype(float).mean(axis=0)
    roofs = classes == BUILDING
    assert np.array_equal(out[:, roofs], rgb[:, roofs])
    darker = luminance < -10
    assert darker.sum() > 0.02 * darker.size
    reach = round(acq.BUILDING_HEIGHT_M / GSD) + 3
    assert not (darker & (distance_transform_edt(~(roofs | (classes == TREE))) > reach)).any()
    # one side only: the shadow lies toward the drawn azimuth
    angle = acq._draws(5).sun_azimuth
    ahead = acq._sweep(roofs, np.sin(angle), np.cos(angle), reach) & ~roofs
    behind = acq._sweep(roofs, -np.sin(angle), -np.cos(angle), reach) & ~roofs
    assert luminance[ahead & ~behind].mean() < luminance[behind & ~ahead].mean() - 10


def test_a_wood_casts_a_ragged_lighter_shadow_and_its_old_one_is_lifted() -> None:
    """A straight wood edge at 0.2 m, sun from the west: the new shadow east of it reaches a
    different length row by row (crowns differ in height), darkens less than a building's, and
    the dark land west of the wood (its old shadow) is lightened."""
    gsd, size = 0.2, 256
    classes = np.full((size, size), BARELAND, np.uint8)
    classes[:, 100:150] = TREE
    classes[20:60, 200:240] = BUILDING
    image = np.full((3, size, size), 0.5, np.float32)
    image[:, :, 80:100] = 0.2  # the wood's shadow of the first acquisition
    heights = acq._crown_heights(5, (0, 0), (size, size), gsd)
    out = acq._shadows(image, classes, Acquisition(shadows=1.0), 0.0, gsd, heights)
    building_px, tree_px = acq._shadow_lengths(Acquisition(shadows=1.0), gsd)
    dark = out[0] < 0.45
    lengths = dark[:, 150 : 150 + tree_px + 4].sum(axis=1)
    assert lengths.max() <= tree_px + 2
    assert lengths.min() <= 0.6 * lengths.max(), "the far edge of a wood's shadow is ragged"
    wood_shadow = out[0, 100:200, 151:154].min()
    building_shadow = out[0, 30:50, 241:244].min()
    assert wood_shadow > building_shadow + 0.03, "crowns let light through"
    assert out[0, :, 90:99].mean() > 0.2 * 1.1, "the old shadow, west of the wood, is lifted"


def test_season_moves_vegetation_not_roads_and_roofs(houston):
    rgb, classes = houston
    out = _apply(houston, season="autumn")
    change = np.abs(out.astype(float) - rgb).mean(axis=0)
    interior = {}  # farther than the blend from any other class
    for c in (TREE, ROAD, BUILDING):
        interior[c] = classes == c
        for dy, dx in ((0, 6), (6, 0), (0, -6), (-6, 0)):
            interior[c] &= np.roll(classes == c, (dy, dx), axis=(0, 1))
    assert change[interior[TREE]].mean() > 5 * change[interior[ROAD]].mean()
    assert change[interior[TREE]].mean() > 5 * change[interior[BUILDING]].mean()
    assert (out[0] - rgb[0].astype(int))[interior[TREE]].mean() > 0  # toward yellow-brown
    # no class outline: the change steps by little from one pixel to the next
    assert np.percentile(np.abs(np.diff(change, axis=1)), 99.9) < 25


def test_no_season_turns_a_desert_green():
    rng = np.random.default_rng(0)
    sand = np.clip(
        np.array([200, 180, 150])[:, None, None] + rng.normal(0, 6, (3, 128, 128)), 0, 255
    )
    classes = np.full((128, 128), BARELAND)
    for season in ("spring", "summer", "autumn", "winter", "dry"):
        out = _apply((sand.astype(np.uint8), classes), season=season).astype(float)
        greener = (out[1] - (out[0] + out[2]) / 2) - (sand[1] - (sand[0] + sand[2]) / 2)
        assert np.abs(greener).max() < 5, season


def test_controls_do_not_leak_into_each_other(palu):
    """Turning one control on leaves what the others do as it was (draws in a fixed order)."""
    both = _apply(palu, 9, haze=0.3, noise=0.02)
    hazy = _apply(palu, 9, haze=0.3).astype(float)
    noise = _apply((hazy.astype(np.uint8), palu[1]), 9, noise=0.02).astype(float) - hazy
    alone = _apply(palu, 9, noise=0.02).astype(float) - palu[0]
    inside = (hazy > 30) & (hazy < 225) & (palu[0] > 30) & (palu[0] < 225)
    assert np.abs(noise - alone)[inside].max() <= 1
    assert np.abs(both.astype(float) - hazy - alone)[inside].max() <= 1.5


# --- realism -----------------------------------------------------------------------------------


def test_presets_are_calibrated_on_real_tiles(palu, houston):
    """Pooled pixel correlation with the original: mild > realistic (0.5-0.85) > strong."""
    for tile in (palu, houston):
        rgb, _ = tile
        score = {
            name: masked_correlation(rgb, _apply(tile, 0, **preset.to_dict()), _everywhere(rgb))
            for name, preset in PRESETS.items()
            if name != "none"
        }
        assert 0.85 < score["mild"] < 0.97
        assert 0.6 < score["realistic"] < 0.85
        assert 0.45 < score["strong"] < score["realistic"] - 0.08


def test_a_1024_tile_takes_well_under_two_seconds(palu):
    _apply(palu, 0, **PRESETS["strong"].to_dict())  # warm up
    start = time.perf_counter()
    _apply(palu, 1, **PRESETS["strong"].to_dict())
    assert time.perf_counter() - start < 2.0


def test_bad_shapes_are_refused(palu):
    with pytest.raises(ValueError, match="must be"):
        apply_acquisition(palu[0][:2], palu[1], PRESETS["mild"], 0, (0, 0), GSD)


@pytest.mark.parametrize("metres", [0.25, 0.5, 0.75, 1.0])
def test_misregistration_resamples_without_blurring_the_detail(metres: float):
    """Sub-pixel shifts by cubic convolution keep fine texture's gradient energy (bilinear
    interpolation kept 0.68 of it at some shifts): t2 is not blurrier than t1 for it."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    texture = 128 + 120 * ndimage.gaussian_filter(rng.normal(size=(3, 128, 128)), (0, 0.8, 0.8))
    rgb = np.clip(texture, 0, 255).astype(np.uint8)
    classes = np.ones((128, 128), np.uint8)
    inner = np.zeros((128, 128), bool)
    inner[8:-8, 8:-8] = True
    out = apply_acquisition(rgb, classes, Acquisition(misregistration=metres), 3, (0, 0), 0.5)
    ratio = sharpness(out, inner) / sharpness(rgb, inner)
    assert 0.85 <= ratio <= 1.05
