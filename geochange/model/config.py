"""Sizes and levers of the semantic latent diffusion model, with named presets.

A config is plain data so that it travels inside a model folder (``geochange.json``) and rebuilds
the same architecture. The ``paper`` preset is the published configuration (DESIGN.md section 1);
``cpu`` turns on the levers that make a small model follow the mask (DESIGN.md section 4).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from geochange.errors import InputError

GSD_TOLERANCE = 2.0
"""How many times larger or smaller than the model's training pixels a grid's may be."""
AUTOENCODERS = ("VQModel", "AutoencoderKL", "AutoencoderTiny", "PatchAutoencoder")
PREDICTION_TYPES = ("epsilon", "v_prediction")
LOSSES = ("l1", "l2")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a ``SemanticLDM``; tuples become lists in JSON and back."""

    name: str
    # Autoencoder: downsampling factor is 2 ** (len(ae_block_out_channels) - 1).
    autoencoder: str = "AutoencoderKL"
    ae_block_out_channels: tuple[int, ...] = (64, 128, 256)
    ae_layers_per_block: int = 1
    ae_norm_num_groups: int = 32
    latent_channels: int = 4
    num_vq_embeddings: int = 8192
    latent_scale: float = 1.0
    latent_shift: tuple[float, ...] = ()
    """Per-channel mean subtracted before ``latent_scale`` (empty: none); with the scale it
    brings the latents to zero mean and unit variance, which the noise schedule assumes."""
    # Mask encoder: one-hot classes (+1 "dropped" channel) down to latent resolution.
    mask_channels: int = 4
    mask_hidden: int = 32
    # UNet.
    unet_block_out_channels: tuple[int, ...] = (64, 128, 256)
    unet_layers_per_block: int = 2
    unet_norm_num_groups: int = 32
    attention_head_dim: int = 8
    mid_attention: bool = True
    # Noise schedule and objective.
    num_train_timesteps: int = 1000
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.0015
    beta_end: float = 0.0205
    prediction_type: str = "epsilon"
    loss: str = "l2"
    min_snr_gamma: float | None = None
    # Levers that make a small model follow the mask.
    mask_every_resolution: bool = False
    mask_dropout: float = 0.0
    layout_init: bool = False
    layout_start_fraction: float = 0.7
    gsd_m: float = 0.5

    def __post_init__(self) -> None:
        checks = [
            (self.autoencoder in AUTOENCODERS, f"autoencoder must be one of {AUTOENCODERS}"),
            (
                self.prediction_type in PREDICTION_TYPES,
                f"prediction_type must be one of {PREDICTION_TYPES}",
            ),
            (self.loss in LOSSES, f"loss must be one of {LOSSES}"),
            (0.0 <= self.mask_dropout < 1.0, "mask_dropout is a probability in [0, 1)"),
            (0.0 < self.layout_start_fraction <= 1.0, "layout_start_fraction is in (0, 1]"),
            (len(self.ae_block_out_channels) >= 2, "the autoencoder must downsample at least 2x"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"bad model config {self.name!r}: {message}")

    @property
    def downsampling(self) -> int:
        """Image pixels per latent pixel along one axis."""
        return 2 ** (len(self.ae_block_out_channels) - 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of ``to_dict``; unknown keys are an error so a typo does not pass silently."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(
                f"unknown model config keys: {', '.join(unknown)}",
                f"valid keys: {', '.join(sorted(known))}",
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def gsd_warning(
        self, pixel_size_m: tuple[float, float], what: str = "the land cover", remedy: str = ""
    ) -> str | None:
        """A warning when the pixels of ``what`` are more than ``GSD_TOLERANCE`` times larger
        or smaller than those the model learnt from: it paints objects at its own scale, so
        houses would come out the size of blocks (or of cars). ``remedy`` ends it (default:
        resample with ``--gsd``)."""
        gsd = math.sqrt(pixel_size_m[0] * pixel_size_m[1])
        if 1 / GSD_TOLERANCE <= gsd / self.gsd_m <= GSD_TOLERANCE:
            return None
        return (
            f"{what}'s pixels are {gsd:.3g} m but model {self.name!r} learnt from "
            f"{self.gsd_m:g} m pixels, so it paints objects at the wrong scale; "
            + (remedy or f"resample the region with --gsd {self.gsd_m:g}")
        )

    def with_(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (for experiments and tests)."""
        return replace(self, **changes)


CPU = ModelConfig(
    name="cpu",
    autoencoder="AutoencoderTiny",
    ae_block_out_channels=(32, 32, 32, 32),
    ae_layers_per_block=2,
    latent_channels=4,
    mask_channels=8,
    mask_hidden=32,
    unet_block_out_channels=(64, 96, 128),
    unet_layers_per_block=2,
    prediction_type="v_prediction",
    min_snr_gamma=5.0,
    mask_every_resolution=True,
    mask_dropout=0.1,
    layout_init=True,
)
"""Turns on the levers that make a small model follow the mask (DESIGN.md section 4)."""


PRESETS: dict[str, ModelConfig] = {
    "paper": ModelConfig(
        name="paper",
        autoencoder="VQModel",
        ae_block_out_channels=(128, 512, 1024),
        ae_layers_per_block=2,
        latent_channels=3,
        num_vq_embeddings=8192,
        mask_channels=3,
        mask_hidden=64,
        unet_block_out_channels=(128, 256, 512),
        unet_layers_per_block=2,
        prediction_type="epsilon",
        loss="l1",
    ),
    "cpu": CPU,
    "patch": CPU.with_(
        name="patch",
        autoencoder="PatchAutoencoder",
        ae_block_out_channels=(64, 64, 64, 64),
        latent_channels=16,
    ),
    "tiny": ModelConfig(
        name="tiny",
        autoencoder="AutoencoderKL",
        ae_block_out_channels=(4, 8),
        ae_layers_per_block=1,
        ae_norm_num_groups=2,
        latent_channels=4,
        mask_channels=4,
        mask_hidden=4,
        unet_block_out_channels=(4, 8),
        unet_layers_per_block=1,
        unet_norm_num_groups=2,
        attention_head_dim=2,
        prediction_type="v_prediction",
        min_snr_gamma=5.0,
        mask_every_resolution=True,
        mask_dropout=0.1,
        layout_init=True,
    ),
}
"""Named configurations. ``patch`` is ``cpu`` on a ``PatchAutoencoder`` of 16 channels per
8 x 8 pixels (it starts as their linear code, which keeps 35.9 / 27.1 dB on the held-out crops
against ``cpu``'s 26.8 / 20.3); diffusion models trained on it on the CPU do not yet follow
their masks well nor draw clean detail (model card), so it is for training on a GPU, not yet
for painting. ``tiny`` is for tests only."""


def preset(name: str) -> ModelConfig:
    """A named preset, with a message listing the names when it is unknown."""
    if name not in PRESETS:
        raise InputError(f"unknown model preset {name!r}", f"use one of {', '.join(PRESETS)}")
    return PRESETS[name]
