"""The FC-Siam-diff change detector, its metrics and pair readers, and the naive paste baseline."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geochange.errors import InputError
from geochange.evaluation.detector import (
    ChangePairs,
    FCSiamDiff,
    change_confusion,
    change_scores,
    detect_layout,
    evaluate,
    read_pairs,
    summarize,
    train_detector,
)
from geochange.evaluation.naive import (
    Donor,
    PasteCounts,
    naive_pairs,
    paste_changes,
    read_geochange,
    write_levir,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_model_shape_and_size():
    model = FCSiamDiff().eval()
    # 1.35 M parameters at width 16, as Daudt et al. report for FC-Siam-diff
    assert sum(p.numel() for p in model.parameters()) == 1_350_146
    before, after = torch.zeros(2, 3, 32, 48), torch.ones(2, 3, 32, 48)
    with torch.no_grad():
        logits = model(before, after)
    assert logits.shape == (2, 2, 32, 48)
    assert logits.dtype == torch.float32


def _squares(seed: int, count: int = 8, size: int = 64) -> ChangePairs:
    """Noise texture pairs where t2 gains bright squares: changed exactly on the squares."""
    rng = np.random.default_rng(seed)
    pairs = ChangePairs([], [], [], [])
    for i in range(count):
        before = rng.integers(0, 120, (size, size, 3)).astype(np.uint8)
        change = np.zeros((size, size), bool)
        for _ in range(3):
            row, col = rng.integers(0, size - 12, 2)
            change[row : row + 12, col : col + 12] = True
        after = before.copy()
        after[change] = 230
        pairs.names.append(str(i))
        pairs.before.append(before)
        pairs.after.append(after)
        pairs.change.append(change)
    return pairs


def test_learns_a_separable_change_task():
    model = train_detector(_squares(0), steps=40, batch_size=4, crop=32, width=8, seed=0)
    confusions = evaluate(model, _squares(1, count=4))
    assert set(confusions) == {"0", "1", "2", "3"}
    assert all(c.sum() == 64 * 64 for c in confusions.values())
    scores = summarize(confusions)
    assert scores["f1"] > 0.8
    assert scores["iou"] == pytest.approx(scores["f1"] / (2 - scores["f1"]))
    low, high = scores["f1_interval"]
    assert low <= min(scores["per_pair_f1"].values()) + 0.05 and low <= scores["f1"] <= high
    # the same seed gives the same detector
    again = train_detector(_squares(0), steps=3, batch_size=2, crop=32, width=4, seed=5)
    other = train_detector(_squares(0), steps=3, batch_size=2, crop=32, width=4, seed=5)
    for a, b in zip(again.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_change_metrics_by_hand():
    truth = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]], bool)
    predicted = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0]], bool)
    confusion = change_confusion(truth, predicted)
    # tp 2, fp 1, fn 2, tn 4
    assert confusion.tolist() == [[4, 1], [2, 2]]
    scores = change_scores(confusion)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))
    assert scores["iou"] == pytest.approx(2 / 5)
    nothing = change_scores(change_confusion(truth, np.zeros_like(truth)))
    assert np.isnan(nothing["precision"]) and nothing["recall"] == 0 and nothing["f1"] == 0

    # pooled over pairs: the sum of their confusion matrices; resampling two equal pairs
    # always gives the same F1
    pooled = summarize({"a": confusion, "b": confusion})
    assert pooled["confusion"] == [[8, 2], [4, 4]]
    assert pooled["f1"] == pytest.approx(4 / 7)
    assert pooled["f1_interval"] == pytest.approx([4 / 7, 4 / 7])
    assert pooled["per_pair_f1"] == {"a": pytest.approx(4 / 7), "b": pytest.approx(4 / 7)}


def _coded_image(classes: np.ndarray, donor: int) -> np.ndarray:
    """An image whose pixels tell where they came from: red = donor, green/blue = row/col."""
    rows, cols = np.indices(classes.shape)
    return np.stack([np.full_like(rows, 10 * donor + 5), rows, cols], -1).astype(np.uint8)


def test_naive_paste_changes_only_the_label_and_copies_the_new_class():
    rng = np.random.default_rng(0)
    before = rng.integers(0, 3, (40, 50)).astype(np.uint8)
    before[5:20, 5:25] = 1  # a big field of class 1 to cut patches from
    after = before.copy()
    after[22:30, 30:45] = 1  # a region turning into class 1
    after[0:3, 0:3] = 2
    after[35:40, 0:10] = np.where(before[35:40, 0:10] == 0, 1, before[35:40, 0:10])
    donor_classes = np.full((40, 50), 2, np.uint8)
    donor_classes[::3, ::3] = 1  # scattered class 1 only: no big patch fits
    donors = [
        Donor(_coded_image(before, 0), before),
        Donor(_coded_image(donor_classes, 1), donor_classes),
    ]
    counts = PasteCounts()
    image = donors[0].image
    result = paste_changes(image, before, after, donors, np.random.default_rng(1), counts)

    changed = before != after
    assert ((result != image).any(-1) == changed).all()
    assert counts.patch_pixels + counts.single_pixels == changed.sum()
    assert counts.patch_pixels > 0
    for row, col in np.argwhere(changed):
        red, source_row, source_col = result[row, col]
        donor = donors[(int(red) - 5) // 10]
        assert donor.classes[source_row, source_col] == after[row, col]


def test_naive_paste_substitutes_a_class_no_donor_shows():
    before = np.zeros((20, 20), np.uint8)  # 0: no data
    before[:, 10:] = 1
    before[:5, :10] = 2
    after = before.copy()
    after[12:16, 12:16] = 3  # class 3 appears nowhere: texture of class 2 (not 1, the old class)
    donors = [Donor(_coded_image(before, 0), before)]
    counts = PasteCounts()
    result = paste_changes(
        donors[0].image, before, after, donors, np.random.default_rng(0), counts, 0
    )
    assert counts.substituted_pixels == 16 and counts.patch_pixels == 16
    rows, cols = result[12:16, 12:16, 1], result[12:16, 12:16, 2]
    assert (before[rows, cols] == 2).all()
    with pytest.raises(InputError, match="no class other than the old one"):
        ones = np.ones((8, 8), np.uint8)
        paste_changes(
            _coded_image(ones, 0),
            ones,
            ones * 3,
            [Donor(_coded_image(ones, 0), ones)],
            np.random.default_rng(0),
            ignore=0,
        )


def test_naive_dataset_keeps_names_t1_and_labels(tmp_path: Path):
    classes = [np.zeros((32, 32), np.uint8) for _ in range(3)]
    for i, c in enumerate(classes):
        c[:, 16:] = 1 + i % 2  # classes 1 and 2, and 0 everywhere
    after = [c.copy() for c in classes]
    after[0][0:8, 0:8] = 2  # class 2 is not in pair 0's own t1: it must come from another pair
    after[1][0:8, 0:8] = 1
    after[2][4:6, 4:6] = 1
    pairs = ChangePairs(
        ["a", "b", "c"],
        [_coded_image(c, i) for i, c in enumerate(classes)],
        [np.zeros((32, 32, 3), np.uint8)] * 3,
        [b != a for a, b in zip(classes, after, strict=True)],
        classes,
        after,
    )
    naive, counts = naive_pairs(pairs, seed=0, extra_donors=0)
    assert naive.names == pairs.names and naive.change is not pairs.change
    for i in range(3):
        assert naive.before[i] is pairs.before[i]
        assert np.array_equal(naive.change[i], pairs.change[i])
        assert ((naive.after[i] != naive.before[i]).any(-1) == pairs.change[i]).all()
    # pair 0's class-2 texture came from pair 1 (red 15), the only t1 with class 2
    assert (naive.after[0][0:8, 0:8, 0] == 15).all()
    assert counts.regions == 3

    folder = write_levir(naive, tmp_path / "naive")
    again = read_pairs(folder)
    assert again.names == ["a", "b", "c"]
    assert all(np.array_equal(x, y) for x, y in zip(again.after, naive.after, strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(again.change, naive.change, strict=True))
    with pytest.raises(InputError, match="layout= second"):
        naive_pairs(ChangePairs(["a"], pairs.before[:1], pairs.after[:1], pairs.change[:1]))


@pytest.fixture(scope="module")
def geochange_pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three 64² pairs made by `geochange dataset --layout second` (default model, 4 steps)
    from two 96² tiles with class-index masks; returns (source, dataset) folders."""
    from click.testing import CliRunner

    from geochange.cli.main import cli

    root = tmp_path_factory.mktemp("geochange_pairs")
    source = root / "source"
    (source / "images").mkdir(parents=True)
    (source / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        mask = np.zeros((96, 96), np.uint8)
        mask[:, 48:] = 1
        mask[10:30, 10 + i : 30 + i] = 7
        mask[60:90, 5:40] = 4
        Image.fromarray(mask).save(source / "masks" / f"t{i}.png")
        image = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
        Image.fromarray(image).save(source / "images" / f"t{i}.png")
    options = ["--pairs", "3", "--layout", "second", "--tile-size", "64", "--steps", "4"]
    result = CliRunner().invoke(cli, ["dataset", str(source), "-o", str(root / "pairs"), *options])
    assert result.exit_code == 0, result.output
    return source, root / "pairs"


def test_reads_a_geochange_dataset_with_its_whole_land_cover(geochange_pairs, tmp_path: Path):
    import shutil

    source, folder = geochange_pairs
    pairs = read_geochange(folder)
    # pair indices 0, 1, 2 go to train, test, train; there is no val pair
    assert pairs.names == ["train/00001", "train/00002", "test/00001"]
    with open(folder / "pairs.csv") as stream:
        rows = {f"{r['split']}/{r['name'][:-4]}": r for r in csv.DictReader(stream)}
    for i, name in enumerate(pairs.names):
        row = rows[name]
        mask = np.array(Image.open(source / row["source_image"].replace("images", "masks")))
        crop = mask[int(row["row"]) : int(row["row"]) + 64, int(row["col"]) : int(row["col"]) + 64]
        assert np.array_equal(pairs.before_classes[i], crop)
        split, file = name.split("/")
        label2 = np.array(Image.open(folder / split / "label2" / f"{file}.png"))
        change = pairs.change[i]
        assert np.array_equal(change, label2 > 0)
        assert np.array_equal(pairs.after_classes[i][change], label2[change] - 1)
        assert np.array_equal(pairs.after_classes[i][~change], crop[~change])
        assert np.array_equal(pairs.before_classes[i] != pairs.after_classes[i], change)
    assert any(c.any() for c in pairs.change)

    naive, _ = naive_pairs(pairs, seed=0)
    for before, after, change in zip(naive.before, naive.after, naive.change, strict=True):
        assert np.array_equal((before != after).any(-1), change)

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(copy / "test" / "im1" / "00001.png")
    with pytest.raises(InputError, match="does not match its source crop"):
        read_geochange(copy)


def _write_pairs(folder: Path, parts: tuple[str, str, str], label_value: int = 255) -> np.ndarray:
    rng = np.random.default_rng(3)
    change = np.zeros((16, 24), np.uint8)
    change[2:6, 3:9] = label_value
    for part in parts:
        (folder / part).mkdir(parents=True)
    for name in ("x1", "x2"):
        Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(
            folder / parts[0] / f"{name}.png"
        )
        Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(
            folder / parts[1] / f"{name}.png"
        )
        Image.fromarray(change).save(folder / parts[2] / f"{name}.png")
    return change > 0


def test_readers_of_both_layouts(tmp_path: Path):
    expected = _write_pairs(tmp_path / "levir", ("A", "B", "label"))
    _write_pairs(tmp_path / "bcd", ("img_A", "img_B", "bcd_mask"), label_value=1)
    assert detect_layout(tmp_path / "levir") == "levir"
    assert detect_layout(tmp_path / "bcd") == "bcd"
    for layout in ("levir", "bcd"):
        pairs = read_pairs(tmp_path / layout)
        assert pairs.names == ["x1", "x2"]
        assert pairs.before[0].shape == (16, 24, 3) and pairs.before[0].dtype == np.uint8
        assert np.array_equal(pairs.change[1], expected)
        assert pairs.change_fraction() == pytest.approx(24 / (16 * 24))
    assert not np.array_equal(pairs.before[0], pairs.after[0])
    with pytest.raises(InputError, match="none of the change-pair layouts"):
        read_pairs(tmp_path)

    (tmp_path / "levir" / "B" / "x2.png").unlink()
    with pytest.raises(InputError, match="no file in B/"):
        read_pairs(tmp_path / "levir")
    grey = np.full((16, 24), 128, np.uint8)
    Image.fromarray(grey).save(tmp_path / "bcd" / "bcd_mask" / "x1.png")
    with pytest.raises(InputError, match="not a binary change label"):
        read_pairs(tmp_path / "bcd", layout="bcd")


def test_second_layout_change_is_where_the_maps_differ(tmp_path: Path):
    _write_pairs(tmp_path, ("im1", "im2", "label1"), label_value=3)
    (tmp_path / "label2").mkdir()
    label2 = np.zeros((16, 24), np.uint8)
    label2[10:12, 0:4] = 5
    for name in ("x1", "x2"):
        Image.fromarray(label2).save(tmp_path / "label2" / f"{name}.png")
    pairs = read_pairs(tmp_path)
    assert detect_layout(tmp_path) == "second"
    assert pairs.change[0].sum() == 4 * 6 + 2 * 4
    assert pairs.after_classes[0][10, 0] == 5 and pairs.before_classes[0][2, 3] == 3


def test_reads_the_real_second_examples(shared_data: Path):
    for name in ("second", "lsscd"):
        folder = shared_data / "second_examples" / name
        pairs = read_pairs(folder)
        assert pairs.names == ["1", "2", "3"]
        truth = np.array(Image.open(folder / "bcd_mask" / "1.png")) == 255
        assert np.array_equal(pairs.change[0], truth) and truth.any()
        assert pairs.before[0].shape == (256, 256, 3)
