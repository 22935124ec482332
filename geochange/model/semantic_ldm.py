"""The semantic latent diffusion model: autoencoder, mask encoder, mask-conditioned UNet, scheduler.

The parts are stock diffusers models so that a folder on disk fully describes a model; the only
geochange-specific weights are the mask encoder and the per-resolution mask projections.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, AutoencoderTiny, DDIMScheduler, UNet2DModel, VQModel
from diffusers.utils import is_accelerate_available
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from geochange.classes import CLASS_NAMES, NODATA, NUM_CLASSES
from geochange.errors import InputError
from geochange.model.config import ModelConfig
from geochange.model.patch_autoencoder import PatchAutoencoder

AUTOENCODER_CLASSES = {
    "VQModel": VQModel,
    "AutoencoderKL": AutoencoderKL,
    "AutoencoderTiny": AutoencoderTiny,
    "PatchAutoencoder": PatchAutoencoder,
}
MASK_WEIGHTS = "mask.safetensors"
METADATA = "geochange.json"
MODEL_CARD = "MODEL_CARD.md"
REQUIRED_FILES = (
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "scheduler/scheduler_config.json",
    MASK_WEIGHTS,
    METADATA,
)

Autoencoder = VQModel | AutoencoderKL | AutoencoderTiny | PatchAutoencoder
MASK_INPUT_CHANNELS = NUM_CLASSES + 1
"""One-hot classes plus a "dropped" channel that marks the unconditional input for guidance."""


class MaskEncoder(nn.Module):
    """One-hot mask at image resolution -> features at latent resolution (strided convs)."""

    def __init__(self, downsampling: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        steps = int(math.log2(downsampling))
        if 2**steps != downsampling:
            raise ValueError(f"downsampling must be a power of two, got {downsampling}")
        layers: list[nn.Module] = [nn.Conv2d(MASK_INPUT_CHANNELS, hidden, 3, padding=1), nn.SiLU()]
        for _ in range(steps):
            layers += [nn.Conv2d(hidden, hidden, 3, stride=2, padding=1), nn.SiLU()]
        layers.append(nn.Conv2d(hidden, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, mask_onehot: torch.Tensor) -> torch.Tensor:
        return self.net(mask_onehot)


class MaskInjection(nn.Module):
    """1x1 projections of the mask features added to every UNet down and up block output.

    Zero-initialised so that a fresh model starts as the paper's input-only conditioning and
    training grows the per-resolution path (ControlNet-style).
    """

    def __init__(self, mask_channels: int, block_out_channels: tuple[int, ...]) -> None:
        super().__init__()
        self.down = nn.ModuleList(nn.Conv2d(mask_channels, c, 1) for c in block_out_channels)
        self.up = nn.ModuleList(
            nn.Conv2d(mask_channels, c, 1) for c in reversed(block_out_channels)
        )
        for conv in [*self.down, *self.up]:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.features: torch.Tensor | None = None

    def residual(self, proj: nn.Conv2d, like: torch.Tensor) -> torch.Tensor:
        """The projected mask features at the resolution of ``like``."""
        if self.features is None:
            raise RuntimeError("mask features must be set before the UNet is called")
        feats = self.features
        if feats.shape[-2:] != like.shape[-2:]:
            feats = F.interpolate(feats, size=like.shape[-2:], mode="area")
        return proj(feats)

    def attach(self, unet: UNet2DModel) -> None:
        """Register forward hooks on the UNet's blocks, which add the mask residuals."""
        for block, proj in zip(unet.down_blocks, self.down, strict=True):

            def down_hook(_m, _i, out, proj=proj):
                hidden, skips = out
                res = self.residual(proj, hidden)
                # The last skip is the block output itself: keep the two consistent.
                return hidden + res, (*skips[:-1], skips[-1] + res)

            block.register_forward_hook(down_hook)
        for block, proj in zip(unet.up_blocks, self.up, strict=True):

            def up_hook(_m, _i, out, proj=proj):
                return out + self.residual(proj, out)

            block.register_forward_hook(up_hook)


def build_autoencoder(config: ModelConfig) -> Autoencoder:
    """The autoencoder kind and size named by the config."""
    blocks = config.ae_block_out_channels
    if config.autoencoder == "PatchAutoencoder":
        return PatchAutoencoder(
            factor=config.downsampling,
            latent_channels=config.latent_channels,
            hidden=blocks[0],
            blocks=config.ae_layers_per_block,
        )
    if config.autoencoder == "AutoencoderTiny":
        n = len(blocks)
        return AutoencoderTiny(
            encoder_block_out_channels=blocks,
            decoder_block_out_channels=blocks,
            num_encoder_blocks=(1,) + (config.ae_layers_per_block,) * (n - 1),
            num_decoder_blocks=(config.ae_layers_per_block,) * (n - 1) + (1,),
            latent_channels=config.latent_channels,
        )
    common = dict(
        down_block_types=("DownEncoderBlock2D",) * len(blocks),
        up_block_types=("UpDecoderBlock2D",) * len(blocks),
        block_out_channels=blocks,
        layers_per_block=config.ae_layers_per_block,
        latent_channels=config.latent_channels,
        norm_num_groups=config.ae_norm_num_groups,
    )
    if config.autoencoder == "VQModel":
        return VQModel(
            num_vq_embeddings=config.num_vq_embeddings,
            vq_embed_dim=config.latent_channels,
            **common,
        )
    return AutoencoderKL(**common)


def build_unet(config: ModelConfig) -> UNet2DModel:
    """The denoiser; it sees ``[z_t ; enc(mask)]`` and predicts ε or v for the latent channels."""
    n = len(config.unet_block_out_channels)
    return UNet2DModel(
        in_channels=config.latent_channels + config.mask_channels,
        out_channels=config.latent_channels,
        down_block_types=("DownBlock2D",) * n,
        up_block_types=("UpBlock2D",) * n,
        block_out_channels=config.unet_block_out_channels,
        layers_per_block=config.unet_layers_per_block,
        norm_num_groups=config.unet_norm_num_groups,
        attention_head_dim=config.attention_head_dim,
        add_attention=config.mid_attention,
    )


def build_scheduler(config: ModelConfig) -> DDIMScheduler:
    """DDIM with the config's betas and objective; no clipping since latents are unbounded."""
    return DDIMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_schedule=config.beta_schedule,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        prediction_type=config.prediction_type,
        clip_sample=False,
        set_alpha_to_one=False,
    )


def one_hot(classes: torch.Tensor) -> torch.Tensor:
    """Class indices (B, H, W) -> (B, 9, H, W) float; ``NODATA`` pixels are all zero."""
    valid = classes != NODATA
    safe = torch.where(valid, classes, torch.zeros_like(classes)).long()
    onehot = F.one_hot(safe, MASK_INPUT_CHANNELS).permute(0, 3, 1, 2).float()
    return onehot * valid.unsqueeze(1)


def dropped_like(mask_onehot: torch.Tensor) -> torch.Tensor:
    """The unconditional input: no class, the "dropped" channel set."""
    out = torch.zeros_like(mask_onehot)
    out[:, NUM_CLASSES] = 1.0
    return out


class SemanticLDM(nn.Module):
    """Mask-conditioned latent diffusion built from diffusers parts.

    Parts can be passed in (loading from a folder) or are built fresh from ``config``.
    """

    def __init__(
        self,
        config: ModelConfig,
        vae: Autoencoder | None = None,
        unet: UNet2DModel | None = None,
        scheduler: DDIMScheduler | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.vae = vae if vae is not None else build_autoencoder(config)
        self.unet = unet if unet is not None else build_unet(config)
        self.scheduler = scheduler if scheduler is not None else build_scheduler(config)
        self.mask_encoder = MaskEncoder(
            config.downsampling, config.mask_hidden, config.mask_channels
        )
        self.injection: MaskInjection | None = None
        if config.mask_every_resolution:
            self.injection = MaskInjection(config.mask_channels, config.unet_block_out_channels)
            self.injection.attach(self.unet)
        # Layout-anchored initialisation: per-class latent statistics measured on training data.
        self.register_buffer("class_mean", torch.zeros(NUM_CLASSES, config.latent_channels))
        self.register_buffer("class_std", torch.ones(NUM_CLASSES, config.latent_channels))
        self.training_summary: dict[str, Any] = {}

    def geochange_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights that are not a diffusers part (saved beside them)."""
        parts = {"mask_encoder": self.mask_encoder}
        if self.injection is not None:
            parts["injection"] = self.injection
        weights = {
            f"{name}.{key}": value.contiguous()
            for name, module in parts.items()
            for key, value in module.state_dict().items()
        }
        weights["layout.class_mean"] = self.class_mean.contiguous()
        weights["layout.class_std"] = self.class_std.contiguous()
        return weights

    def _latent_classes(self, classes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Class indices brought to latent resolution by nearest neighbour."""
        return F.interpolate(classes[:, None].float(), size=size, mode="nearest")[:, 0].long()

    @torch.no_grad()
    def measure_layout_stats(self, latents: torch.Tensor, classes: torch.Tensor) -> None:
        """Store per-class latent mean and std; classes absent from the batch keep N(0, 1)."""
        cls = self._latent_classes(classes, latents.shape[-2:])
        flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        cls = cls.reshape(-1)
        for k in range(NUM_CLASSES):
            values = flat[cls == k]
            if len(values) >= 2:
                self.class_mean[k] = values.mean(0)
                self.class_std[k] = values.std(0)

    def layout_latent(self, classes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A clean latent laid out by the mask from the per-class statistics (no-data: N(0, 1)).

        The sampler noises it to ``layout_start_fraction`` and denoises from there.
        """
        f = self.config.downsampling
        size = (classes.shape[-2] // f, classes.shape[-1] // f)
        cls = self._latent_classes(classes, size)
        valid = cls != NODATA
        safe = torch.where(valid, cls, torch.zeros_like(cls))
        mean = torch.where(valid[..., None], self.class_mean[safe], 0.0).permute(0, 3, 1, 2)
        std = torch.where(valid[..., None], self.class_std[safe], 1.0).permute(0, 3, 1, 2)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        return mean + std * noise

    @torch.no_grad()
    def encode(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Images in [-1, 1] -> scaled latents; KL posteriors are sampled only with a generator."""
        if isinstance(self.vae, AutoencoderKL):
            dist = self.vae.encode(images).latent_dist
            latents = dist.sample(generator) if generator is not None else dist.mode()
        else:
            latents = self.vae.encode(images).latents
        return (latents - self._shift(latents)) * self.config.latent_scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> images clamped to [-1, 1]."""
        raw = latents / self.config.latent_scale
        return self.vae.decode(raw + self._shift(raw)).sample.clamp(-1.0, 1.0)

    def _shift(self, like: torch.Tensor) -> torch.Tensor | float:
        if not self.config.latent_shift:
            return 0.0
        return torch.tensor(self.config.latent_shift, device=like.device, dtype=like.dtype)[
            None, :, None, None
        ]

    @torch.no_grad()
    def normalize_latents(self, images: torch.Tensor) -> None:
        """Set ``latent_shift`` and ``latent_scale`` so that the latents of ``images`` have zero
        mean per channel and unit variance (as Stable Diffusion's 0.18215 does for its VAE)."""
        self.config = self.config.with_(latent_scale=1.0, latent_shift=())
        raw = torch.cat([self.encode(batch) for batch in images.split(8)])
        mean = raw.mean((0, 2, 3))
        scale = 1.0 / float((raw - mean[None, :, None, None]).std())
        self.config = self.config.with_(latent_scale=scale, latent_shift=tuple(mean.tolist()))

    def _with_drop_channel(self, mask_onehot: torch.Tensor) -> torch.Tensor:
        if mask_onehot.shape[1] == NUM_CLASSES:
            return F.pad(mask_onehot, (0, 0, 0, 0, 0, 1))
        return mask_onehot

    def _predict(
        self, z_t: torch.Tensor, t: torch.Tensor, mask_onehot: torch.Tensor
    ) -> torch.Tensor:
        """One UNet call on a batch, with the mask at input (and every resolution when on)."""
        feats = self.mask_encoder(mask_onehot)
        if self.injection is not None:
            self.injection.features = feats
        try:
            return self.unet(torch.cat([z_t, feats], dim=1), t).sample
        finally:
            if self.injection is not None:
                self.injection.features = None

    def denoise(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor | int,
        mask_onehot: torch.Tensor,
        guidance_scale: float = 1.0,
    ) -> torch.Tensor:
        """The model output the scheduler expects (ε or v), with classifier-free guidance.

        ``mask_onehot`` is (B, 8 or 9, H, W) at image resolution. Guidance needs a model trained
        with mask dropout, since otherwise the unconditional branch was never learned.
        """
        mask_onehot = self._with_drop_channel(mask_onehot)
        t = torch.as_tensor(t, device=z_t.device).expand(z_t.shape[0])
        if guidance_scale == 1.0:
            return self._predict(z_t, t, mask_onehot)
        if self.config.mask_dropout <= 0.0:
            raise ValueError("guidance_scale != 1 needs a model trained with mask_dropout > 0")
        both = self._predict(
            torch.cat([z_t, z_t]),
            torch.cat([t, t]),
            torch.cat([mask_onehot, dropped_like(mask_onehot)]),
        )
        cond, uncond = both.chunk(2)
        return uncond + guidance_scale * (cond - uncond)

    def target(self, latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the UNet should output: the noise (ε) or the velocity (v)."""
        if self.config.prediction_type == "v_prediction":
            return self.scheduler.get_velocity(latents, noise, t)
        return noise

    def loss_weights(self, t: torch.Tensor) -> torch.Tensor:
        """Min-SNR-γ weights per sample (ones when off): keeps high-noise steps, where the layout
        is decided, from being drowned by easy low-noise ones."""
        if self.config.min_snr_gamma is None:
            return torch.ones(t.shape, device=t.device)
        alphas = self.scheduler.alphas_cumprod.to(t.device)[t]
        snr = alphas / (1 - alphas)
        clipped = snr.clamp(max=self.config.min_snr_gamma)
        if self.config.prediction_type == "v_prediction":
            return clipped / (snr + 1)
        return clipped / snr

    def loss(
        self, images_or_latents: torch.Tensor, masks: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Diffusion training loss for a batch.

        ``masks`` are class indices (B, H, W) at image resolution (or one-hot (B, C, H, W)); the
        first argument is taken as latents when it is smaller than the mask. Draws from
        ``generator`` in this order: timesteps, noise, mask dropout.
        """
        onehot = self._with_drop_channel(one_hot(masks) if masks.dim() == 3 else masks)
        if images_or_latents.shape[-2:] == onehot.shape[-2:]:
            latents = self.encode(images_or_latents, generator)
        else:
            latents = images_or_latents
        b, device = latents.shape[0], latents.device
        t = torch.randint(
            0, self.config.num_train_timesteps, (b,), generator=generator, device=device
        )
        noise = torch.randn(latents.shape, generator=generator, device=device)
        drop = torch.rand(b, generator=generator, device=device) < self.config.mask_dropout
        onehot = torch.where(drop[:, None, None, None], dropped_like(onehot), onehot)
        z_t = self.scheduler.add_noise(latents, noise, t)
        error = self._predict(z_t, t, onehot) - self.target(latents, noise, t)
        per_sample = (error.abs() if self.config.loss == "l1" else error.square()).mean((1, 2, 3))
        return (self.loss_weights(t) * per_sample).mean()

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the model folder: diffusers parts, mask weights, metadata and a model card."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.vae.save_pretrained(folder / "vae", safe_serialization=True)
        self.unet.save_pretrained(folder / "unet", safe_serialization=True)
        self.scheduler.save_pretrained(folder / "scheduler")
        save_file(self.geochange_state_dict(), folder / MASK_WEIGHTS)
        metadata = {
            "preset": self.config.name,
            "config": self.config.to_dict(),
            "class_names": list(CLASS_NAMES),
            "gsd_m": self.config.gsd_m,
            "latent_scale": self.config.latent_scale,
            "latent_shift": list(self.config.latent_shift),
            "training_summary": self.training_summary,
        }
        (folder / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
        (folder / MODEL_CARD).write_text(model_card(self.config, self.training_summary))
        return folder


def model_card(config: ModelConfig, training_summary: dict[str, Any]) -> str:
    """A model card stub; it says "untrained" until a training summary says otherwise."""
    if training_summary:
        trained = "\n".join(
            _stage_line(part, number, stage)
            for part, stages in training_summary.items()
            for number, stage in enumerate(stages if isinstance(stages, list) else [stages], 1)
        )
    else:
        trained = "Untrained: randomly initialised weights. Its samples are noise, not imagery."
    return (
        f"# geochange semantic latent diffusion model ({config.name})\n\n"
        f"- autoencoder: {config.autoencoder}, latent channels {config.latent_channels}, "
        f"downsampling {config.downsampling}\n"
        f"- UNet channels {list(config.unet_block_out_channels)}, "
        f"prediction {config.prediction_type}\n"
        f"- classes: {', '.join(CLASS_NAMES)}\n"
        f"- ground sampling distance: {config.gsd_m} m\n\n"
        f"## Training\n\n{trained}\n"
    )


def _stage_line(part: str, number: int, stage: Any) -> str:
    """One line per training stage: what ran, on what, for how long."""
    if not isinstance(stage, dict):
        return f"- {part}: {stage}"
    data = stage.get("data", {})
    folders = data.get("folders", [data]) if data else []
    names = ", ".join(f"{f.get('layout')} ({f.get('heldout_rule')})" for f in folders)
    refit = " (decoder only)" if stage.get("decoder_only") else ""
    return (
        f"- {part}{refit}, stage {number}: {stage.get('steps')} steps x batch "
        f"{stage.get('batch_size')}, lr {stage.get('lr')}, on {stage.get('device')}, "
        f"{stage.get('seconds')} s; data: {names}"
    )


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when torch sees a GPU, else the CPU), ``cpu`` or ``cuda``; asking for CUDA
    without a GPU is refused, not quietly run on the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA GPU", "use --device cpu")
    return torch.device(name)


def load_model(folder: str | Path) -> SemanticLDM:
    """Rebuild a model saved with ``SemanticLDM.save_pretrained``, bit for bit."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            f"model folder {folder} does not exist",
            "pass a folder written by `geochange train diffusion -o MODEL`, or leave --model out "
            "to use the model shipped with geochange",
        )
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise InputError(
            f"model folder {folder} is missing {', '.join(missing)}",
            "copy the whole model folder (vae/, unet/, scheduler/, mask.safetensors, "
            "geochange.json), or pass a folder written by `geochange train diffusion -o MODEL`",
        )
    try:
        return _load_parts(folder)
    except InputError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:
        raise InputError(
            f"model folder {folder} cannot be loaded: {type(err).__name__}: {err}",
            "its files are damaged or come from different models: copy the whole folder again, "
            "or pass a folder written by `geochange train diffusion -o MODEL`",
        ) from err


class _TinyConfigNotice(logging.Filter):
    """Drops diffusers' warning that ``block_out_channels`` is unexpected in an AutoencoderTiny
    config: AutoencoderTiny writes that key itself when saved, so every load would warn."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("'block_out_channels'" in message and "AutoencoderTiny" in message)


logging.getLogger("diffusers.configuration_utils").addFilter(_TinyConfigNotice())


def _load_parts(folder: Path) -> SemanticLDM:
    metadata = json.loads((folder / METADATA).read_text())
    config = ModelConfig.from_dict(metadata["config"])
    _check_parts(folder, config)
    vae_class = AUTOENCODER_CLASSES[config.autoencoder]
    # Without accelerate, diffusers loads the plain way anyway; saying so keeps it quiet.
    quiet = {"low_cpu_mem_usage": is_accelerate_available()}
    model = SemanticLDM(
        config,
        vae=vae_class.from_pretrained(folder / "vae", **quiet),
        unet=UNet2DModel.from_pretrained(folder / "unet", **quiet),
        scheduler=DDIMScheduler.from_pretrained(folder / "scheduler"),
    )
    weights = load_file(folder / MASK_WEIGHTS)
    model.mask_encoder.load_state_dict(_section(weights, "mask_encoder"))
    if model.injection is not None:
        model.injection.load_state_dict(_section(weights, "injection"))
    model.class_mean.copy_(weights["layout.class_mean"])
    model.class_std.copy_(weights["layout.class_std"])
    model.training_summary = metadata.get("training_summary", {})
    return model.eval()


def _check_parts(folder: Path, config: ModelConfig) -> None:
    """The diffusers parts must be the ones ``geochange.json`` describes: a part copied in from
    another model fails deep inside torch otherwise."""
    vae = json.loads((folder / "vae" / "config.json").read_text())
    unet = json.loads((folder / "unet" / "config.json").read_text())
    expected = [
        ("vae/config.json", "_class_name", vae.get("_class_name"), config.autoencoder),
        ("vae/config.json", "latent_channels", vae.get("latent_channels"), config.latent_channels),
        (
            "unet/config.json",
            "block_out_channels",
            unet.get("block_out_channels"),
            list(config.unet_block_out_channels),
        ),
        (
            "unet/config.json",
            "in_channels",
            unet.get("in_channels"),
            config.latent_channels + config.mask_channels,
        ),
    ]
    for part, key, found, wanted in expected:
        if found != wanted:
            raise InputError(
                f"model folder {folder}: {part} has {key} {found} but {METADATA} says {wanted}, "
                "so its parts come from different models",
                "copy the whole model folder again, or pass a folder written by "
                "`geochange train diffusion -o MODEL`",
            )
    # Values that load but paint nonsense (latent_scale 0: an almost white t2, exit 0).
    timesteps = json.loads((folder / "scheduler" / "scheduler_config.json").read_text()).get(
        "num_train_timesteps"
    )
    scale, shift, channels = config.latent_scale, config.latent_shift, config.latent_channels
    checks = [
        (
            METADATA,
            "latent_scale",
            scale,
            "a finite number above 0",
            math.isfinite(scale) and scale > 0,
        ),
        (
            METADATA,
            "latent_shift",
            list(shift),
            f"{channels} finite numbers or none",
            not shift or (len(shift) == channels and all(map(math.isfinite, shift))),
        ),
        (
            "scheduler/scheduler_config.json",
            "num_train_timesteps",
            timesteps,
            "an integer >= 1",
            isinstance(timesteps, int) and timesteps >= 1,
        ),
    ]
    for part, key, found, wanted, sound in checks:
        if not sound:
            raise InputError(
                f"model folder {folder}: {part} has {key} {found}, which must be {wanted}",
                "copy the whole model folder again, or retrain it with `geochange train`",
            )


def _section(weights: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    prefix = f"{name}."
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
