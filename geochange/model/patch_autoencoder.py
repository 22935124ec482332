"""An autoencoder that starts as a linear code of image patches and learns detail on top.

Measured on the held-out crops (``benchmarks/autoencoder.py --pca``): the leading principal
components of 8x8 RGB patches, 16 of them, keep 35.9 dB on OpenEarthMap and 27.1 dB on Dubai
with no learning, above the targets of issue 13 and far above the 4-channel ``AutoencoderTiny``
trained from scratch (26.8 / 20.3 dB). So this autoencoder begins as exactly that code
(``fit``: principal components, one latent channel each), and its residual stacks, initialised
to add nothing, learn what a linear code drops: the finest detail, and the steps at patch
borders.

The components are not whitened: each keeps its own spread, so a latent's squared error is
its image's (the basis is orthonormal) and the coarse channels dominate as the coarse layout
does in an image. Whitened, they gave the nearly unpredictable fine channels the weight of the
layout, and a diffusion model trained on them painted 8-px block mosaics (model card).

It is a diffusers model (``ModelMixin``, ``ConfigMixin``): saved and loaded like the others,
with their ``encode(...).latents`` and ``decode(...).sample``.
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.autoencoders.autoencoder_tiny import AutoencoderTinyOutput
from diffusers.models.autoencoders.vae import DecoderOutput
from torch import nn


class Residual(nn.Module):
    """``x + f(x)`` through ``blocks`` conv-SiLU-conv blocks of ``hidden`` channels; the last
    conv of each block starts at zero, so the stack starts as the identity."""

    def __init__(self, channels: int, hidden: int, blocks: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        for _ in range(blocks):
            last = nn.Conv2d(hidden, channels, 3, padding=1)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.blocks.append(
                nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.SiLU(), last)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return x


class _Encoder(nn.Module):
    def __init__(self, factor: int, latent_channels: int, hidden: int, blocks: int) -> None:
        super().__init__()
        self.patches = nn.Conv2d(3, latent_channels, factor, stride=factor)
        self.refine = Residual(latent_channels, hidden, blocks)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.refine(self.patches(images))


class _Decoder(nn.Module):
    def __init__(self, factor: int, latent_channels: int, hidden: int, blocks: int) -> None:
        super().__init__()
        self.refine = Residual(latent_channels, hidden, blocks)
        self.patches = nn.ConvTranspose2d(latent_channels, 3, factor, stride=factor)
        self.pixels = Residual(3, hidden // 2, blocks)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.pixels(self.patches(self.refine(latents)))


class PatchAutoencoder(ModelMixin, ConfigMixin):
    """Images in [-1, 1] (B, 3, H, W) <-> latents (B, C, H/f, W/f); see the module docstring."""

    @register_to_config
    def __init__(
        self, factor: int = 8, latent_channels: int = 16, hidden: int = 64, blocks: int = 2
    ) -> None:
        super().__init__()
        self.encoder = _Encoder(factor, latent_channels, hidden, blocks)
        self.decoder = _Decoder(factor, latent_channels, hidden, blocks)

    def encode(self, images: torch.Tensor) -> AutoencoderTinyOutput:
        return AutoencoderTinyOutput(latents=self.encoder(images))

    def decode(self, latents: torch.Tensor) -> DecoderOutput:
        return DecoderOutput(sample=self.decoder(latents))

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> None:
        """Set the patch layers to the principal components of ``images``' f x f patches
        (B, 3, H, W in [-1, 1]): channel k of a latent is the k-th component, all divided by
        one number so that the channels' variance is one on average (each keeps its share,
        see the module docstring). The pixels are centred on each band's mean, which the
        decoder's bias adds back."""
        factor, channels = self.config.factor, self.config.latent_channels
        band_mean = images.mean(dim=(0, 2, 3))
        centred = images - band_mean[None, :, None, None]
        b, c, h, w = centred.shape
        patches = centred.reshape(b, c, h // factor, factor, w // factor, factor)
        patches = patches.permute(0, 2, 4, 1, 3, 5).reshape(-1, c * factor * factor)
        _, spread, basis = torch.linalg.svd(patches, full_matrices=False)
        spread = spread[:channels] / (len(patches) - 1) ** 0.5
        basis = basis[:channels].reshape(channels, c, factor, factor)
        scale = spread.square().mean().sqrt()
        weight = basis / scale
        self.encoder.patches.weight.copy_(weight)
        self.encoder.patches.bias.copy_(-(weight * band_mean[None, :, None, None]).sum((1, 2, 3)))
        self.decoder.patches.weight.copy_(basis * scale)
        self.decoder.patches.bias.copy_(band_mean)
