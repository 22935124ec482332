"""Keeping the real image: pixel-space composition, exemplars, fitted roofs and shadows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.windows import Window
from scipy import ndimage

from geochange.classes import BARELAND, BUILDING, NODATA
from geochange.cli.main import cli
from geochange.evaluation.metrics import (
    masked_correlation,
    same_class_sharpness_ratio,
    sharpness,
    sharpness_ratio,
)
from geochange.model.bank import ExemplarBank
from geochange.sampling import blend_weight, compose, exemplar_fill
from geochange.sampling.compose import coarse_blur
from geochange.sampling.roofs import cast_shadows, fit_roofs, roofs_of, shadow_of_buildings
from tests.conftest import crop_openearthmap

GRASS, TREE, WATER = 1, 4, 5


def test_blend_weight_ramps_across_the_edge_of_kept_land():
    keep = np.zeros((40, 40), bool)
    keep[:, :20] = True
    weight = blend_weight(keep, band=8)
    assert weight[:, :14].min() == 1.0 and weight[:, 26:].max() == 0.0
    row = weight[0]
    assert np.all(np.diff(row) <= 0) and 0 < row[19] < 1 and 0 < row[20] < 1
    assert blend_weight(np.ones((4, 4), bool)).min() == 1.0


@pytest.mark.parametrize("shape", [(3, 256, 256), (3, 250, 237)])
def test_coarse_blur_is_the_gaussian_blur_to_a_fraction_of_a_grey_level(shape):
    rng = np.random.default_rng(0)
    variation = ndimage.gaussian_filter(rng.normal(0, 20, shape), (0, 3, 3)).astype(np.float32)
    variation[:, 100:, 60:] += 15  # a step, as where a patch was re-textured
    exact = ndimage.gaussian_filter(variation, (0, 8, 8))
    coarse = coarse_blur(variation, 8.0)
    assert coarse.shape == shape and coarse.dtype == np.float32
    assert np.sqrt(np.mean((coarse - exact) ** 2)) < 0.02 * exact.std()
    inner = (slice(None), slice(16, -16), slice(16, -16))  # the edges mirror differently
    assert np.abs(coarse - exact)[inner].max() < 0.3
    narrow = ndimage.gaussian_filter(variation, (0, 1.5, 1.5))
    assert np.array_equal(coarse_blur(variation, 1.5), narrow)  # too narrow for cells


def test_compose_keeps_the_base_plus_the_models_variation():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    base_decoded = rng.uniform(0, 255, (3, 8, 8)).astype(np.float32)
    decoded = base_decoded + 3.0
    weight = np.ones((8, 8), np.float32)
    weight[:, 4:] = 0.0
    out = compose(base, decoded, base_decoded, weight)
    expected = np.clip(base[:, :, :4].astype(np.float32) + 3.0, 0, 255)
    np.testing.assert_array_equal(out[:, :, :4], expected)
    np.testing.assert_array_equal(out[:, :, 4:], np.round(decoded[:, :, 4:]).clip(0, 255))


def _two_class_scene() -> tuple[np.ndarray, np.ndarray]:
    """Grass (green, noisy) on the left, water (blue, noisy) on the right, 96 x 96."""
    rng = np.random.default_rng(1)
    classes = np.full((96, 96), GRASS)
    classes[:, 48:] = WATER
    rgb = np.zeros((3, 96, 96), np.uint8)
    rgb[1, :, :48] = rng.integers(150, 200, (96, 48))
    rgb[2, :, 48:] = rng.integers(150, 200, (96, 48))
    return rgb, classes


def test_exemplars_fill_changed_land_with_real_pixels_of_the_new_class():
    rgb, before = _two_class_scene()
    after = before.copy()
    after[10:30, 10:30] = WATER  # a pond dug in the grass
    base, filled = exemplar_fill(
        rgb, np.ones(before.shape, bool), before, after, np.random.default_rng(0)
    )
    pond = before != after
    assert filled[pond].all() and not filled[~pond].any()
    assert (base[2][pond] >= 150).all() and (base[1][pond] == 0).all()  # water's pixels
    np.testing.assert_array_equal(base[:, ~pond], rgb[:, ~pond])
    # the copied pixels are real water pixels, not an average of them
    assert len(np.unique(base[2][pond])) > 20


def test_a_class_the_image_lacks_comes_from_the_bank_in_this_images_colours():
    rgb, before = _two_class_scene()
    rgb[[0, 2], :, :48] = 80  # grass shows in every band
    after = before.copy()
    after[10:74, 10:40] = TREE  # larger than a piece: the bank crop must tile seamlessly
    valid = np.ones(before.shape, bool)
    base, filled = exemplar_fill(rgb, valid, before, after, np.random.default_rng(0))
    assert not filled.any()
    np.testing.assert_array_equal(base, rgb)
    # The bank: trees beside grass, seen by a sensor a quarter brighter than this image's.
    rng = np.random.default_rng(2)
    crop = rng.integers(40, 80, (3, 64, 64)).astype(np.float64)  # dark trees
    classes = np.full((64, 64), TREE, np.uint8)
    classes[:, :16] = GRASS
    crop[:, :, :16] = rgb[:, :64, :16]  # the same grass as this image's...
    crop = np.round(crop * 1.25).astype(np.uint8)  # ...through the brighter sensor
    bank = ExemplarBank(crop[None], classes[None])
    base, filled = exemplar_fill(rgb, valid, before, after, np.random.default_rng(0), bank)
    tree = before != after
    assert filled[tree].all() and not filled[~tree].any()
    np.testing.assert_array_equal(base[:, ~tree], rgb[:, ~tree])
    # Lit as the grass both show says, the sensor's gain comes off: the trees' own pixels.
    pixels = base[:, tree].astype(float)
    trees = crop[:, :, 16:].mean(axis=(1, 2))
    np.testing.assert_allclose(pixels.mean(axis=1), trees / 1.25, atol=2)
    assert len(np.unique(pixels[0])) > 20
    # Neighbouring pieces take neighbouring pixels of the crop: no seam between them.
    gradient = np.abs(np.diff(base[:, 10:74, 10:40].astype(float), axis=1)).mean(axis=(0, 2))
    assert gradient.max() < 3 * np.median(gradient)


def test_the_bank_carries_a_class_colour_through_classes_the_image_shows():
    """Bare soil has never been seen beside trees in the bank, only beside grass, and grass
    beside trees: a dim image of trees still gets soil as dim as its trees say."""
    rng = np.random.default_rng(3)
    bare, grass, tree = (190, 170, 140), (90, 140, 60), (50, 80, 40)

    def texture(colour: tuple[int, int, int], light: float, shape: tuple[int, int]) -> np.ndarray:
        noise = rng.integers(-15, 16, (3, *shape))
        return np.clip(np.array(colour)[:, None, None] * light + noise, 0, 255).astype(np.uint8)

    soil_crop = np.concatenate([texture(bare, 1.0, (64, 48)), texture(grass, 1.0, (64, 16))], 2)
    park_crop = np.concatenate([texture(grass, 1.0, (64, 32)), texture(tree, 1.0, (64, 32))], 2)
    soil_classes = np.full((64, 64), BARELAND, np.uint8)
    soil_classes[:, 48:] = GRASS
    park_classes = np.full((64, 64), GRASS, np.uint8)
    park_classes[:, 32:] = TREE
    bank = ExemplarBank(np.stack([soil_crop, park_crop]), np.stack([soil_classes, park_classes]))
    rgb = texture(tree, 0.7, (96, 96))  # a forest, in a light 0.7 of the bank's
    before = np.full((96, 96), TREE)
    after = before.copy()
    after[20:60, 20:60] = BARELAND  # cleared
    valid = np.ones(before.shape, bool)
    base, filled = exemplar_fill(rgb, valid, before, after, np.random.default_rng(0), bank)
    cleared = before != after
    assert filled[cleared].all()
    np.testing.assert_allclose(base[:, cleared].mean(axis=1), np.array(bare) * 0.7, atol=4)


def test_bank_crops_are_resampled_to_the_images_pixels():
    """A 0.5 m bank filling a 0.25 m image (zoom 2): its texture is twice as coarse in pixels,
    as the same ground seen finer is, not drawn at half its size."""
    rgb, before = _two_class_scene()
    after = before.copy()
    after[10:74, 10:40] = TREE
    rng = np.random.default_rng(2)
    crop = rng.integers(0, 80, (3, 64, 64)).astype(np.uint8)  # trees with pixel-fine texture
    classes = np.full((64, 64), TREE, np.uint8)
    classes[:, :16] = GRASS
    bank = ExemplarBank(crop[None], classes[None])

    def roughness(zoom: float) -> float:
        """Mean step between neighbouring filled pixels, away from the patch's edge."""
        valid = np.ones(before.shape, bool)
        base, filled = exemplar_fill(
            rgb, valid, before, after, np.random.default_rng(0), bank, zoom=zoom
        )
        assert filled[before != after].all()
        return float(np.abs(np.diff(base[:, 14:70, 14:36].astype(float), axis=2)).mean())

    assert roughness(2.0) < 0.45 * roughness(1.0)
    assert roughness(1.05) == roughness(1.0)  # within ZOOM_TOLERANCE: the crops as they are


def _town() -> tuple[np.ndarray, np.ndarray]:
    """Grey ground with one 12 x 30 red roof whose ridge (white) runs along its length, and a
    3-pixel dark shadow south of every building."""
    rgb = np.full((3, 120, 120), 120, np.uint8)
    classes = np.full((120, 120), GRASS)
    for top, left in ((10, 10), (10, 70), (60, 10)):
        classes[top : top + 12, left : left + 30] = BUILDING
        colour = (200, 40, 40) if left == 10 else (40, 40, 200)
        rgb[:, top : top + 12, left : left + 30] = np.array(colour)[:, None, None]
        rgb[:, top + 5 : top + 7, left : left + 30] = 255  # the ridge
        rgb[:, top + 12 : top + 15, left : left + 30] = 60  # the shadow
    return rgb, classes


def test_a_new_footprint_takes_one_whole_roof_turned_onto_its_axes():
    rgb, before = _town()
    after = before.copy()
    after[70:100, 80:92] = BUILDING  # 30 tall, 12 wide: a roof turned by 90 degrees
    base, filled = rgb.copy(), np.zeros(before.shape, bool)
    valid = np.ones(before.shape, bool)
    roofs = roofs_of(rgb, valid & (before == BUILDING))
    fit_roofs(base, filled, before != after, roofs, np.random.default_rng(0))
    footprint = before != after
    assert filled[footprint].all() and not filled[~footprint].any()
    roof = base[:, 70:100, 80:92]
    ridge = (roof == 255).all(axis=0)
    assert ridge.sum() >= 30  # the ridge came along...
    cols = np.flatnonzero(ridge.any(axis=0))
    assert cols.max() - cols.min() <= 3  # ...and runs down the footprint's long axis
    body = roof[:, ~ridge]
    one_roof = (body == body[:, :1]).all(axis=0).mean()
    assert one_roof > 0.8  # one roof's colour, not a patchwork


def test_shadows_are_read_off_the_image_and_cast_the_same_way():
    rgb, before = _town()
    valid = np.ones(before.shape, bool)
    direction, length, factor = shadow_of_buildings(rgb, valid, before == BUILDING)
    assert direction == (1, 0) and 2 <= length <= 4
    assert factor == pytest.approx(60 / 120, abs=0.1)
    after = before.copy()
    after[70:80, 80:100] = BUILDING
    base = rgb.copy()
    dark = cast_shadows(base, before, after, (direction, length, factor))
    assert dark[80:82, 80:100].all() and not dark[68:80].any()
    assert (base[:, dark] < rgb[:, dark]).all()
    assert dark.sum() <= 20 * (length + 1)
    assert not (after[dark] == BUILDING).any()


def test_no_buildings_no_shadows():
    rgb, before = _two_class_scene()
    assert shadow_of_buildings(rgb, np.ones(before.shape, bool), before == BUILDING) is None


def test_an_image_without_buildings_takes_roofs_and_shadows_from_the_bank():
    rgb, before = _two_class_scene()
    after = before.copy()
    after[40:52, 10:40] = BUILDING
    town, town_classes = _town()
    paved = np.where(town_classes == BUILDING, BUILDING, 2)  # no class in common...
    bank = ExemplarBank(town[None], paved[None].astype(np.uint8))
    valid = np.ones(before.shape, bool)
    base, filled = exemplar_fill(rgb, valid, before, after, np.random.default_rng(0), bank)
    house = before != after
    assert filled[house].all()
    roof = base[:, house].astype(float)
    exposure = 0.6  # ...so only the exposure is matched: the grey town is brighter (clipped)
    assert (roof == round(255 * exposure)).all(axis=0).sum() >= 30  # a whole roof, ridge and all
    assert ((roof[0] == 200 * exposure) | (roof[2] == 200 * exposure)).mean() > 0.5
    # the bank crop's sun: a shadow south of the house, on the grass
    assert (base[1, 52:54, 10:40] < rgb[1, 52:54, 10:40]).all()  # green: the grass's band
    assert (base[:, 36:40, 10:40] == rgb[:, 36:40, 10:40]).all()


@pytest.fixture(scope="module")
def palu(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 384 px crop of the real OpenEarthMap tile palu_8 (houses, trees, shore) and its image."""
    window = Window(0, 256, 384, 384)
    return crop_openearthmap(shared_data, "palu_8", window, tmp_path_factory.mktemp("palu"))


def _synth(palu: tuple[Path, Path], out: Path, *options: str) -> dict[str, np.ndarray]:
    label, image = palu
    args = ["synth", str(label), "--image", str(image), "--seed", "3", "-o", str(out), "-q"]
    events = "building_add:count=6,deforestation:fraction=0.4,flood:fraction=0.3"
    result = CliRunner().invoke(cli, [*args, "--events", events, "--device", "cpu", *options])
    assert result.exit_code == 0, result.output
    read = {}
    for name in ("t1", "t2", "change", "t1_landcover", "t2_landcover"):
        with rasterio.open(out / f"{name}.tif") as src:
            read[name] = src.read() if name in ("t1", "t2") else src.read(1)
    read["run"] = json.loads((out / "run.json").read_text())
    return read


def test_real_tile_keeps_the_place_and_changed_land_is_as_sharp(palu, tmp_path: Path):
    """The default model on a real tile: unchanged land is t1 plus the model's variation (not
    a copy, not mush), changed land as sharp as the land around it, no halo at its border."""
    run = _synth(palu, tmp_path / "pixel")
    t1, t2, change = run["t1"], run["t2"], run["change"]
    unchanged, changed = change == 0, change == 1
    assert changed.sum() > 2000 and run["run"]["sampling"]["composition"] == "pixel"
    correlation = masked_correlation(t1, t2, unchanged)
    assert 0.6 <= correlation < 0.99
    assert np.abs(t2[:, unchanged].astype(int) - t1[:, unchanged]).mean() > 1.0  # not a copy
    assert sharpness_ratio(t1, t2, unchanged) >= 0.85
    # as sharp as unchanged land of the same class (the flood's water as smooth as the sea)
    assert 0.7 <= same_class_sharpness_ratio(t2, run["t2_landcover"], changed) <= 1.3
    # No halo: just outside the change t2 differs from t1 no more than farther out does.
    distance = ndimage.distance_transform_edt(~changed)
    ring, far = (distance > 0) & (distance <= 4), distance > 16
    gap = np.abs(t2.astype(int) - t1).mean(axis=0)
    assert gap[ring].mean() < 2.0 * gap[far].mean()
    # New buildings are built of roof pixels, not the model's blur.
    new = changed & (run["t2_landcover"] == BUILDING + 1)
    assert new.sum() > 100
    old = run["t1_landcover"] == BUILDING + 1
    assert sharpness(t2, new) > 0.5 * sharpness(t1, old)


def test_latent_composition_is_the_papers_mush(palu, tmp_path: Path):
    """The ablation switch: every t2 pixel decoded from latents loses t1's detail."""
    run = _synth(
        palu,
        tmp_path / "latent",
        "--composition",
        "latent",
        "--no-exemplars",
        "--acquisition",
        "none",
    )
    unchanged = run["change"] == 0
    assert sharpness_ratio(run["t1"], run["t2"], unchanged) < 0.5
    assert run["run"]["sampling"]["exemplars"] is False


def test_exemplar_fill_ignores_no_data():
    rgb, before = _two_class_scene()
    after = before.copy()
    after[:, :10] = NODATA
    _, filled = exemplar_fill(
        rgb, np.ones(before.shape, bool), before, after, np.random.default_rng(0)
    )
    assert not filled.any()


def test_acquisition_changes_t2_and_nothing_else(palu, tmp_path: Path):
    """--acquisition: t2 looks like another day (lower unchanged-land correlation), while t1,
    the land cover and the change labels stay byte for byte; it is recorded in run.json."""
    plain = _synth(palu, tmp_path / "none", "--acquisition", "none", "--steps", "4")
    other = _synth(palu, tmp_path / "real", "--acquisition", "realistic", "--steps", "4")
    for name in ("t1", "change", "t1_landcover", "t2_landcover"):
        np.testing.assert_array_equal(plain[name], other[name])
    unchanged = plain["change"] == 0
    before = masked_correlation(plain["t1"], plain["t2"], unchanged)
    after = masked_correlation(other["t1"], other["t2"], unchanged)
    assert after < before - 0.1 and 0.3 < after < 0.9
    recorded = other["run"]["sampling"]["acquisition"]
    assert recorded["misregistration"] == 1.5 and recorded["season"] == "summer"
    assert plain["run"]["sampling"]["acquisition"]["radiometry"] == 0.0


class _Crops:
    """A CropSource of given images (uint8) and masks."""

    crop = 32

    def __init__(self, images: list[np.ndarray], masks: list[np.ndarray]) -> None:
        self.images, self.masks = images, masks

    def __len__(self) -> int:
        return len(self.images)

    def unaugmented(self, index: int):
        import torch

        image = torch.from_numpy(self.images[index].astype(np.float32) / 127.5 - 1.0)
        return image, torch.from_numpy(self.masks[index].astype(np.int64))


def test_the_bank_keeps_unlike_crops_of_each_class_and_no_mirrored_ones():
    from geochange.training.bank import build_bank

    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 30, (3, 32, 32)) for _ in range(4)]
    images = [noise[0] + 100, noise[1] + 104, noise[2] + 200]  # two alike, one unlike
    mirrored = noise[3] + 150
    mirrored[:, 16:] = mirrored[:, 15::-1]  # a small file mirrored out to the crop size
    images = [i.astype(np.uint8) for i in [*images, mirrored]]
    masks = [np.full((32, 32), GRASS, np.uint8)] * 4
    bank = build_bank(_Crops(images, masks), per_class=2)
    kept = {int(image.mean()) for image in bank.images}
    assert kept == {int(images[0].mean()), int(images[2].mean())}


def _roofs_and_a_block() -> tuple[np.ndarray, np.ndarray]:
    """A 64² image of grass with one calm roof (rows 4-23) and, labelled as one building, a
    block of small houses and yards (rows 32-59, a checker of 6-px squares)."""
    rng = np.random.default_rng(0)
    image = (rng.integers(0, 12, (3, 64, 64)) + 90).astype(np.uint8)
    image[:, 4:24, 4:24] = 200
    checker = (np.indices((28, 28)) // 6).sum(axis=0) % 2
    image[:, 32:60, 32:60] = np.where(checker, 220, 60).astype(np.uint8)
    classes = np.full((64, 64), GRASS, np.uint8)
    classes[4:24, 4:24] = BUILDING
    classes[32:60, 32:60] = BUILDING
    return image, classes


def test_a_building_labelled_as_a_whole_block_is_no_roof():
    """A new house takes one labelled building whole; Dubai labels whole blocks of houses as
    one building, and such a block stretched onto a footprint is a mosaic, not a roof."""
    from geochange.model.bank import roof_mask

    image, classes = _roofs_and_a_block()
    roofs = roof_mask(image, classes == BUILDING)
    assert roofs[4:24, 4:24].all()
    assert not roofs[32:60, 32:60].any()
    assert not roofs[classes != BUILDING].any()


def test_the_bank_takes_its_roofs_from_crops_of_houses_not_of_blocks():
    from geochange.training.bank import build_bank

    houses, classes = _roofs_and_a_block()
    block = houses.copy()
    block_classes = np.full((64, 64), BUILDING, np.uint8)  # a block labelled whole
    block[:, :, :] = np.where((np.indices((64, 64)) // 6).sum(axis=0) % 2, 220, 60)
    bank = build_bank(_Crops([block, houses], [block_classes, classes]), per_class=2)
    roofs = [k for k in bank.crops_of(BUILDING) if (bank.images[k] == 200).any()]
    assert len(bank.crops_of(BUILDING)) == 1 and len(roofs) == 1
    assert not (bank.classes == BUILDING)[:, 32:60, 32:60].any()  # unlabelled, not a roof


def test_new_buildings_take_the_roofs_of_any_bank_crop_not_only_the_fullest():
    """One warehouse crop is the fullest of buildings in a bank of roofs; the houses of the
    other crops must still be on offer, or every new house is a piece of that warehouse."""
    from geochange.sampling.exemplars import _bank_roofs

    houses, classes = _roofs_and_a_block()
    classes[classes == BUILDING] = GRASS
    classes[4:24, 4:24] = BUILDING  # one house
    warehouse = np.full((3, 64, 64), 230, np.uint8)
    warehouse_classes = np.full((64, 64), BUILDING, np.uint8)
    warehouse_classes[:, 56:] = GRASS
    bank = ExemplarBank(np.stack([warehouse, houses]), np.stack([warehouse_classes, classes]))
    assert list(bank.crops_of(BUILDING)) == [0]
    found, _ = _bank_roofs(bank, 1.0)
    assert [(k, len(roofs)) for k, roofs in found] == [(0, 1), (1, 1)]


def test_land_of_unknown_class_keeps_its_pixels(palu):
    """Where the land cover is unknown (no data) but the image is not, t2 keeps t1 there like
    any unchanged land, instead of the model's blur."""
    from geochange.acquisition import PRESETS
    from geochange.painting import SamplingOptions, open_painter
    from geochange.plan import Block

    label, image = palu
    with rasterio.open(label) as src:
        codes = src.read(1, window=Window(0, 0, 256, 256)).astype(np.int64)
    with rasterio.open(image) as src:
        rgb = src.read(window=Window(0, 0, 256, 256))
    before = np.where(codes > 0, codes - 1, NODATA)
    before[40:140, 40:140] = NODATA  # a square nobody labelled
    after = before.copy()
    after[180:200, 180:220] = BUILDING
    options = SamplingOptions(steps=4, threads=1, acquisition=PRESETS["none"])
    painter = open_painter("default", options, 0, "cpu")
    whole = Window(0, 0, 256, 256)
    images, _ = painter.paint_block(
        Block(0, 0, whole, whole),
        [before, after],
        {},
        np.zeros((256, 256), bool),
        (rgb, np.ones((256, 256), bool)),
    )
    unknown = np.zeros((256, 256), bool)
    unknown[44:136, 44:136] = True
    assert masked_correlation(rgb, images[1], unknown) > 0.9
    assert sharpness_ratio(rgb, images[1], unknown) > 0.85


def test_without_an_image_t1_is_built_of_real_crops_and_new_buildings_show(tmp_path: Path):
    """No real image: t1 starts as the bank's real textures and roofs laid on the land cover
    and harmonized by the model (sharp, unlike plain generation's blur); a new building then
    stands out in t2 (twice the difference that the acquisition makes elsewhere)."""
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["example", "-o", str(tmp_path / "ex"), "--size", "384"]).exit_code == 0
    )
    region = str(tmp_path / "ex" / "region.tif")
    runs = {}
    for name, extra in (("bank", []), ("plain", ["--no-exemplars"])):
        out = tmp_path / name
        args = ["synth", region, "--events", "building_add:count=4", "--seed", "2", "-o", str(out)]
        result = runner.invoke(cli, [*args, "-q", "--device", "cpu", "--steps", "8", *extra])
        assert result.exit_code == 0, result.output
        runs[name] = [_read(out / f"{part}.tif") for part in ("t1", "t2", "change")]
    t1, t2, change = runs["bank"]
    change = change[0]
    everywhere = np.ones(change.shape, bool)
    assert sharpness(t1, everywhere) > 3 * sharpness(runs["plain"][0], everywhere)
    new = change == 1
    assert new.sum() > 200
    moved = np.abs(t2.astype(float) - t1).mean(axis=0)
    assert moved[new].mean() > 2 * moved[~new].mean()  # unchanged land differs by acquisition


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


@pytest.mark.parametrize("exemplars", [True, False])
def test_an_image_is_encoded_once_and_only_where_its_latent_is_used(exemplars: bool):
    """A real t1 whose changed land the exemplars fill is encoded once, with them; encoding it
    before as well was a tenth of a dataset pair's time, for a latent nobody read."""
    import torch

    from geochange.model import SemanticLDM, preset
    from geochange.painting import Painter, SamplingOptions
    from geochange.plan import Block

    torch.manual_seed(0)
    options = SamplingOptions(
        steps=2, sampler="ddim", tile_size=64, overlap=0, batch_size=1, exemplars=exemplars
    )
    painter = Painter(SemanticLDM(preset("tiny")), options, 0, torch.device("cpu"))
    encoded = []
    encode = painter.model.encode
    painter.model.encode = lambda images, *rest: encoded.append(images) or encode(images, *rest)
    t1 = np.full((64, 64), 4, np.uint8)  # tree
    t1[:, :24] = 0  # bare land, for exemplars of the clearing
    t2 = t1.copy()
    t2[20:44, 34:58] = 0  # a clearing
    rgb = np.random.default_rng(0).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    images, _ = painter.paint_block(
        Block.alone(0, 64, 64), [t1, t2], t1_image=(rgb, np.ones((64, 64), bool))
    )
    assert len(encoded) == 1
    first = ((encoded[0][0] + 1) * 127.5).round().numpy().astype(np.uint8)
    # with exemplars, the base encoded is the image with the clearing filled, not the image
    assert (first[:, 20:44, 34:58] != rgb[:, 20:44, 34:58]).any() == exemplars
    np.testing.assert_array_equal(first[:, :, :24], rgb[:, :, :24])
    assert images[1].shape == (3, 64, 64)
