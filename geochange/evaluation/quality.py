"""The quality report of a model, measured on held-out data only.

- **autoencoder**: PSNR and SSIM of reconstructed held-out crops, per data folder;
- **mask influence**: held-out denoising error with the true mask and with it dropped, per
  noise band (does the model use its mask at all?);
- **semantic fidelity**: a small segmenter trained on real training crops labels images
  generated from held-out masks; its mIoU there is set beside its mIoU on the real images, for
  each sampling variant of the ablation (with seconds per 256² tile);
- **change realism**: ``synth`` runs with the real image of each held-out OpenEarthMap square as
  t1: correlation, SSIM and sharpness of t2 against t1 in unchanged and in changed land, the
  sharpness of changed land against the unchanged land around it, and the segmenter's agreement
  with the t2 classes inside changed land, for each composition of the ablation (pixel with and
  without exemplars, latent as in the paper); beside them the same figures of real pairs and of
  the ChangeAnywhere authors' synthetic ones;
- **seams**: border/interior gradient-energy ratio of a 2x2-block ``synth`` run;
- a PNG contact sheet of held-out crops.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from PIL import Image
from rasterio.windows import Window
from scipy import ndimage

from geochange.acquisition import PRESETS
from geochange.classes import NODATA, load_scheme
from geochange.evaluation.detector import read_pairs
from geochange.evaluation.metrics import (
    confusion_matrix,
    masked_correlation,
    mean_iou,
    psnr,
    same_class_sharpness_ratio,
    seam_ratio,
    sharpness,
    sharpness_ratio,
    ssim,
)
from geochange.evaluation.segmenter import Segmenter, load_segmenter, predict, save_segmenter
from geochange.evaluation.segmenter import train_segmenter as fit_segmenter
from geochange.example import write_example
from geochange.inputs import open_inputs
from geochange.model import ModelConfig, SemanticLDM, load_model, one_hot, pick_device
from geochange.model.bank import ExemplarBank, load_bank
from geochange.model.semantic_ldm import dropped_like
from geochange.painting import Painter, SamplingOptions, resolve_model, with_precision
from geochange.plan import TILE, Block
from geochange.synth import synthesize
from geochange.training.data import HELDOUT_SIZE, Pair, TileDataset, find_pairs, open_tiles
from geochange.writing.folder import OutputFolder
from geochange.writing.preview import GAP, colour, grid, outline, write_png

CROP = HELDOUT_SIZE
CHANGE_EVENTS = "building_add:count=6,deforestation:fraction=0.5,regrowth:fraction=0.3"
"""Events of the change-realism runs: they find room in 128 m squares of town and country."""
SEAM_REGION = 768
"""Edge in pixels of the example region of the seam run: blocks of 512 meet at column/row 512."""

Log = Callable[[str], None]


@dataclass(frozen=True)
class SegmenterRecipe:
    """How the evaluation's segmenter is trained when none is given."""

    crop: int = 128
    steps: int = 1000
    batch_size: int = 8
    lr: float = 1e-3
    width: int = 32
    seed: int = 0


@dataclass(frozen=True)
class Crop:
    """One held-out crop: RGB uint8 (3, h, w), class indices (h, w) with ``NODATA``."""

    folder: str
    image: np.ndarray
    classes: np.ndarray


def heldout_crops(data_dirs: list[str | Path], per_folder: int, seed: int = 0) -> list[Crop]:
    """``per_folder`` held-out crops of each folder (every OpenEarthMap held-out square)."""
    crops = []
    for root in data_dirs:
        dataset = TileDataset(root, CROP, split="heldout", seed=seed, augment=False)
        count = len(dataset.pairs) if dataset.layout == "openearthmap" else per_folder
        for index in range(count):
            image, classes = dataset.unaugmented(index)
            rgb = ((image.numpy() + 1.0) * 127.5).round().astype(np.uint8)
            crops.append(Crop(Path(root).name, rgb, classes.numpy().astype(np.uint8)))
    return crops


def autoencoder_scores(model: SemanticLDM, crops: list[Crop]) -> dict[str, dict[str, float]]:
    """Mean PSNR and SSIM (dB, 0-1) of reconstructions, and their sharpness ratio (gradient
    energy of the reconstruction over the original's: 1 keeps the detail, a blur is below),
    per folder."""
    scores: dict[str, list[tuple[float, float, float]]] = {}
    with torch.no_grad():
        for crop in crops:
            pixels = torch.from_numpy(crop.image).float()[None] / 127.5 - 1.0
            decoded = model.decode(model.encode(pixels))[0]
            rgb = ((decoded + 1.0) * 127.5).round().clamp(0, 255).byte().numpy()
            whole = np.ones(rgb.shape[1:], bool)
            scores.setdefault(crop.folder, []).append(
                (
                    psnr(crop.image, rgb),
                    ssim(crop.image, rgb),
                    sharpness_ratio(crop.image, rgb, whole),
                )
            )
    return {
        folder: {
            "psnr_db": _mean(v[0] for v in values),
            "ssim": _mean(v[1] for v in values),
            "sharpness_ratio": _mean(v[2] for v in values),
        }
        for folder, values in scores.items()
    }


NOISE_BANDS = {
    "low (t < 300)": (0, 300),
    "mid (300-700)": (300, 700),
    "high (t >= 700)": (700, 1000),
}


def mask_influence(model: SemanticLDM, crops: list[Crop], draws: int = 8) -> dict[str, Any]:
    """Held-out denoising error with the true mask and with the mask dropped, per noise band.

    A model that follows its mask predicts much better with it, above all at high noise where
    the layout is decided; a model that ignores it scores the same either way.
    """
    generator = torch.Generator().manual_seed(0)
    errors = {band: [0.0, 0.0] for band in NOISE_BANDS}
    with torch.no_grad():
        for crop in crops:
            pixels = torch.from_numpy(crop.image).float()[None] / 127.5 - 1.0
            latents = model.encode(pixels)
            onehot = one_hot(torch.from_numpy(crop.classes.astype(np.int64))[None])
            for band, (low, high) in NOISE_BANDS.items():
                t = torch.randint(low, high, (draws,), generator=generator)
                noise = torch.randn((draws, *latents.shape[1:]), generator=generator)
                batch = latents.expand(draws, -1, -1, -1)
                z_t = model.scheduler.add_noise(batch, noise, t)
                target = model.target(batch, noise, t)
                masks = onehot.expand(draws, -1, -1, -1)
                for k, condition in enumerate((masks, dropped_like(masks))):
                    error = model.denoise(z_t, t, condition) - target
                    errors[band][k] += float(error.square().mean()) / len(crops)
    return {
        band: {"with_mask": w, "mask_dropped": d, "reduction": 1.0 - w / d if d else float("nan")}
        for band, (w, d) in errors.items()
    }


def generate_from_masks(
    model: SemanticLDM,
    crops: list[Crop],
    options: SamplingOptions,
    seed: int,
    device: str,
    bank: ExemplarBank | None = None,
) -> tuple[list[np.ndarray], float]:
    """Images painted from the crops' masks alone (t1 mode of ``synth`` without ``--image``:
    with ``options.exemplars``, a collage of the ``bank`` harmonized by the model), and the
    seconds per crop."""
    painter = Painter(model, options, seed, pick_device(device), bank=bank)
    images = []
    began = time.perf_counter()
    for row, crop in enumerate(crops):
        height, width = crop.classes.shape
        (rgb,), _ = painter.paint_block(Block.alone(row, height, width), [crop.classes])
        images.append(rgb)
    return images, (time.perf_counter() - began) / max(len(crops), 1)


def segmentation_miou(segmenter: Segmenter, images: list[np.ndarray], crops: list[Crop]) -> float:
    """mIoU of the segmenter's labels of ``images`` against the crops' masks (all pooled)."""
    predicted = predict(segmenter, np.stack(images))
    truth = np.stack([c.classes for c in crops])
    return mean_iou(confusion_matrix(truth, predicted, ignore=NODATA))


def ablation_variants(
    options: SamplingOptions, config: ModelConfig, bank: bool = False
) -> dict[str, tuple[SamplingOptions, dict[str, Any]]]:
    """Sampling levers, each switched against the default: name -> (options, config changes).
    With a ``bank`` of exemplars, the model's own levers are measured with exemplars off, as
    they are about what the model paints alone."""
    variants: dict[str, tuple[SamplingOptions, dict[str, Any]]] = {"default": (options, {})}
    if options.exemplars and bank:
        options = replace(options, exemplars=False)
        variants["exemplars off (the model alone)"] = (options, {})
    if config.layout_init:
        start = config.layout_start_fraction
        variants["no layout init (pure noise)"] = (options, {"layout_init": False})
        for fraction in sorted({0.5, 0.7, 0.85} - {start}):
            variants[f"layout start {fraction}"] = (options, {"layout_start_fraction": fraction})
    if config.mask_dropout > 0:
        variants["guidance 2.0"] = (replace(options, guidance=2.0), {})
    if options.sampler != "ddim":
        variants[f"ddim, {options.steps} steps"] = (replace(options, sampler="ddim"), {})
    variants["ddim, 50 steps"] = (replace(options, sampler="ddim", steps=50), {})
    return variants


def semantic_fidelity(
    model: SemanticLDM,
    segmenter: Segmenter,
    crops: list[Crop],
    options: SamplingOptions,
    seed: int,
    device: str,
    ablation: bool,
    log: Log,
    bank: ExemplarBank | None = None,
) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    """The segmenter's mIoU on real and on generated held-out crops, per sampling variant."""
    result: dict[str, Any] = {
        "real_miou": segmentation_miou(segmenter, [c.image for c in crops], crops)
    }
    if ablation:
        variants = ablation_variants(options, model.config, bank is not None)
    else:
        variants = {"default": (options, {})}
    generated, rows = {}, []
    config = model.config
    generate_from_masks(model, crops[:1], options, seed, device, bank)  # warm-up for timings
    for name, (variant, changes) in variants.items():
        model.config = replace(config, **changes)
        try:
            images, seconds = generate_from_masks(model, crops, variant, seed, device, bank)
        finally:
            model.config = config
        miou = segmentation_miou(segmenter, images, crops)
        rows.append(
            {
                "variant": name,
                "miou": miou,
                "seconds_per_tile": seconds,
                **variant.to_dict(),
                **changes,
            }
        )
        generated[name] = images
        log(f"semantic fidelity, {name}: mIoU {miou:.3f}, {seconds:.1f} s per tile")
    result["variants"] = rows
    result["generated_miou"] = rows[0]["miou"]
    result["ratio"] = rows[0]["miou"] / result["real_miou"] if result["real_miou"] else float("nan")
    return result, generated


MIN_REAL_LAND = 100
"""Fewest real pixels of a class for the segmenter's agreement on them to count."""
COMPOSITIONS_OF_THE_ABLATION = (("pixel", True), ("pixel", False), ("latent", False))
"""(composition, exemplars) of the change-realism ablation: the default, the pixel composition
from the model alone, and the paper (every t2 pixel decoded from latents, with no acquisition
differences, which the paper does not have)."""
REALISM_TARGETS = {
    "correlation_unchanged": "0.6-0.95",
    "sharpness_unchanged": ">= 0.85",
    "sharpness_changed_vs_unchanged": "~1 (0.85-1.2)",
    "sharpness_changed_vs_same_class": "~1 (0.85-1.2)",
    "correlation_changed": "< unchanged",
    "segmenter_agrees_with_t2_in_changed_land": ">= 0.5",
}
"""What each change-realism figure should read (issue 13): unchanged land like a second
acquisition, not a copy and not blurred; changed land unlike t1, seen as its new class, and as
sharp as its surroundings: neither blurrier (a decoded blob) nor sharper (a raw paste), for
either gives the change away to a detector."""


CHANGE_BORDER = 3
"""Pixels of unchanged land next to changed land that its sharpness leaves out: blur and
misregistration carry the step at a change's edge up to 2 px into it, where it read as detail
(in a Houston run, 2.6 times t1's gradient energy within 2 px of bright new land)."""


def pair_figures(
    before: np.ndarray, after: np.ndarray, changed: np.ndarray, unchanged: np.ndarray
) -> dict[str, float]:
    """Realism figures of one bi-temporal pair ((3, H, W) uint8 images, bool (H, W) masks)."""
    away = ndimage.distance_transform_edt(~changed) > CHANGE_BORDER if changed.any() else True
    return {
        "correlation_unchanged": masked_correlation(before, after, unchanged),
        "correlation_changed": masked_correlation(before, after, changed),
        "sharpness_unchanged": sharpness_ratio(before, after, unchanged & away),
        # Changed land against the rest of the same image: a detector sees both side by side.
        "sharpness_changed_vs_unchanged": _ratio(
            sharpness(after, changed), sharpness(after, unchanged)
        ),
        "ssim_unchanged": ssim(before, after, mask=unchanged),
        "ssim_changed": ssim(before, after, mask=changed),
    }


def realism_figures(pairs: list[dict[str, Any]], segmenter: Segmenter) -> dict[str, float]:
    """``pair_figures`` and the segmenter's agreement with the t2 (and t1) classes in changed
    land, each averaged over ``pairs`` (dicts of ``t1``, ``t2``, ``change`` 0/1 and, where
    known, ``t1_classes`` / ``t2_classes``)."""
    figures: dict[str, list[float]] = {}
    for pair in pairs:
        changed, unchanged = pair["change"] == 1, pair["change"] == 0
        for name, value in pair_figures(pair["t1"], pair["t2"], changed, unchanged).items():
            figures.setdefault(name, []).append(value)
        if "t2_classes" in pair:
            figures.setdefault("sharpness_changed_vs_same_class", []).append(
                same_class_sharpness_ratio(pair["t2"], pair["t2_classes"], changed)
            )
        if changed.any():
            labels = predict(segmenter, pair["t2"][None])[0]
            for time_ in ("t2", "t1"):
                if f"{time_}_classes" in pair:
                    agrees = labels[changed] == pair[f"{time_}_classes"][changed]
                    key = f"segmenter_agrees_with_{time_}_in_changed_land"
                    figures.setdefault(key, []).append(float(agrees.mean()))
            if "t1_classes" in pair and "t2_classes" in pair:
                ceiling = _agreement_on_real_land(
                    segmenter, pair["t1"], pair["t1_classes"], pair["t2_classes"][changed]
                )
                figures.setdefault("segmenter_agrees_on_real_land", []).append(ceiling)
    return {name: _mean(values) for name, values in figures.items()}


def _agreement_on_real_land(
    segmenter: Segmenter, image: np.ndarray, classes: np.ndarray, new_classes: np.ndarray
) -> float:
    """How often the segmenter agrees with the class on the real ``image``'s land of the
    classes that changed land took (``new_classes``), weighted as they are there: the most
    that agreement on changed land can read with this segmenter. nan where the image holds
    too little of them."""
    labels = predict(segmenter, image[None])[0]
    accuracies, weights = [], []
    for cls, count in zip(*np.unique(new_classes, return_counts=True), strict=True):
        land = classes == cls
        if land.sum() >= MIN_REAL_LAND:
            accuracies.append(float((labels[land] == cls).mean()))
            weights.append(count)
    return float(np.average(accuracies, weights=weights)) if accuracies else float("nan")


def composition_variants(options: SamplingOptions, ablation: bool) -> dict[str, SamplingOptions]:
    """The options as given first, then (with ``ablation``) the compositions of
    ``COMPOSITIONS_OF_THE_ABLATION`` not yet among them, by name."""
    variants = {_composition_name(options): options}
    if ablation:
        for composition, exemplars in COMPOSITIONS_OF_THE_ABLATION:
            variant = replace(options, composition=composition, exemplars=exemplars)
            if (composition, exemplars) == ("latent", False):
                variant = replace(variant, acquisition=PRESETS["none"])
            variants.setdefault(_composition_name(variant), variant)
    return variants


def _composition_name(options: SamplingOptions) -> str:
    default = SamplingOptions()
    settings = (options.composition, options.exemplars)
    name = f"{options.composition} composition, exemplars {'on' if options.exemplars else 'off'}"
    if settings == (default.composition, default.exemplars):
        name += " (default)"
    if settings == ("latent", False):
        name += " (the paper)"
    return name


def change_realism(
    model_dir: Path,
    oem_root: Path,
    segmenter: Segmenter,
    options: SamplingOptions,
    seeds: int,
    device: str,
    work: Path,
    ablation: bool = False,
    log: Log = print,
) -> tuple[dict[str, Any], list[dict[str, np.ndarray]]]:
    """``synth`` with the real image as t1 on each held-out OpenEarthMap square, once per
    composition variant (same places, events and seeds); the figures of the first variant (the
    options as given) are also the section's own, and its runs are returned."""
    dataset = TileDataset(oem_root, CROP, split="heldout", augment=False)
    places = [(pair, _heldout_region(pair, work)) for pair in dataset.pairs]
    rows: list[dict[str, Any]] = []
    first: list[dict[str, Any]] = []
    for index, (name, variant) in enumerate(composition_variants(options, ablation).items()):
        runs = []
        began = time.perf_counter()
        for pair, region in places:
            for seed in range(seeds):
                out = work / f"{pair.mask.stem}_variant{index}_seed{seed}"
                with open_inputs(region, events=CHANGE_EVENTS) as inputs:
                    synthesize(
                        inputs,
                        out,
                        model=model_dir,
                        image=pair.image,
                        options=variant,
                        seed=seed,
                        device=device,
                        overwrite=True,
                    )
                runs.append({**_read_run(out), "place": pair.mask.stem})
        seconds = (time.perf_counter() - began) / len(runs)
        figures = realism_figures(runs, segmenter)
        rows.append(
            {
                "variant": name,
                "composition": variant.composition,
                "exemplars": variant.exemplars,
                **figures,
                "seconds_per_run": seconds,
            }
        )
        log(f"change realism, {name}: {figures}")
        first = first or runs
    # Unrelated: t1 of different places (runs of one place share their real t1).
    unrelated = [ssim(a["t1"], b["t1"]) for a in first for b in first if a["place"] < b["place"]]
    headline = {k: v for k, v in rows[0].items() if k not in ("variant", "seconds_per_run")}
    return {
        "events": CHANGE_EVENTS,
        "runs": len(first),
        "changed_share": _mean(float((r["change"] == 1).mean()) for r in first),
        **headline,
        "ssim_unrelated_pairs": _mean(unrelated),
        "targets": REALISM_TARGETS,
        "variants": rows,
    }, first


def real_pairs_reference(root: Path | None, segmenter: Segmenter) -> dict[str, Any]:
    """The change-realism figures of real bi-temporal pairs and, where the folder has
    ``img_B_synthetic``, of the ChangeAnywhere authors' synthetic t2 of the same pairs: what the
    synthesized figures are read against. ``root`` holds ``img_A``, ``img_B`` and ``bcd_mask``
    (0/255), optionally ``img_B_synthetic``, ``mask_A``/``mask_B`` (OpenEarthMap class indices),
    directly or in sub-folders (``second_examples/{second,lsscd}``)."""
    if root is None or not Path(root).is_dir():
        return {"skipped": f"no folder of real pairs at {root}"}
    root = Path(root)
    folders = (
        [root]
        if (root / "img_A").is_dir()
        else sorted(p for p in root.iterdir() if (p / "img_A").is_dir())
    )
    real, synthetic = [], []
    for folder in folders:
        pairs = read_pairs(folder, "bcd")
        for index, name in enumerate(pairs.names):
            pair = {
                "t1": pairs.before[index].transpose(2, 0, 1),
                "t2": pairs.after[index].transpose(2, 0, 1),
                "change": pairs.change[index].astype(np.uint8),
            }
            for time_, part in (("t1", "mask_A"), ("t2", "mask_B")):
                if (folder / part).is_dir():
                    pair[f"{time_}_classes"] = _read_png(folder / part, name)
            real.append(pair)
            if (folder / "img_B_synthetic").is_dir():
                made = _read_png(folder / "img_B_synthetic", name)[..., :3].transpose(2, 0, 1)
                synthetic.append({**pair, "t2": made})
    if not real:
        return {"skipped": f"no img_A/img_B/bcd_mask pairs in {root}"}
    rows = [
        {"variant": f"real pairs ({root.name}, {len(real)})", **realism_figures(real, segmenter)}
    ]
    if synthetic:
        label = f"ChangeAnywhere authors' synthetic t2 ({root.name}, {len(synthetic)})"
        rows.append({"variant": label, **realism_figures(synthetic, segmenter)})
    return {"folder": str(root), "rows": rows}


def _read_png(folder: Path, name: str) -> np.ndarray:
    """The image named ``name`` (any suffix) in ``folder``, as an array."""
    (path,) = (p for p in folder.iterdir() if p.stem == name)
    with Image.open(path) as image:
        return np.array(image)


def _heldout_region(pair: Pair, work: Path) -> Path:
    """The held-out square of ``pair``'s land cover as a GeoTIFF of its own: ``synth``'s
    region."""
    region = work / f"{pair.mask.stem}_heldout.tif"
    row0, col0 = pair.box[:2]
    window = Window(col0, row0, CROP, CROP)
    with rasterio.open(pair.mask) as src:
        profile = {
            "driver": "GTiff",
            "width": CROP,
            "height": CROP,
            "count": 1,
            "dtype": src.dtypes[0],
            "crs": src.crs,
            "transform": src.window_transform(window),
        }
        with rasterio.open(region, "w", **profile) as dst:
            dst.write(src.read(1, window=window), 1)
    return region


def _read_run(out: Path) -> dict[str, Any]:
    oem = load_scheme("oem")
    run: dict[str, Any] = {"name": out.name}
    for name in ("t1", "t2"):
        with rasterio.open(out / f"{name}.tif") as src:
            run[name] = src.read()
        with rasterio.open(out / f"{name}_landcover.tif") as src:
            run[f"{name}_classes"] = oem.classify(src.read(1))[0]
    with rasterio.open(out / "change.tif") as src:
        run["change"] = src.read(1)
    return run


def seam_check(model_dir: Path, options: SamplingOptions, device: str, work: Path) -> float:
    """Seam ratio at the 512 px block border of a 2x2-block run on the example region."""
    region = write_example(work / "seam_region", size=SEAM_REGION, seed=1, overwrite=True)
    out = work / "seam_run"
    with open_inputs(region, events="building_add:count=10") as inputs:
        synthesize(
            inputs,
            out,
            model=model_dir,
            options=options,
            device=device,
            overwrite=True,
            block_size=TILE,
        )
    with rasterio.open(out / "t2.tif") as src:
        return seam_ratio(src.read(), TILE)


def contact_sheet(
    crops: list[Crop], generated: list[np.ndarray], runs: list[dict[str, np.ndarray]]
) -> np.ndarray:
    """Rows of held-out crops: real image | mask | generated from the mask; then, for the
    change runs: real t1 | t1 mask | t2 mask | generated t2 with the change outlined."""
    rows = [[c.image, colour(c.classes), g] for c, g in zip(crops, generated, strict=True)]
    blank = np.full_like(crops[0].image, 255)
    rows = [[*row, blank] for row in rows]
    for run in runs:
        changed = run["change"] == 1
        rows.append(
            [
                run["t1"],
                colour(run["t1_classes"]),
                outline(colour(run["t2_classes"]), changed),
                outline(run["t2"], changed),
            ]
        )
    return grid(rows, gap=GAP)


def evaluate(
    model: str | Path,
    data_dirs: list[str | Path],
    output: str | Path,
    *,
    overwrite: bool = False,
    segmenter_path: str | Path | None = None,
    recipe: SegmenterRecipe = SegmenterRecipe(),
    options: SamplingOptions | None = None,
    per_folder: int = 8,
    seeds: int = 2,
    ablation: bool = True,
    seams: bool = True,
    device: str = "cpu",
    log: Log = print,
    reference: str | Path | None = None,
) -> dict[str, Any]:
    """Measure ``model`` (``default`` or a model folder) on the held-out part of
    ``data_dirs``; write ``quality.json``, ``quality.md`` and ``contact_sheet.png`` to folder
    ``output``, which appears only when finished, and return the figures. ``reference``: a
    folder of real pairs for ``real_pairs_reference`` (its rows are skipped with a note
    without one)."""
    with OutputFolder(output, overwrite) as partial:
        return _measure(
            resolve_model(str(model)),
            data_dirs,
            partial,
            segmenter_path,
            recipe,
            with_precision(options or SamplingOptions(), pick_device(device)),
            per_folder,
            seeds,
            ablation,
            seams,
            device,
            log,
            reference,
        )


def _measure(
    model_dir: Path,
    data_dirs: list[str | Path],
    out: Path,
    segmenter_path: str | Path | None,
    recipe: SegmenterRecipe,
    options: SamplingOptions,
    per_folder: int,
    seeds: int,
    ablation: bool,
    seams: bool,
    device: str,
    log: Log,
    reference: str | Path | None,
) -> dict[str, Any]:
    work = out / "runs"
    work.mkdir(parents=True, exist_ok=True)
    model = load_model(model_dir).eval()
    report: dict[str, Any] = {"model": str(model_dir), "sampling": options.to_dict()}
    crops = heldout_crops(data_dirs, per_folder)
    report["heldout_crops"] = {
        f: sum(c.folder == f for c in crops) for f in {c.folder for c in crops}
    }
    report["autoencoder"] = autoencoder_scores(model, crops)
    log(f"autoencoder: {report['autoencoder']}")

    if segmenter_path is not None and Path(segmenter_path).exists():
        segmenter = load_segmenter(segmenter_path)
        report["segmenter"] = {"file": str(segmenter_path)}
    else:
        began = time.perf_counter()
        dataset = open_tiles(data_dirs, recipe.crop, split="train", seed=recipe.seed)
        segmenter = fit_segmenter(
            dataset, recipe.steps, recipe.batch_size, recipe.lr, recipe.seed, log, recipe.width
        )
        save_segmenter(segmenter, out / "segmenter.safetensors")
        report["segmenter"] = {"trained": recipe.__dict__, "seconds": time.perf_counter() - began}

    report["mask_influence"] = mask_influence(model, crops)
    log(f"mask influence: {report['mask_influence']}")
    fidelity, generated = semantic_fidelity(
        model, segmenter, crops, options, 0, device, ablation, log, load_bank(model_dir)
    )
    report["semantic_fidelity"] = fidelity
    oem = [Path(d) for d in data_dirs if find_pairs(Path(d))[0] == "openearthmap"]
    runs: list[dict[str, np.ndarray]] = []
    if oem:
        report["change_realism"], runs = change_realism(
            model_dir, oem[0], segmenter, options, seeds, device, work, ablation, log
        )
    report["real_pairs_reference"] = real_pairs_reference(
        Path(reference) if reference is not None else None, segmenter
    )
    log(f"real pairs reference: {report['real_pairs_reference']}")
    if seams:
        report["seam_ratio"] = seam_check(model_dir, options, device, work)
        log(f"seam ratio: {report['seam_ratio']:.3f}")
        if options.sampler != "ddim":
            ddim = replace(options, sampler="ddim")
            report["seam_ratio_ddim"] = seam_check(model_dir, ddim, device, work)
            log(f"seam ratio with ddim: {report['seam_ratio_ddim']:.3f}")
    write_png(out / "contact_sheet.png", contact_sheet(crops, generated["default"], runs))
    (out / "quality.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (out / "quality.md").write_text(markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    """The figures as Markdown tables (for the model card)."""
    lines = ["| held-out crops | PSNR (dB) | SSIM | sharpness ratio |", "|---|---|---|---|"]
    for folder, score in report["autoencoder"].items():
        lines.append(
            f"| {folder} | {score['psnr_db']:.2f} | {score['ssim']:.3f} "
            f"| {score['sharpness_ratio']:.3f} |"
        )
    lines += [
        "",
        "| noise band | held-out error, true mask | mask dropped | reduction |",
        "|---|---|---|---|",
    ]
    for band, row in report["mask_influence"].items():
        lines.append(
            f"| {band} | {row['with_mask']:.4f} | {row['mask_dropped']:.4f} "
            f"| {row['reduction']:.0%} |"
        )
    fidelity = report["semantic_fidelity"]
    lines += [
        "",
        f"Segmenter mIoU on the real held-out images: {fidelity['real_miou']:.3f}",
        "",
        "| sampling variant | generated-image mIoU | / real | s per 256² tile |",
        "|---|---|---|---|",
    ]
    for row in fidelity["variants"]:
        ratio = row["miou"] / fidelity["real_miou"]
        seconds = row["seconds_per_tile"]
        lines.append(f"| {row['variant']} | {row['miou']:.3f} | {ratio:.0%} | {seconds:.1f} |")
    lines += realism_markdown(report.get("change_realism"), report.get("real_pairs_reference"))
    if "seam_ratio" in report:
        lines += ["", f"Seam ratio (2x2 blocks, border/interior): {report['seam_ratio']:.3f}"]
    if "seam_ratio_ddim" in report:
        lines += [f"Seam ratio with DDIM at the same steps: {report['seam_ratio_ddim']:.3f}"]
    return "\n".join(lines) + "\n"


REALISM_COLUMNS = {
    "correlation_unchanged": "corr. t1/t2, unchanged",
    "sharpness_unchanged": "sharpness t2/t1, unchanged",
    "sharpness_changed_vs_unchanged": "sharpness of t2, changed/unchanged",
    "sharpness_changed_vs_same_class": "same, per class, away from edges",
    "correlation_changed": "corr. t1/t2, changed",
    "segmenter_agrees_with_t2_in_changed_land": "segmenter = t2 class, changed",
    "segmenter_agrees_on_real_land": "segmenter = class, real land of those classes",
    "ssim_unchanged": "SSIM t1/t2, unchanged",
}


def realism_markdown(realism: dict[str, Any] | None, reference: dict[str, Any] | None) -> list[str]:
    """The change-realism table: a target row, the composition variants, the reference rows."""
    rows = list(realism["variants"]) if realism else []
    notes = []
    if realism:
        notes.append(
            f"Change realism: synth with the real held-out image as t1, events "
            f"`{realism['events']}`, {realism['runs']} runs per variant, "
            f"{realism['changed_share']:.1%} of the land changed; SSIM of unrelated real "
            f"pairs: {realism['ssim_unrelated_pairs']:.3f}."
        )
    if reference and "rows" in reference:
        rows += reference["rows"]
        notes.append(
            f"Reference rows: {reference['folder']} (the class agreement there is with pseudo "
            "labels)."
        )
    elif reference:
        notes.append(f"Reference rows skipped: {reference['skipped']}.")
    if not rows:
        return ["", *notes]
    targets = [REALISM_TARGETS.get(key, "") for key in REALISM_COLUMNS]
    lines = [
        "",
        "| change realism | " + " | ".join(REALISM_COLUMNS.values()) + " | s per run |",
        "|---" * (len(REALISM_COLUMNS) + 2) + "|",
        "| target | " + " | ".join(targets) + " | |",
    ]
    for row in rows:
        cells = [_cell(row.get(key)) for key in [*REALISM_COLUMNS, "seconds_per_run"]]
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    return [*lines, "", *notes]


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def _mean(values: Any) -> float:
    values = [v for v in values if v == v]
    return float(np.mean(values)) if values else float("nan")
