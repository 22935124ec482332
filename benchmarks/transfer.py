"""Zero-shot transfer: does a change detector trained on geochange pairs find real changes, and
does it do better than one trained on naively pasted pairs?

Trains FC-Siam-diff (``geochange.evaluation.detector``, the project's own implementation of
Daudt et al. 2018) twice, with the same seed, steps, batches, crops and flips:

1. on the pairs of ``geochange dataset`` runs (t2 painted by the diffusion model);
2. on their **naive** twin (``geochange.evaluation.naive``): the same t1 images and the same
   change labels, t2 = t1 with every changed region filled by texture of its new class cut from
   elsewhere in the t1 images (no diffusion);

then scores both, without any fine-tuning, on folders of real labelled pairs: precision, recall,
F1 and IoU of the changed class, pooled over all pixels of a folder (and over all folders), with
each pair's F1 beside it. A row "predict all changed" gives the F1 of the trivial detector, which
depends only on how much of the real pairs changed.

Each ``--pairs-dir`` is the output folder of ``geochange dataset --layout second`` (the naive
twin needs each changed pixel's new class, which only that layout records; the rest of the t1
land cover is read again from the source tiles at the positions in its ``pairs.csv``). Pairs of
all ``--splits`` are used (default: all three; the real folders are the test). A
``--pairs-dir`` that does not exist is made first, when ``--source`` gives its source folder (one
``--source`` per ``--pairs-dir``, in order), by ``geochange dataset SRC -o DIR --layout second
--pairs N --seed S``; the table then says how long that took.

REAL folders hold pairs in the LEVIR-CD layout (``A``, ``B``, ``label``, 0/255 PNGs) or in that
of the SECOND / LsSCD examples in ``../shared/data/second_examples/{second,lsscd}`` (``img_A``,
``img_B``, ``bcd_mask``): the layout is detected from the folder names (``--real-layout`` forces
one).

    .venv/bin/python benchmarks/transfer.py REAL [REAL ...] --pairs-dir DIR [--pairs-dir DIR]
        [--source SRC ...] [--pairs 300] [--steps 600] [--batch-size 8] [--crop 128] [--seed 0]
        [--threads 1] [--naive-out DIR] [-o table.md|table.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from geochange.evaluation.detector import (
    LAYOUTS,
    ChangePairs,
    evaluate,
    read_pairs,
    summarize,
    train_detector,
)
from geochange.evaluation.naive import naive_pairs, read_geochange, write_levir


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("real", type=Path, nargs="+", help="folders of real labelled pairs")
    parser.add_argument(
        "--real-layout",
        choices=["auto", *LAYOUTS],
        default="auto",
        help="layout of the real folders: levir = A/B/label, bcd = img_A/img_B/bcd_mask "
        "(the second_examples folders), second = im1/im2/label1/label2; default: auto-detect",
    )
    parser.add_argument(
        "--pairs-dir",
        type=Path,
        action="append",
        required=True,
        help="a `geochange dataset --layout second` folder to train on (repeat for more)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        action="append",
        default=[],
        help="source tile folder of the --pairs-dir at the same position, to make it with "
        "`geochange dataset` when it does not exist",
    )
    parser.add_argument("--pairs", type=int, default=300, help="pairs to make per folder (300)")
    parser.add_argument(
        "--dataset-args", default="", help="more options for `geochange dataset`, one string"
    )
    parser.add_argument(
        "--splits", nargs="+", default=["train", "val", "test"], help="splits to train on (all)"
    )
    parser.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per step (default 8)")
    parser.add_argument("--crop", type=int, default=128, help="crop side, px (default 128)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    parser.add_argument("--width", type=int, default=16, help="first stage's channels (16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of training and pasting (0)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--naive-out", type=Path, help="also write the naive pairs here (LEVIR)")
    parser.add_argument("-o", "--output", type=Path, help="write the table: .md or .json")
    args = parser.parse_args()
    if len(args.source) > len(args.pairs_dir):
        parser.error("give at most one --source per --pairs-dir")
    torch.set_num_threads(args.threads)

    generation = []
    for index, folder in enumerate(args.pairs_dir):
        if not folder.exists():
            if index >= len(args.source):
                parser.error(f"{folder} does not exist: give its --source to make it")
            generation.append(make_pairs(args.source[index], folder, args))
    geochange = ChangePairs([], [], [], [], [], [])
    for folder in args.pairs_dir:
        found = read_geochange(folder, args.splits)
        for part in ("names", "before", "after", "change", "before_classes", "after_classes"):
            values = getattr(found, part)
            if part == "names":
                values = [f"{folder.name}/{name}" for name in values]
            getattr(geochange, part).extend(values)
    log(f"read {len(geochange)} geochange pairs, {geochange.change_fraction():.1%} changed")
    started = time.perf_counter()
    naive, counts = naive_pairs(geochange, seed=args.seed)
    paste_s = time.perf_counter() - started
    log(
        f"naive twin in {paste_s:.1f} s: {counts.regions} regions, {counts.patch_pixels} px "
        f"pasted as patches, {counts.single_pixels} px one by one, "
        f"{counts.substituted_pixels} px with a look-alike class's texture"
    )
    if args.naive_out:
        write_levir(naive, args.naive_out, overwrite=True)
    real = {path.name: read_pairs(path, args.real_layout) for path in args.real}

    rows = [trivial_rows(real)]
    for name, pairs in (("geochange", geochange), ("naive paste", naive)):
        rows.append(train_and_score(name, pairs, real, args))
    result = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
        "threads": args.threads,
        "training": {
            "pairs_dirs": [str(p) for p in args.pairs_dir],
            "splits": args.splits,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "crop": args.crop,
            "lr": args.lr,
            "width": args.width,
            "seed": args.seed,
            "changed_share": geochange.change_fraction(),
        },
        "generation": generation,
        "naive_paste": {**vars(counts), "seconds": round(paste_s, 1)},
        "real": {
            name: {"pairs": len(p), "changed_share": p.change_fraction()}
            for name, p in real.items()
        },
        "rows": [row for group in rows for row in group],
    }
    table = markdown(result)
    print(table)
    if args.output:
        text = json.dumps(result, indent=2) if args.output.suffix == ".json" else table
        args.output.write_text(text + "\n")


def make_pairs(source: Path, folder: Path, args: argparse.Namespace) -> dict[str, object]:
    """Run ``geochange dataset`` into ``folder`` and time it."""
    command = [
        sys.executable,
        "-m",
        "geochange.cli",
        "dataset",
        str(source),
        "-o",
        str(folder),
        "--layout",
        "second",
        "--pairs",
        str(args.pairs),
        "--seed",
        str(args.seed),
        "-q",
        *args.dataset_args.split(),
    ]
    log("making pairs: " + " ".join(command))
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    log(f"{args.pairs} pairs in {seconds:.0f} s ({args.pairs / seconds:.2f} pairs/s)")
    return {"command": " ".join(command[2:]), "seconds": round(seconds, 1), "pairs": args.pairs}


def train_and_score(
    name: str, pairs: ChangePairs, real: dict[str, ChangePairs], args: argparse.Namespace
) -> list[dict[str, object]]:
    log(f"training on {name} pairs: {args.steps} steps")
    started = time.perf_counter()
    model = train_detector(
        pairs,
        args.steps,
        batch_size=args.batch_size,
        crop=args.crop,
        lr=args.lr,
        seed=args.seed,
        width=args.width,
        log=log,
    )
    seconds = time.perf_counter() - started
    scored = {folder: evaluate(model, found) for folder, found in real.items()}
    return _rows(name, len(pairs), seconds, scored)


def trivial_rows(real: dict[str, ChangePairs]) -> list[dict[str, object]]:
    """Scores of a detector that calls every pixel changed."""
    scored = {
        folder: {
            name: np.array([[0, (~change).sum()], [0, change.sum()]])
            for name, change in zip(pairs.names, pairs.change, strict=True)
        }
        for folder, pairs in real.items()
    }
    return _rows("predict all changed", 0, 0.0, scored)


def _rows(
    name: str, pairs: int, seconds: float, scored: dict[str, dict[str, np.ndarray]]
) -> list[dict[str, object]]:
    """One row per real folder, and one pooled over all of them when there are several."""
    if len(scored) > 1:
        everything = {
            f"{folder}/{pair}": confusion
            for folder, confusions in scored.items()
            for pair, confusion in confusions.items()
        }
        scored = {**scored, "all": everything}
    return [
        {
            "training data": name,
            "pairs": pairs,
            "train s": round(seconds, 1),
            "real": folder,
            **summarize(confusions),
        }
        for folder, confusions in scored.items()
    ]


def markdown(result: dict[str, object]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| training data | pairs | train s | real pairs | P | R | F1 | F1 95% (pairs resampled) "
        "| IoU | F1 per pair |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        per_pair = " ".join(f"{f1:.2f}" for f1 in row["per_pair_f1"].values())
        low, high = row["f1_interval"]
        trained = (row["pairs"], row["train s"]) if row["pairs"] else ("–", "–")
        lines.append(
            f"| {row['training data']} | {trained[0]} | {trained[1]} | {row['real']} | "
            f"{row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | "
            f"{low:.2f}–{high:.2f} | {row['iou']:.3f} | {per_pair} |"
        )
    return "\n".join(lines)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
