"""Training data, loops and commands on real crops from ../shared/data with the tiny preset."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from geochange.classes import NODATA, NUM_CLASSES
from geochange.cli.train import train
from geochange.errors import InputError
from geochange.model import SemanticLDM, load_model, preset
from geochange.training.crops import augment
from geochange.training.data import HELDOUT_SIZE, MixedTiles, TileDataset, open_tiles
from geochange.training.loops import (
    LatentCache,
    autoencoder_loss,
    read_losses,
    reconstruction_loss,
    train_diffusion,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("folder", "layout", "files"), [("openearthmap", "openearthmap", 2), ("dubai", "dubai", 72)]
)
def test_dataset_finds_pairs_and_crops(shared_data: Path, folder: str, layout: str, files: int):
    train_set = TileDataset(shared_data / folder, crop=64, seed=1)
    heldout = TileDataset(shared_data / folder, crop=64, seed=1, split="heldout")
    assert train_set.layout == heldout.layout == layout
    if layout == "openearthmap":  # a held-out square inside each labelled tile
        assert len(train_set.pairs) == len(heldout.pairs) == files
    else:  # a file is a region: each file in exactly one split
        train_files = {p.image for p in train_set.pairs}
        heldout_files = {p.image for p in heldout.pairs}
        assert not train_files & heldout_files
        assert len(train_files | heldout_files) == files
    for dataset in (train_set, heldout):
        image, mask = dataset.item(5, 3)
        assert image.shape == (3, 64, 64) and image.dtype == torch.float32
        assert image.min() >= -1.0 and image.max() <= 1.0 and image.std() > 0
        assert mask.shape == (64, 64) and mask.dtype == torch.int64
        values = set(mask.unique().tolist())
        assert values <= set(range(NUM_CLASSES)) | {NODATA}
    assert train_set.split_info()["split"] == "train"


def test_same_seed_same_crop_and_augmentation_varies(shared_data: Path):
    a = TileDataset(shared_data / "openearthmap", crop=64, seed=7)
    b = TileDataset(shared_data / "openearthmap", crop=64, seed=7)
    for index, variant in [(0, 0), (3, 11)]:
        (xa, ma), (xb, mb) = a.item(index, variant), b.item(index, variant)
        assert torch.equal(xa, xb) and torch.equal(ma, mb)
    other = TileDataset(shared_data / "openearthmap", crop=64, seed=8)
    assert not torch.equal(a.item(0, 0)[0], other.item(0, 0)[0])
    variants = {a.item(2, v)[0].flatten()[:64].sum().item() for v in range(8)}
    assert len(variants) > 1, "flips and rotations should change with the variant"


def test_openearthmap_training_crops_avoid_heldout_square(shared_data: Path):
    crop = 128
    train_set = TileDataset(shared_data / "openearthmap", crop=crop, seed=0)
    heldout = TileDataset(shared_data / "openearthmap", crop=crop, seed=0, split="heldout")
    for index in range(300):
        pair, row, col = train_set.crop_box(index)
        assert row + crop <= pair.height - HELDOUT_SIZE or col + crop <= pair.width - HELDOUT_SIZE
        pair, row, col = heldout.crop_box(index)
        assert row >= pair.height - HELDOUT_SIZE and col >= pair.width - HELDOUT_SIZE


def test_diffusion_overfits_eight_real_crops(shared_data: Path, tmp_path: Path):
    torch.manual_seed(0)
    dataset = TileDataset(shared_data / "openearthmap", crop=64, seed=0, length=8)
    model = SemanticLDM(preset("tiny"))
    out = tmp_path / "run"
    trained = train_diffusion(
        model, dataset, 60, 4, 3e-3, out, checkpoint_every=30, seed=0, progress=False
    )
    losses = [loss for _, loss in read_losses(out)]
    assert len(losses) == 60
    assert mean(losses[-10:]) < 0.9 * mean(losses[:10])
    assert (out / "checkpoint-30" / "preview.png").is_file()
    reloaded = load_model(out)
    for key, value in trained.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key
    summary = reloaded.training_summary["diffusion"][-1]
    assert summary["steps"] == 60 and summary["data"]["layout"] == "openearthmap"


def test_cli_resume_continues_from_checkpoint_step(shared_data: Path, tmp_path: Path):
    data = str(shared_data / "openearthmap")
    common = ["--preset", "tiny", "--crop", "32", "--batch-size", "2", "--lr", "1e-3"]
    common += ["--checkpoint-every", "5", "--device", "cpu", "-q"]
    runner = CliRunner()

    def run(out: Path, steps: int, *extra: str) -> None:
        result = runner.invoke(
            train, ["diffusion", data, *common, "--steps", str(steps), "-o", str(out), *extra]
        )
        assert result.exit_code == 0, result.output

    run(tmp_path / "a", 10)
    assert sorted(p.name for p in (tmp_path / "a").glob("checkpoint-*")) == [
        "checkpoint-10",
        "checkpoint-5",
    ]
    refused = runner.invoke(train, ["diffusion", data, *common, "-o", str(tmp_path / "a")])
    assert isinstance(refused.exception, InputError)  # needs --resume or --overwrite
    bad_crop = ["diffusion", data, "--preset", "tiny", "--crop", "30", "-o", str(tmp_path / "c")]
    assert isinstance(runner.invoke(train, bad_crop).exception, InputError)
    assert not (tmp_path / "c").exists()
    run(tmp_path / "a", 15, "--resume")
    state = json.loads((tmp_path / "a" / "checkpoint-15" / "state.json").read_text())
    assert state["step"] == 15
    resumed = read_losses(tmp_path / "a")
    assert [step for step, _ in resumed] == list(range(1, 16))
    # The same 15 steps without a break draw the same batches and reach the same losses.
    run(tmp_path / "b", 15)
    straight = read_losses(tmp_path / "b")
    assert [loss for _, loss in resumed] == pytest.approx([loss for _, loss in straight], rel=1e-4)
    run(tmp_path / "b", 5, "--overwrite")  # a model folder (geochange.json) may be replaced
    assert [step for step, _ in read_losses(tmp_path / "b")] == list(range(1, 6))


@pytest.mark.parametrize(
    "changes",
    [
        {"autoencoder": "AutoencoderKL"},
        {"autoencoder": "VQModel", "num_vq_embeddings": 16},
        {"autoencoder": "AutoencoderTiny", "ae_block_out_channels": (8, 8)},
    ],
)
def test_autoencoder_loss_reaches_the_encoder(changes: dict):
    model = SemanticLDM(preset("tiny").with_(**changes))
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    autoencoder_loss(model, images, torch.Generator().manual_seed(0)).backward()
    grads = [p.grad for n, p in model.vae.named_parameters() if n.startswith("encoder")]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_reconstruction_loss_charges_a_blur_for_its_lost_edges():
    """A 3x3 box blur of a checkerboard and a uniform shift: only the blur loses edges, so only
    the blur pays more than its pixel error."""
    board = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 1.0 - 0.5
    images = board.expand(1, 3, 16, 16)
    blurred = torch.nn.functional.avg_pool2d(
        images, 3, stride=1, padding=1, count_include_pad=False
    )

    def pixel_cost(decoded: torch.Tensor) -> torch.Tensor:
        error = decoded - images
        return error.abs().mean() + error.square().mean()

    shift = images + 0.3
    assert reconstruction_loss(shift, images) == pytest.approx(pixel_cost(shift).item())
    assert reconstruction_loss(blurred, images) > pixel_cost(blurred) + 0.2


def test_latent_cache_encodes_the_augmented_crops(shared_data: Path):
    dataset = TileDataset(shared_data / "openearthmap", crop=32, seed=0, length=4)
    model = SemanticLDM(preset("patch").with_(ae_block_out_channels=(8, 8, 8, 8)))
    model.vae.fit(torch.stack([dataset.unaugmented(i)[0] for i in range(4)]))
    cache = LatentCache(model, dataset, torch.device("cpu"))
    variant = next(v for v in range(50) if dataset.augmentation(0, v) != (0, False))
    latents, masks = cache([0, 1], variant)
    assert latents.shape == (2, 16, 4, 4) and masks.shape == (2, 32, 32)
    image, mask = dataset.item(0, variant)
    assert torch.equal(masks[0], mask)
    assert torch.equal(latents[0], model.encode(image[None])[0])
    # A patch code's cells encode oriented patches: turning the latent grid is not the same.
    k, flip = dataset.augmentation(0, variant)
    unturned = augment(model.encode(dataset.unaugmented(0)[0][None])[0], k, flip)
    assert (unturned - latents[0]).abs().max() > 0.5
    assert torch.equal(cache([0], variant)[0][0], latents[0])  # cached, not drawn again
    assert len(cache.cache) == 2


def test_cli_autoencoder_then_diffusion_on_plain_pairs(shared_data: Path, tmp_path: Path):
    data = str(shared_data / "second_examples")
    common = ["--crop", "32", "--batch-size", "2", "--lr", "3e-3", "--device", "cpu", "-q"]
    runner = CliRunner()
    ae = tmp_path / "ae"
    args = ["autoencoder", data, "--preset", "tiny", "--steps", "30", "--checkpoint-every", "30"]
    result = runner.invoke(train, [*args, *common, "-o", str(ae)])
    assert result.exit_code == 0, result.output
    losses = [loss for _, loss in read_losses(ae)]
    assert mean(losses[-5:]) < mean(losses[:5])
    assert (ae / "checkpoint-30" / "preview.png").is_file()
    assert load_model(ae).training_summary["autoencoder"][-1]["data"]["layout"] == "plain"
    diff = tmp_path / "diff"
    args = ["diffusion", data, "--model", str(ae), "--steps", "4", "--checkpoint-every", "4"]
    args.append("--cache-latents")
    result = runner.invoke(train, [*args, *common, "-o", str(diff)])
    assert result.exit_code == 0, result.output
    trained = load_model(diff)
    assert set(trained.training_summary) == {"autoencoder", "diffusion"}
    vae_before = load_model(ae).vae.state_dict()
    for key, value in trained.vae.state_dict().items():
        assert torch.equal(value, vae_before[key]), f"the frozen autoencoder changed: {key}"


def test_default_crops_overlap_at_a_quarter_crop_stride(shared_data):
    dataset = TileDataset(shared_data / "openearthmap", crop=256, seed=0)
    assert len(dataset) == 512, "two 1024² tiles minus the held-out corners, stride 64 px"
    corners = {tuple(dataset.crop_box(i)[1:]) for i in range(len(dataset))}
    assert len(corners) > 400


def test_mixed_folders_are_drawn_equally_often(shared_data: Path):
    folders = [shared_data / "openearthmap", shared_data / "dubai"]
    mixed = open_tiles(folders, crop=64, seed=2)
    assert isinstance(mixed, MixedTiles)
    oem, dubai = (TileDataset(f, crop=64, seed=2) for f in folders)
    assert len(mixed) == 2 * max(len(oem), len(dubai))
    # Even indices come from the first folder, odd ones from the second, wrapping the smaller.
    wrapped = len(oem) + 3
    assert torch.equal(mixed.item(2 * wrapped, 1)[0], oem.item(3, 1)[0])
    assert torch.equal(mixed.item(2 * 5 + 1, 1)[0], dubai.item(5, 1)[0])
    info = mixed.split_info()
    assert [f["layout"] for f in info["folders"]] == ["openearthmap", "dubai"]
    assert isinstance(open_tiles(folders[:1], crop=64), TileDataset)


def test_decoder_only_keeps_the_latents_and_records_stages(shared_data: Path, tmp_path: Path):
    data = str(shared_data / "second_examples")
    common = ["--crop", "32", "--batch-size", "2", "--lr", "3e-3", "--device", "cpu", "-q"]
    runner = CliRunner()
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["autoencoder", data, "--preset", "tiny", "--steps", "3", "--checkpoint-every", "3"]
    assert runner.invoke(train, [*args, *common, "-o", str(first)]).exit_code == 0
    args = ["autoencoder", data, "--model", str(first), "--decoder-only", "--steps", "3"]
    result = runner.invoke(train, [*args, "--checkpoint-every", "3", *common, "-o", str(second)])
    assert result.exit_code == 0, result.output
    before, after = load_model(first).vae.state_dict(), load_model(second).vae.state_dict()
    for key, value in after.items():
        same = torch.equal(value, before[key])
        assert same == key.startswith(("encoder.", "quant_conv.")), key
    stages = load_model(second).training_summary["autoencoder"]
    assert [(s["steps"], s["decoder_only"]) for s in stages] == [(3, False), (3, True)]


class _InterruptAfter:
    """A dataset that raises KeyboardInterrupt (as SIGTERM does in the CLI) after some reads."""

    def __init__(self, dataset: TileDataset, reads: int) -> None:
        self.dataset, self.reads = dataset, reads

    def __len__(self) -> int:
        return len(self.dataset)

    def item(self, index: int, variant: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.reads -= 1
        if self.reads < 0:
            raise KeyboardInterrupt
        return self.dataset.item(index, variant)

    def split_info(self) -> dict:
        return self.dataset.split_info()


def test_an_interrupted_run_keeps_its_steps_and_resumes(shared_data: Path, tmp_path: Path):
    """A time budget's SIGTERM lands between checkpoints: the steps made so far are saved."""
    dataset = TileDataset(shared_data / "openearthmap", crop=32, seed=0, length=4)
    model = SemanticLDM(preset("tiny"))
    kwargs = {"batch_size": 2, "lr": 1e-3, "out_dir": tmp_path, "checkpoint_every": 100}
    with pytest.raises(KeyboardInterrupt):
        # 4 reads for the latent and layout statistics, then 3 steps of 2 crops
        train_diffusion(model, _InterruptAfter(dataset, 4 + 2 * 3), steps=10, **kwargs)
    assert [p.name for p in tmp_path.glob("checkpoint-*")] == ["checkpoint-3"]
    assert [step for step, _ in read_losses(tmp_path)] == [1, 2, 3]
    train_diffusion(SemanticLDM(preset("tiny")), dataset, steps=5, resume=True, **kwargs)
    assert [step for step, _ in read_losses(tmp_path)] == [1, 2, 3, 4, 5]


def test_a_new_patch_autoencoder_starts_as_the_linear_code_of_the_crops(
    shared_data: Path, tmp_path: Path
):
    """``train autoencoder --preset patch`` fits the new autoencoder to the crops before its
    first step: after one step at a negligible learning rate it already reconstructs an image
    of the real pairs well, where a random one does not."""
    data = str(shared_data / "second_examples")
    args = ["autoencoder", data, "--preset", "patch", "--steps", "1", "--checkpoint-every", "1"]
    args += ["--crop", "64", "--batch-size", "2", "--lr", "1e-9", "--device", "cpu", "-q"]
    result = CliRunner().invoke(train, [*args, "-o", str(tmp_path / "ae")])
    assert result.exit_code == 0, result.output
    image = Image.open(next((shared_data / "second_examples" / "second" / "img_B").glob("*")))
    pixels = torch.from_numpy(np.array(image)[:64, :64]).permute(2, 0, 1)
    images = pixels[None].float() / 127.5 - 1

    def psnr(model: SemanticLDM) -> float:
        with torch.no_grad():
            decoded = model.decode(model.encode(images))
        return float(10 * torch.log10(4 / (decoded - images).square().mean()))

    assert psnr(load_model(tmp_path / "ae")) > 24
    torch.manual_seed(0)
    assert psnr(SemanticLDM(preset("patch"))) < 18


def test_adversarial_training_checkpoints_its_critic_and_resumes_exactly(
    shared_data: Path, tmp_path: Path
):
    data = str(shared_data / "openearthmap")
    common = ["--preset", "tiny", "--crop", "32", "--batch-size", "2", "--lr", "1e-3"]
    common += ["--checkpoint-every", "4", "--device", "cpu", "-q"]
    runner = CliRunner()

    def run(out: Path, steps: int, *extra: str) -> None:
        args = ["autoencoder", data, *common, "--steps", str(steps), "-o", str(out), *extra]
        result = runner.invoke(train, args)
        assert result.exit_code == 0, result.output

    adversarial = ("--adversarial", "0.5", "--adversarial-start", "2")
    run(tmp_path / "a", 4, *adversarial)
    critic = torch.load(tmp_path / "a" / "checkpoint-4" / "critic.pt", weights_only=True)
    assert critic["steps"] == 4
    run(tmp_path / "a", 8, *adversarial, "--resume")
    run(tmp_path / "b", 8, *adversarial)
    resumed, straight = read_losses(tmp_path / "a"), read_losses(tmp_path / "b")
    assert [loss for _, loss in resumed] == pytest.approx([loss for _, loss in straight], rel=1e-4)
    stage = load_model(tmp_path / "b").training_summary["autoencoder"][-1]
    assert stage["adversarial"] == {"weight": 0.5, "start": 2}
    # Without the critic the same steps reach other weights: its term reaches the decoder.
    run(tmp_path / "c", 8)
    plain, fought = load_model(tmp_path / "c").vae, load_model(tmp_path / "b").vae
    differences = [
        (fought.state_dict()[key] - value).abs().max().item()
        for key, value in plain.state_dict().items()
        if key.startswith("decoder.")
    ]
    assert max(differences) > 1e-4
    # A run checkpointed without a critic cannot be resumed with one.
    refused = runner.invoke(
        train,
        ["autoencoder", data, *common, "--steps", "12", "-o", str(tmp_path / "c"), "--resume"]
        + list(adversarial),
    )
    assert isinstance(refused.exception, InputError)
    assert "no critic state" in str(refused.exception)


def test_latent_normalization_is_measured_on_crops_of_every_source(tmp_path: Path):
    """A pack holds its sources one after another; measured on its first crops only, the
    latents of a dark source would set a scale that leaves a bright one far from unit variance."""
    from geochange.training.crops import spread_indices
    from geochange.training.packed import (
        IMAGE_FILTER,
        PACK_FORMAT,
        PACK_VERSION,
        PackedData,
        encode_images,
    )
    from geochange.training.train import spread_crops

    assert spread_indices(100, 5) == [0, 25, 50, 74, 99]
    assert spread_indices(3, 16) == [0, 1, 2]
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 20, (40, 3, 32, 32), dtype=np.uint8)
    bright = rng.integers(236, 256, (40, 3, 32, 32), dtype=np.uint8)
    metadata = {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "crop_px": 32,
        "image_filter": IMAGE_FILTER,
        "gsd_m": 0.5,
        "sources": [{"folder": "dark"}, {"folder": "bright"}],
        "mixing": "made up",
        "heldout": "none",
    }
    np.savez_compressed(
        tmp_path / "pack.npz",
        images=encode_images(np.concatenate([dark, bright])),
        masks=rng.integers(0, 8, (80, 32, 32), dtype=np.uint8),
        source=np.repeat(np.arange(2, dtype=np.uint16), 40),
        metadata=json.dumps(metadata),
    )
    dataset = PackedData(tmp_path / "pack.npz")
    torch.manual_seed(0)
    small = dict(ae_block_out_channels=(8,) * 4, unet_block_out_channels=(32, 32))
    model = SemanticLDM(preset("patch").with_(**small, unet_norm_num_groups=8))
    model.vae.fit(spread_crops(dataset, 16))  # a patch code's first channel is brightness
    model = train_diffusion(
        model,
        dataset,
        1,
        2,
        1e-4,
        tmp_path / "run",
        checkpoint_every=1,
        normalize_latents=True,
        progress=False,
    )
    with torch.no_grad():
        images = torch.stack([dataset.unaugmented(i)[0] for i in range(80)])
        latents = model.encode(images)
    assert latents.square().mean().item() == pytest.approx(1.0, abs=0.15)
