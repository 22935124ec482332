"""Packs of training crops and training from them without GIS packages (issue 13, item 4), and
the LoveDA, FLAIR and Potsdam layouts and class schemes, on the real files in ../shared/data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from geochange.classes import (
    AGRICULTURE,
    BARELAND,
    BUILDING,
    DEVELOPED,
    NODATA,
    RANGELAND,
    ROAD,
    TREE,
    WATER,
    load_scheme,
)
from geochange.cli.train import train
from geochange.errors import InputError
from geochange.grid import open_raster
from geochange.hashing import file_sha256
from geochange.training.crops import augment, dihedral
from geochange.training.data import (
    HELDOUT_SIZE,
    TileDataset,
    area_resample,
    find_pairs,
    mode_resample,
)
from geochange.training.pack import allocate
from geochange.training.packed import PackedData, decode_images, encode_images

REPO = Path(__file__).resolve().parents[1]
GIS = ("rasterio", "pyproj", "pyogrio", "geopandas", "shapely", "fiona")
# FLAIR's class names (as in meta/MSK_N_seg.json) and the class the flair scheme gives them.
FLAIR_NAMES = {
    "building": BUILDING,
    "pervious surface": DEVELOPED,
    "impervious surface": ROAD,
    "bare soil": BARELAND,
    "water": WATER,
    "coniferous": TREE,
    "deciduous": TREE,
    "brushwood": TREE,
    "vineyard": AGRICULTURE,
    "herbaceous vegetation": RANGELAND,
    "agricultural land": AGRICULTURE,
    "plowed land": AGRICULTURE,
    "swimming pool": WATER,
    "other": NODATA,
}

pytestmark = pytest.mark.usefixtures("one_thread")


def _read(path: Path) -> np.ndarray:
    with open_raster(path) as ds:
        return ds.read()


def _uint8(image: torch.Tensor) -> np.ndarray:
    return ((image.numpy() + 1.0) * 127.5).round().astype(np.uint8)


# -- layouts and class schemes on the real files ---------------------------------------------


@pytest.mark.parametrize(
    ("folder", "layout", "files"),
    [("loveda", "loveda", 3), ("flair", "flair", 5), ("potsdam", "potsdam", 1)],
)
def test_new_layouts_are_found(shared_data: Path, folder: str, layout: str, files: int):
    found, pairs = find_pairs(shared_data / folder)
    assert found == layout and len(pairs) == files
    for image, mask in pairs:  # FLAIR pairs IMG_N with MSK_N
        assert image.stem.split("_")[-1] == mask.stem.split("_")[-1]


def test_png_labels_in_an_unnamed_folder_are_refused(shared_data: Path, tmp_path: Path):
    for sub in ("images", "labels"):
        (tmp_path / "tiles" / sub).mkdir(parents=True)
        (tmp_path / "tiles" / sub / "a.png").symlink_to(
            shared_data / "loveda" / sub / "loveda_0.png"
        )
    with pytest.raises(InputError, match="'loveda' or 'potsdam'"):
        find_pairs(tmp_path / "tiles")


def test_loveda_scheme_maps_each_code(shared_data: Path):
    scheme = load_scheme("loveda")
    for label in sorted((shared_data / "loveda" / "labels").glob("*.png")):
        raw = _read(label)[0]
        classes, unknown = scheme.classify(raw)
        assert not unknown
        expected = {1: NODATA, 2: BUILDING, 3: ROAD, 4: WATER, 5: BARELAND, 6: TREE, 7: AGRICULTURE}
        for code, cls in expected.items():
            assert (classes[raw == code] == cls).all()
        assert (classes == NODATA).sum() == np.isin(raw, [0, 1]).sum()


def test_flair_scheme_agrees_with_the_patches_own_class_shares(shared_data: Path):
    """Every colour maps as FLAIR's own record of each patch's classes says (the shares in
    meta/MSK_N_seg.json, computed by FLAIR, not by us)."""
    scheme = load_scheme("flair")
    for mask in sorted((shared_data / "flair" / "masks").glob("MSK_*.png")):
        classes, unknown = scheme.classify(_read(mask))
        assert not unknown, mask.name
        shares = json.loads((mask.parent.parent / "meta" / f"{mask.stem}_seg.json").read_text())
        expected: dict[int, float] = {}
        for name, share in shares["class_repartition"].items():
            expected[FLAIR_NAMES[name]] = expected.get(FLAIR_NAMES[name], 0.0) + share
        for cls, share in expected.items():
            assert (classes == cls).mean() == pytest.approx(share, abs=1e-6), (mask.name, cls)


def test_potsdam_scheme_on_pixels_looked_at(shared_data: Path):
    """Codes checked against the image: 0 outlines every object, then impervious surface,
    building, low vegetation, tree, car."""
    raw = _read(shared_data / "potsdam" / "labels" / "2_10_0_0_512_512.png")[0]
    classes = load_scheme("potsdam").map(raw)
    seen = {  # (row, col): class, read off the image
        (35, 433): ROAD,  # a red car in the street
        (235, 267): ROAD,  # the cobbled street
        (300, 80): BUILDING,  # a red-tiled roof
        (48, 133): RANGELAND,  # a lawn
        (20, 20): TREE,  # a tree crown
    }
    for (row, col), cls in seen.items():
        assert classes[row, col] == cls
    assert (classes[raw == 0] == NODATA).all() and 0.05 < (raw == 0).mean() < 0.15


# -- resampling to the model's pixel size -----------------------------------------------------


def test_area_resample_keeps_block_means_and_the_overall_mean():
    data = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    assert np.allclose(area_resample(data, (2, 2))[0], [[2.5, 4.5], [10.5, 12.5]])
    rng = np.random.default_rng(0)
    odd = rng.random((3, 10, 7)).astype(np.float32)
    out = area_resample(odd, (6, 3))  # non-integer factors
    assert out.shape == (3, 6, 3)
    assert np.allclose(out.mean(axis=(1, 2)), odd.mean(axis=(1, 2)), atol=1e-6)
    # The first output pixel of 10 -> 6 rows covers rows 0 and 2/3 of row 1.
    assert np.isclose(
        area_resample(odd[:, :, :1], (6, 1))[0, 0, 0],
        (odd[0, 0, 0] + odd[0, 1, 0] * 2 / 3) / (5 / 3),
    )


def test_mode_resample_takes_the_class_covering_most():
    classes = np.array([[1, 1, 2], [1, 2, 2], [NODATA, NODATA, NODATA]], np.uint8)
    assert (
        mode_resample(np.kron(classes, np.ones((2, 2), np.uint8)), (3, 3)).tolist()
        == classes.tolist()
    )
    blocks = np.array(
        [[3, 3, 3, 5], [3, 5, 5, 5], [7, 7, NODATA, NODATA], [7, 0, NODATA, NODATA]], np.uint8
    )
    assert mode_resample(blocks, (2, 2)).tolist() == [[3, 5], [7, NODATA]]


@pytest.mark.parametrize(("folder", "size"), [("loveda", 614), ("flair", 205), ("potsdam", 51)])
def test_sources_are_read_at_half_a_metre(shared_data: Path, folder: str, size: int):
    dataset = TileDataset(shared_data / folder, crop=256, seed=0, augment=False)
    pair = dataset.pairs[0]
    assert (pair.height, pair.width) == (size, size)
    image, classes = dataset._read_whole(pair)
    native = dataset._read_mask(pair.mask)
    # The resampled mask keeps each class's share (mode of area fractions); the image its mean.
    for cls in np.unique(native):
        share = (classes[:size, :size] == cls).mean()
        assert share == pytest.approx((native == cls).mean(), abs=0.03 if size > 100 else 0.1)
    assert image[:, :size, :size].mean() == pytest.approx(
        dataset._read_image(pair.image).mean(), abs=2e-3
    )
    crop, mask = dataset.unaugmented(0)
    assert crop.shape == (3, 256, 256) and mask.shape == (256, 256)
    info = dataset.split_info()
    assert info["source_gsd_m"] < 0.5 and info["resampled_to_gsd_m"] == 0.5
    # Files smaller than a crop are mirrored out, image and mask alike.
    assert (info["mirrored_files"] != []) == (size < 256)
    if size < 256:
        n = min(size, 256 - size)
        assert torch.equal(mask[size : size + n], mask[:size].flip(0)[:n])


# -- packs -----------------------------------------------------------------------------------


def test_allocation_is_equal_up_to_each_capacity():
    assert allocate(300, [62, 5000, 5, 22, 4, 1]) == [62, 206, 5, 22, 4, 1]
    assert allocate(10, [100, 100]) == [5, 5]
    assert allocate(50, [3, 4]) == [3, 4]  # small sources: fewer crops than asked


def test_image_filter_is_lossless():
    images = np.random.default_rng(1).integers(0, 256, (3, 3, 17, 9), dtype=np.uint8)
    coded = encode_images(images)
    assert coded.dtype == np.uint8 and not np.array_equal(coded, images)
    assert np.array_equal(decode_images(coded), images)


def _find(crop: np.ndarray, image: np.ndarray) -> list[tuple[int, int]]:
    """Every (row, col) where the uint8 crop (3, c, c) occurs exactly in the image (3, h, w)."""
    c = crop.shape[-1]
    h, w = image.shape[1] - c + 1, image.shape[2] - c + 1
    if h < 1 or w < 1:
        return []
    first = (image[:, :h, :w] == crop[:, :1, :1]).all(0)
    last = (image[:, c - 1 :, c - 1 :] == crop[:, -1:, -1:]).all(0)
    return [
        (int(r), int(q))
        for r, q in np.argwhere(first & last)
        if np.array_equal(image[:, r : r + c, q : q + c], crop)
    ]


@pytest.fixture(scope="module")
def small_pack(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OpenEarthMap, LoveDA, FLAIR and Potsdam crops of 64 px, packed by the CLI."""
    out = tmp_path_factory.mktemp("pack") / "small.npz"
    folders = [str(shared_data / f) for f in ("openearthmap", "loveda", "flair", "potsdam")]
    result = CliRunner().invoke(
        train, ["pack", *folders, "--crop", "64", "--crops", "40", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "40 crops of 64 px" in result.output and "MB" in result.output
    return out


def test_pack_holds_the_crops_training_reads(shared_data: Path, small_pack: Path):
    with np.load(small_pack) as npz:
        assert set(npz.files) == {"images", "masks", "source", "metadata"}
        images, masks, source = npz["images"], npz["masks"], npz["source"]
        metadata = json.loads(str(npz["metadata"]))
    assert images.shape == (40, 3, 64, 64) and images.dtype == np.uint8
    assert masks.shape == (40, 64, 64) and masks.dtype == np.uint8
    assert set(np.unique(masks)) <= {*range(8), NODATA}
    assert metadata["crop_px"] == 64 and metadata["gsd_m"] == 0.5
    names = [Path(s["root"]).name for s in metadata["sources"]]
    assert names == ["openearthmap", "loveda", "flair", "potsdam"]
    counts = np.bincount(source, minlength=4).tolist()
    assert counts == [s["crops"] for s in metadata["sources"]] and min(counts) >= 1
    assert [s["layout"] for s in metadata["sources"]] == names
    assert [s["classes"] for s in metadata["sources"]] == ["oem", "loveda", "flair", "potsdam"]
    loveda = metadata["sources"][1]
    assert loveda["heldout_files"] == ["images/loveda_2.png"]
    assert loveda["sha256"]["labels/loveda_0.png"] == file_sha256(
        shared_data / "loveda/labels/loveda_0.png"
    )
    assert "loveda_2.png" not in " ".join(loveda["sha256"])
    # Each packed crop is the crop training from the folder reads (the filter undone): exactly
    # for 8-bit files read as they are, within half a grey level where resampled to 0.5 m.
    packed = PackedData(small_pack, augment=False)
    for number, root in enumerate(names):
        dataset = TileDataset(shared_data / root, crop=64, seed=0, augment=False)
        for local, index in enumerate(np.flatnonzero(source == number)):
            image, mask = packed.unaugmented(int(index))
            direct_image, direct_mask = dataset.unaugmented(local)
            assert torch.equal(mask, direct_mask)
            if root == "openearthmap":
                assert torch.equal(image, direct_image)
            assert (image - direct_image).abs().max() <= 1 / 255 + 1e-6


def test_held_out_pixels_are_not_in_the_pack(shared_data: Path, small_pack: Path):
    """Found by their pixels: every packed OpenEarthMap crop lies in its tile off the held-out
    square, and no packed LoveDA or FLAIR crop occurs in the held-out file of its source."""
    packed = PackedData(small_pack, augment=False)
    images = packed.images.numpy()
    tiles = {p.stem: _read(p) for p in (shared_data / "openearthmap" / "images").glob("*.tif")}
    for crop in images[packed.source == 0]:
        places = [(name, r, c) for name, tile in tiles.items() for r, c in _find(crop, tile)]
        assert places, "a packed crop is not in any tile"
        for name, row, col in places:
            h, w = tiles[name].shape[1:]
            assert row + 64 <= h - HELDOUT_SIZE or col + 64 <= w - HELDOUT_SIZE
    for number, folder in ((1, "loveda"), (2, "flair")):
        train_set = TileDataset(shared_data / folder, crop=64, augment=False)
        heldout = TileDataset(shared_data / folder, crop=64, split="heldout", augment=False)
        held = [_uint8(torch.from_numpy(heldout._read_whole(p)[0])) for p in heldout.pairs]
        seen = [_uint8(torch.from_numpy(train_set._read_whole(p)[0])) for p in train_set.pairs]
        for crop in images[packed.source == number]:
            assert not any(_find(crop, image) for image in held)
            assert any(_find(crop, image) for image in seen)


def test_packed_data_augments_like_folders(small_pack: Path):
    packed = PackedData(small_pack, seed=3)
    assert len(packed) == 40 and packed.crop == 64
    image, mask = packed.unaugmented(7)
    assert image.dtype == torch.float32 and image.min() >= -1.0 and image.max() <= 1.0
    k, flip = dihedral(3, 7, 5)
    assert packed.augmentation(7, 5) == (k, flip)
    augmented = packed.item(7, 5)
    assert torch.equal(augmented[0], augment(image, k, flip))
    assert torch.equal(augmented[1], augment(mask, k, flip))
    windows = PackedData(small_pack, crop=32, seed=3)
    assert len(windows) == 40 * 4 and windows.unaugmented(41)[0].shape == (3, 32, 32)
    info = packed.split_info()
    assert [f["layout"] for f in info["folders"]] == ["openearthmap", "loveda", "flair", "potsdam"]
    assert info["pack_sha256"] == file_sha256(small_pack) and "sha256" not in info["folders"][0]


def test_bad_packs_and_pack_options_are_refused(
    shared_data: Path, small_pack: Path, tmp_path: Path
):
    runner = CliRunner()
    oem = str(shared_data / "openearthmap")

    def refused(args: list[str], match: str) -> None:
        result = runner.invoke(train, args)
        assert isinstance(result.exception, InputError), result.output
        assert match in result.exception.in_cli_terms()

    refused(["pack", oem, "-o", str(small_pack)], "--overwrite")
    refused(["pack", oem, "-o", str(tmp_path / "p.zip")], "must end in .npz")
    refused(["pack", oem, "-o", str(tmp_path / "no" / "p.npz")], "does not exist")
    refused(
        ["pack", oem, str(shared_data / "dubai"), "--crops", "1", "-o", str(tmp_path / "p.npz")],
        "at least one crop",
    )
    refused(["pack", str(tmp_path), "-o", str(tmp_path / "p.npz")], "found no image + mask pairs")
    assert not list(tmp_path.glob("*.npz")) and not list(tmp_path.glob(".*partial*"))
    np.savez_compressed(tmp_path / "other.npz", images=np.zeros(3))
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    common = ["--preset", "tiny", "--steps", "1", "--device", "cpu", "-q"]
    for bad, match in (
        (tmp_path / "other.npz", "not a geochange pack"),
        (tmp_path / "broken.npz", "cannot read pack"),
    ):
        refused(["diffusion", str(bad), *common, "-o", str(tmp_path / "m")], match)
    refused(
        ["diffusion", str(small_pack), "--crop", "128", *common, "-o", str(tmp_path / "m")],
        "larger than the crops",
    )
    refused(
        ["diffusion", str(small_pack), oem, *common, "-o", str(tmp_path / "m")],
        "one pack or folders",
    )
    refused(
        ["diffusion", str(small_pack), "--classes", "oem", *common, "-o", str(tmp_path / "m")],
        "--classes",
    )
    with zipfile.ZipFile(small_pack) as z:
        assert {"images.npy", "masks.npy", "source.npy", "metadata.npy"} == set(z.namelist())


# -- training without GIS packages -------------------------------------------------------------

BLOCKER = """
import runpy, sys
BLOCKED = {blocked!r}

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked: no GIS package on this machine")

sys.meta_path.insert(0, Block())
sys.argv = ["python -m geochange.training", *sys.argv[1:]]
try:
    runpy.run_module("geochange.training", run_name="__main__")
finally:
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not loaded, loaded
"""


def test_training_from_a_pack_imports_no_gis_package(small_pack: Path, tmp_path: Path):
    """The GPU machine's entry point, with every GIS package made unimportable: a tiny
    autoencoder, then a tiny diffusion model on it, from the pack."""
    script = tmp_path / "blocked.py"
    script.write_text(BLOCKER.format(blocked=GIS))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    common = ["--crop", "32", "--batch-size", "2", "--checkpoint-every", "2", "--steps", "2"]
    common += ["--device", "cpu", "-q"]
    runs = [
        ["autoencoder", str(small_pack), "--preset", "tiny", *common, "-o", str(tmp_path / "ae")],
        ["diffusion", str(small_pack), "--model", str(tmp_path / "ae"), "--cache-latents"]
        + [*common, "-o", str(tmp_path / "ldm")],
    ]
    for args in runs:
        done = subprocess.run(
            [sys.executable, str(script), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
    probe = subprocess.run(
        [
            sys.executable,
            str(script),
            "pack",
            str(small_pack.parent),
            "-o",
            str(tmp_path / "p.npz"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode != 0 and "blocked" in probe.stderr  # the blocker works
    model = json.loads((tmp_path / "ldm" / "geochange.json").read_text())
    stage = model["training_summary"]["diffusion"][-1]
    assert stage["steps"] == 2 and stage["data"]["pack"] == str(small_pack)
    assert (tmp_path / "ldm" / "checkpoint-2" / "preview.png").is_file()


def test_pack_and_wheel_folders_are_git_ignored():
    for path in (".whl/diffusers.whl", "build/pack.npz"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0, path
