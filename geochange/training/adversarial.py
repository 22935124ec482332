"""An adversarial patch critic for autoencoder training: the loss that pays for detail.

L1, L2 and even an edge term are met best by a decoder that draws the average of every detail
it cannot place exactly, which is a blur (the sharpness ratio of the quality report). A critic
that tells real crops from decoded ones, patch by patch, pays the decoder for drawing detail
that looks real, as in the autoencoders of latent diffusion (Esser et al. 2021, Rombach et al.
2022): a small PatchGAN with the hinge loss, and the decoder's adversarial term weighted
adaptively so that its gradient at the last decoder layer matches the reconstruction's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

MAX_ADAPTIVE_WEIGHT = 1e4


class PatchCritic(nn.Module):
    """Images in [-1, 1] (B, 3, H, W) -> a realness score per ~22 px patch (B, 1, H/8, W/8)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        channels = width
        for _ in range(2):
            layers += [
                nn.Conv2d(channels, channels * 2, 4, 2, 1),
                nn.GroupNorm(8, channels * 2),
                nn.LeakyReLU(0.2),
            ]
            channels *= 2
        layers.append(nn.Conv2d(channels, 1, 3, 1, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


class Adversary:
    """A ``PatchCritic`` with its own optimizer, trained beside the autoencoder.

    ``weight`` scales the adaptive weight; the critic learns from the first step and the
    decoder feels it from step ``start``, once the critic has learnt something to say.
    ``state_dict`` and ``load_state_dict`` let checkpoints keep it, so a resumed run
    continues the same game."""

    def __init__(self, weight: float, start: int, lr: float, device: torch.device) -> None:
        self.weight, self.start, self.steps = weight, start, 0
        self.critic = PatchCritic().to(device)
        self.optimizer = torch.optim.AdamW(self.critic.parameters(), lr=lr, betas=(0.5, 0.9))

    def decoder_term(
        self, decoded: torch.Tensor, reconstruction: torch.Tensor, last_layer: torch.Tensor
    ) -> torch.Tensor:
        """The decoder's adversarial loss, weighted so that its gradient at ``last_layer``
        is ``weight`` times the reconstruction loss's; zero for the critic's first ``start``
        steps. Call it after ``critic_step``, which changes the critic in place."""
        if self.steps <= self.start:
            return torch.zeros((), device=decoded.device)
        self.critic.requires_grad_(False)
        fooling = -self.critic(decoded).float().mean()
        self.critic.requires_grad_(True)
        (rec_grad,) = torch.autograd.grad(reconstruction, last_layer, retain_graph=True)
        (adv_grad,) = torch.autograd.grad(fooling, last_layer, retain_graph=True)
        ratio = rec_grad.norm() / (adv_grad.norm() + 1e-4)
        return self.weight * ratio.clamp(max=MAX_ADAPTIVE_WEIGHT).detach() * fooling

    def critic_step(self, real: torch.Tensor, decoded: torch.Tensor) -> None:
        """One hinge-loss step of the critic on real and decoded crops."""
        real_score = self.critic(real).float()
        fake_score = self.critic(decoded.detach()).float()
        loss = (F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()) / 2
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps += 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "critic": self.critic.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = int(state["steps"])
