"""Training loops for the autoencoder and the diffusion model, with checkpoints and resume.

Both loops share one driver: AdamW, an EMA copy of the weights (the copy is what gets saved as
the model), a checkpoint every N steps (``out_dir/checkpoint-STEP/``: weights, EMA weights,
optimizer, ``state.json``), ``out_dir/losses.csv`` (step,loss), a tqdm bar on stderr and a PNG
preview grid per checkpoint. Every random draw of step ``s`` comes from generators seeded with
``(seed, s)``, so the checkpoint's step is the whole RNG state: a resumed run draws what an
uninterrupted one would have.

Nothing here imports a GIS package: crops come from a ``CropSource`` (a pack on a machine
without them), and previews are written with Pillow, which diffusers needs anyway.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, DDIMScheduler, VQModel
from PIL import Image
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from geochange.classes import NODATA, PALETTE
from geochange.errors import InputError
from geochange.model import SemanticLDM, one_hot, pick_device
from geochange.training.adversarial import Adversary
from geochange.training.crops import CropSource, augment, spread_indices

LOSSES_FILE = "losses.csv"
STATE_FILE = "state.json"
PREVIEW_STEPS = 10
"""DDIM steps of the preview samples: enough to see whether the layout follows the mask."""
PREVIEW_COUNT = 4
LAYOUT_STATS_CROPS = 32
KL_WEIGHT = 1e-6
GRADIENT_WEIGHT = 1.0
"""Weight of the image-gradient term: L1 and L2 alone are met best by a blur, which the
gradient term penalizes (the sharpness ratio of the quality report)."""
LATENT_MAKERS = ("encoder.", "quant_conv.", "quantize.")
"""Autoencoder parameter prefixes that shape the latents (frozen by ``decoder_only``)."""

Log = Callable[[str], None]
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
PreviewFn = Callable[[SemanticLDM, torch.Tensor, torch.Tensor], list[torch.Tensor]]
Batches = Callable[[Sequence[int], int], tuple[torch.Tensor, torch.Tensor]]
"""(crop indices, variant) -> (images or latents, masks)."""


def train_diffusion(
    model: SemanticLDM,
    dataset: CropSource,
    steps: int,
    batch_size: int,
    lr: float,
    out_dir: str | Path,
    checkpoint_every: int,
    seed: int = 0,
    resume: bool = False,
    log: Log | None = None,
    ema_decay: float = 0.999,
    device: str = "cpu",
    progress: bool = True,
    cache_latents: bool = False,
    normalize_latents: bool | None = None,
) -> SemanticLDM:
    """Train the mask encoder and UNet (the autoencoder stays frozen); returns the EMA model.

    ``normalize_latents`` measures the latents' per-channel mean and overall spread on training
    crops first and sets the model's latent shift and scale (default: only when the model has
    had no diffusion training; a resumed run keeps the checkpoint's).

    ``cache_latents`` encodes each crop once per rotation and flip (posterior mode, no KL
    sampling) and keeps the latents, instead of encoding every augmented crop at every step.
    At the end the per-class latent statistics for layout-anchored sampling are measured on
    training crops and the EMA model is saved to ``out_dir``.
    """
    model.vae.requires_grad_(False)
    params = [p for n, p in model.named_parameters() if not n.startswith("vae.")]
    target = pick_device(device)
    # The same crops, spread over every source, set the latent normalization now and the
    # layout statistics at the end.
    images, masks = _batches(dataset)(spread_indices(len(dataset), LAYOUT_STATS_CROPS), 0)
    if normalize_latents is None:
        normalize_latents = "diffusion" not in model.training_summary
    if normalize_latents:
        model.normalize_latents(images)
        shift = ", ".join(f"{v:.3f}" for v in model.config.latent_shift)
        (log or _quiet)(
            f"latents normalized: shift ({shift}), scale {model.config.latent_scale:.4g}"
        )
    batches = LatentCache(model, dataset, target) if cache_latents else _batches(dataset)
    ema = _run(
        "diffusion",
        model,
        params,
        model.loss,
        _diffusion_preview,
        dataset,
        batches,
        steps,
        batch_size,
        lr,
        Path(out_dir),
        checkpoint_every,
        seed,
        resume,
        log or _quiet,
        ema_decay,
        target,
        progress,
    )
    device_ = ema.class_mean.device
    ema.measure_layout_stats(ema.encode(images.to(device_)), masks.to(device_))
    return _save_final(ema, out_dir)


def train_autoencoder(
    model: SemanticLDM,
    dataset: CropSource,
    steps: int,
    batch_size: int,
    lr: float,
    out_dir: str | Path,
    checkpoint_every: int,
    seed: int = 0,
    resume: bool = False,
    log: Log | None = None,
    ema_decay: float = 0.999,
    device: str = "cpu",
    progress: bool = True,
    decoder_only: bool = False,
    adversarial: float = 0.0,
    adversarial_start: int = 0,
) -> SemanticLDM:
    """Train the autoencoder to reconstruct image crops (L1 + L2, plus the KL or VQ term);
    returns the EMA model, saved to ``out_dir`` with its untouched mask encoder and UNet.

    ``decoder_only`` freezes everything that makes the latents (encoder, quantizer), so a
    diffusion model already trained on them stays valid while the images get sharper.
    ``adversarial`` (> 0) adds a patch critic's term of that relative weight, felt by the
    autoencoder once the critic has trained ``adversarial_start`` steps (``adversarial.py``).
    """
    model.vae.requires_grad_(True)
    if decoder_only:
        for name, param in model.vae.named_parameters():
            param.requires_grad_(not name.startswith(LATENT_MAKERS))
    params = [p for p in model.vae.parameters() if p.requires_grad]
    target = pick_device(device)
    adversary = Adversary(adversarial, adversarial_start, lr, target) if adversarial else None
    last_layer = [p for p in model.vae.decoder.parameters() if p.ndim == 4][-1]

    def loss(images: torch.Tensor, _masks: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        decoded, extra = autoencode(model, images, gen)
        reconstruction = reconstruction_loss(decoded, images) + extra
        if adversary is None:
            return reconstruction
        adversary.critic_step(images, decoded)
        return reconstruction + adversary.decoder_term(decoded, reconstruction, last_layer)

    ema = _run(
        "autoencoder",
        model,
        params,
        loss,
        _autoencoder_preview,
        dataset,
        _batches(dataset),
        steps,
        batch_size,
        lr,
        Path(out_dir),
        checkpoint_every,
        seed,
        resume,
        log or _quiet,
        ema_decay,
        target,
        progress,
        companions={"critic": adversary} if adversary else {},
    )
    stage = ema.training_summary["autoencoder"][-1]
    stage["decoder_only"] = decoder_only
    if adversary:
        stage["adversarial"] = {"weight": adversarial, "start": adversarial_start}
    return _save_final(ema, out_dir)


def autoencode(
    model: SemanticLDM, images: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images through encode and decode (not ``forward``: AutoencoderTiny's rounds its latents
    to bytes, which would cut the gradient), with the KL or VQ term (else zero)."""
    vae = model.vae
    extra = torch.zeros((), device=images.device)
    if isinstance(vae, AutoencoderKL):
        posterior = vae.encode(images).latent_dist
        decoded = vae.decode(posterior.sample(generator)).sample
        extra = KL_WEIGHT * posterior.kl().mean()
    elif isinstance(vae, VQModel):
        out = vae.decode(vae.encode(images).latents)
        decoded, extra = out.sample, out.commit_loss.mean()
    else:
        decoded = vae.decode(vae.encode(images).latents).sample
    return decoded, extra


def autoencoder_loss(
    model: SemanticLDM, images: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Reconstruction loss of ``autoencode``, plus the KL or VQ term."""
    decoded, extra = autoencode(model, images, generator)
    return reconstruction_loss(decoded, images) + extra


def reconstruction_loss(decoded: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """L1 + L2 of the pixels and L1 of their horizontal and vertical differences: a blur that
    keeps the means costs through its lost edges, a uniform shift in level only through L1/L2.

    (A term matching the local edge strength instead of the edges themselves was tried: it
    raised the sharpness ratio to 0.89 by drawing a regular stripe texture into smooth land.)"""
    error = decoded - images
    edges = (error.diff(dim=-1).abs().mean() + error.diff(dim=-2).abs().mean()) / 2
    return error.abs().mean() + error.square().mean() + GRADIENT_WEIGHT * edges


def _run(
    kind: str,
    model: SemanticLDM,
    params: list[torch.nn.Parameter],
    loss_fn: LossFn,
    preview_fn: PreviewFn,
    dataset: CropSource,
    batches: Batches,
    steps: int,
    batch_size: int,
    lr: float,
    out_dir: Path,
    checkpoint_every: int,
    seed: int,
    resume: bool,
    log: Log,
    ema_decay: float,
    device: torch.device,
    progress: bool,
    companions: dict[str, Adversary] | None = None,
) -> SemanticLDM:
    """The shared loop; returns the EMA copy of ``model``. ``companions`` train beside the
    model inside ``loss_fn``; their state is checkpointed with it."""
    companions = companions or {}
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to(device).train()
    # Not deepcopy: the copy's UNet hooks would still feed on the original's mask injection.
    ema = SemanticLDM(model.config).to(device).requires_grad_(False).eval()
    ema.load_state_dict(model.state_dict())
    optimizer = torch.optim.AdamW(params, lr=lr)
    start, elapsed = 0, 0.0
    latest = latest_checkpoint(out_dir) if resume else None
    if latest is not None:
        start, elapsed = _load_checkpoint(latest, model, ema, optimizer, device, companions)
        log(f"resuming from {latest.name} at step {start}")
    elif resume:
        log(f"no checkpoint in {out_dir}; starting from step 0")
    _truncate_losses(out_dir / LOSSES_FILE, start)
    began = time.monotonic() - elapsed
    bar = tqdm(total=steps, initial=start, file=sys.stderr, disable=not progress, desc=kind)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    done = saved = start
    with (out_dir / LOSSES_FILE).open("a", newline="") as losses:
        writer = csv.writer(losses)

        def checkpoint(step: int) -> Path:
            """Weights and state, then a preview of the same first crops every time (so
            previews show progress; the state is safe before the preview is drawn)."""
            losses.flush()
            folder = _save_checkpoint(out_dir, step, model, ema, optimizer, began, seed, companions)
            shown = _batches(dataset)(range(min(PREVIEW_COUNT, len(dataset))), 0)
            _write_sheet(folder / "preview.png", preview_fn(ema, *(t.to(device) for t in shown)))
            return folder

        try:
            for step in range(start, steps):
                draw = np.random.default_rng([seed, step])
                inputs, masks = batches(draw.integers(0, len(dataset), batch_size).tolist(), step)
                generator = torch.Generator(device).manual_seed(int(draw.integers(2**62)))
                with autocast:
                    loss = loss_fn(inputs.to(device), masks.to(device), generator)
                if not torch.isfinite(loss):
                    raise InputError(
                        f"the {kind} loss is {loss.item()} at step {step + 1}",
                        "lower --lr, or --resume from an earlier checkpoint with a lower --lr",
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                _update_ema(ema, model, ema_decay, step)
                writer.writerow([step + 1, f"{loss.item():.6g}"])
                bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
                bar.update(1)
                done = step + 1
                if done % checkpoint_every == 0 or done == steps:
                    saved = done
                    log(f"wrote {checkpoint(done)}")
        except KeyboardInterrupt:
            # Ctrl-C, or SIGTERM from a time budget (`timeout`): keep the steps made so far.
            if done > saved:
                log(f"interrupted: wrote {checkpoint(done)}; continue with --resume")
            raise
    bar.close()
    # A model trained in stages (more steps, a decoder refit) keeps one record per stage.
    earlier = model.training_summary.get(kind, [])
    ema.training_summary = {
        **model.training_summary,
        kind: [
            *([earlier] if isinstance(earlier, dict) else earlier),
            {
                "steps": steps,
                "batch_size": batch_size,
                "lr": lr,
                "ema_decay": ema_decay,
                "seed": seed,
                "device": device.type,
                "hardware": _hardware(device),
                "seconds": round(time.monotonic() - began, 1),
                "data": dataset.split_info(),
            },
        ],
    }
    return ema


def _hardware(device: torch.device) -> str:
    """What trained, for the model card: the GPU's name, or the CPU cores torch used."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{torch.get_num_threads()} CPU threads"


def _batches(dataset: CropSource) -> Batches:
    """Batches of augmented crops read from the files."""

    def read(indices: Sequence[int], variant: int) -> tuple[torch.Tensor, torch.Tensor]:
        items = [dataset.item(i, variant) for i in indices]
        return torch.stack([x for x, _ in items]), torch.stack([m for _, m in items])

    return read


class LatentCache:
    """Batches of latents + masks: each crop is encoded once per rotation and flip it is drawn
    with, on first use. (Rotating and flipping a latent instead would not rotate what each
    latent cell encodes: a ``PatchAutoencoder``'s cells would decode to unturned patches in a
    turned grid, and the diffusion model would learn mosaics.)"""

    def __init__(self, model: SemanticLDM, dataset: CropSource, device: torch.device) -> None:
        self.model, self.dataset, self.device = model, dataset, device
        self.cache: dict[tuple[int, int, bool], tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, indices: Sequence[int], variant: int) -> tuple[torch.Tensor, torch.Tensor]:
        latents, masks = [], []
        for i in indices:
            key = (i, *self.dataset.augmentation(i, variant))
            if key not in self.cache:
                image, mask = self.dataset.unaugmented(i)
                image, mask = augment(image, *key[1:]), augment(mask, *key[1:])
                latent = self.model.encode(image[None].to(self.device))[0].cpu()
                self.cache[key] = (latent, mask.to(torch.uint8))  # classes and NODATA fit a byte
            latent, mask = self.cache[key]
            latents.append(latent)
            masks.append(mask.long())
        return torch.stack(latents), torch.stack(masks)


def _update_ema(ema: SemanticLDM, model: SemanticLDM, decay: float, step: int) -> None:
    """EMA with warm-up (as in diffusers' EMAModel), so short runs are not stuck at init."""
    rate = 1.0 - min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters(), strict=True):
            e.lerp_(p.detach(), rate)
        for e, b in zip(ema.buffers(), model.buffers(), strict=True):
            e.copy_(b)


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The checkpoint folder with the highest step, if any."""
    found = [p for p in out_dir.glob("checkpoint-*") if (p / STATE_FILE).is_file()]
    return max(found, key=lambda p: int(p.name.split("-")[1]), default=None)


def _save_checkpoint(
    out_dir: Path,
    step: int,
    model: SemanticLDM,
    ema: SemanticLDM,
    optimizer: torch.optim.Optimizer,
    began: float,
    seed: int,
    companions: dict[str, Adversary],
) -> Path:
    folder = out_dir / f"checkpoint-{step}"
    folder.mkdir(exist_ok=True)
    save_file(_contiguous(model.state_dict()), folder / "model.safetensors")
    save_file(_contiguous(ema.state_dict()), folder / "ema.safetensors")
    torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    for name, companion in companions.items():
        torch.save(companion.state_dict(), folder / f"{name}.pt")
    state = {"step": step, "seed": seed, "seconds": time.monotonic() - began}
    # Written last: a folder without it is an interrupted checkpoint and is ignored.
    (folder / STATE_FILE).write_text(json.dumps(state) + "\n")
    return folder


def _load_checkpoint(
    folder: Path,
    model: SemanticLDM,
    ema: SemanticLDM,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    companions: dict[str, Adversary],
) -> tuple[int, float]:
    model.load_state_dict(load_file(folder / "model.safetensors", device=str(device)))
    ema.load_state_dict(load_file(folder / "ema.safetensors", device=str(device)))
    optimizer.load_state_dict(
        torch.load(folder / "optimizer.pt", map_location=device, weights_only=True)
    )
    for name, companion in companions.items():
        if not (folder / f"{name}.pt").is_file():
            raise InputError(
                f"checkpoint {folder} has no {name} state, so it was trained without it",
                "resume with the options it was trained with, or start anew without --resume",
            )
        companion.load_state_dict(
            torch.load(folder / f"{name}.pt", map_location=device, weights_only=True)
        )
    state = json.loads((folder / STATE_FILE).read_text())
    return int(state["step"]), float(state["seconds"])


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous() for k, v in state.items()}


def _truncate_losses(path: Path, step: int) -> None:
    """Keep the logged losses up to ``step``, so a resumed log has each step once."""
    rows = []
    if path.is_file():
        with path.open(newline="") as f:
            rows = [r for r in csv.reader(f) if r and r[0] != "step" and int(r[0]) <= step]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["step", "loss"], *rows])


def read_losses(out_dir: str | Path) -> list[tuple[int, float]]:
    """The (step, loss) rows of a training folder's log."""
    with (Path(out_dir) / LOSSES_FILE).open(newline="") as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


def _save_final(model: SemanticLDM, out_dir: str | Path) -> SemanticLDM:
    model.cpu().save_pretrained(out_dir)
    return model


@torch.no_grad()
def _diffusion_preview(
    model: SemanticLDM, images: torch.Tensor, masks: torch.Tensor
) -> list[torch.Tensor]:
    """Rows: mask colours, real crop, a sample from a short DDIM run from pure noise."""
    scheduler = DDIMScheduler.from_config(model.scheduler.config)
    scheduler.set_timesteps(PREVIEW_STEPS)
    f = model.config.downsampling
    shape = (len(images), model.config.latent_channels, masks.shape[-2] // f, masks.shape[-1] // f)
    generator = torch.Generator(images.device).manual_seed(0)
    z = torch.randn(shape, generator=generator, device=images.device)
    onehot = one_hot(masks)
    for t in scheduler.timesteps:
        z = scheduler.step(model.denoise(z, t, onehot), t, z).prev_sample
    return [_colour(masks), _rgb(images), _rgb(model.decode(z))]


@torch.no_grad()
def _autoencoder_preview(
    model: SemanticLDM, images: torch.Tensor, _masks: torch.Tensor
) -> list[torch.Tensor]:
    """Rows: input crops, their reconstructions."""
    return [_rgb(images), _rgb(model.decode(model.encode(images)))]


def _rgb(images: torch.Tensor) -> torch.Tensor:
    """Model images in [-1, 1] to uint8."""
    return ((images.float().cpu() + 1.0) * 127.5).clamp(0, 255).to(torch.uint8)


def _colour(masks: torch.Tensor) -> torch.Tensor:
    """Class indices (N, h, w) to (N, 3, h, w) uint8 in the class palette, no data black."""
    lookup = torch.zeros(256, 3, dtype=torch.uint8)
    lookup[: len(PALETTE)] = torch.tensor(PALETTE, dtype=torch.uint8)
    lookup[NODATA] = 0
    return lookup[masks.cpu().long()].permute(0, 3, 1, 2)


def _write_sheet(path: Path, rows: list[torch.Tensor]) -> None:
    """Rows of (N, 3, h, w) uint8 crops, side by side, as one PNG."""
    sheet = torch.cat([torch.cat(list(row), dim=-1) for row in rows], dim=-2)
    Image.fromarray(sheet.permute(1, 2, 0).contiguous().numpy()).save(path)


def _quiet(_message: str) -> None:
    """The default log: say nothing."""
