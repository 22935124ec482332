"""The ChangeAnywhere sampler: paint t2 latents that keep t1 where land did not change.

The rule (DESIGN.md section 1): before every model call the unchanged pixels are overwritten with
the t1 latent re-noised to the current timestep with fresh noise, until a per-sample step
``i_change``; held classes (roads, buildings) stay copied until the last few steps; changed pixels
are always generated. Every step count and solver uses the same rule through step fractions.

Only tensors and callables come in: the caller owns the model, the conditioning and the guidance.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import SchedulerMixin

from geochange.classes import BUILDING, ROAD

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``denoise(z, t)`` returns the model output the scheduler expects (ε or v)."""


@dataclass(frozen=True)
class ChangeSchedule:
    """The constants of the mixing rule, as fractions of the step count.

    Fractions rather than step numbers so that 50 DDIM steps and 20 DPM-Solver++ steps follow the
    same rule. The defaults are the paper's 30...44 of 50 and "held until the last two of 50".
    """

    change_start: float = 30 / 50
    change_end: float = 44 / 50
    hold_classes: tuple[int, ...] = (ROAD, BUILDING)
    hold_until_last: float = 2 / 50

    def __post_init__(self) -> None:
        if not 0.0 <= self.change_start <= self.change_end <= 1.0:
            raise ValueError(
                f"need 0 <= change_start <= change_end <= 1, got "
                f"{self.change_start}, {self.change_end}"
            )
        if not 0.0 <= self.hold_until_last <= 1.0:
            raise ValueError(f"hold_until_last is a fraction in [0, 1], got {self.hold_until_last}")

    def change_range(self, num_steps: int) -> tuple[int, int]:
        """The inclusive range of step indices that ``i_change`` is drawn from."""
        return round(self.change_start * num_steps), round(self.change_end * num_steps)

    def hold_start(self, num_steps: int) -> int:
        """The first step index at which held pixels are released."""
        return num_steps - round(self.hold_until_last * num_steps)


def draw_i_change(
    schedule: ChangeSchedule, num_steps: int, batch: int, generator: torch.Generator
) -> torch.Tensor:
    """Draw ``i_change`` per sample, uniform over the step indices of the schedule's range."""
    lo, hi = schedule.change_range(num_steps)
    return torch.randint(lo, hi + 1, (batch,), generator=generator, device=generator.device)


def to_latent(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of (B, H, W) maps to (B, 1, h, w) float, values kept exactly.

    ``nearest-exact`` samples the centre of each block, so class boundaries do not shift by half a
    latent pixel as plain ``nearest`` would.
    """
    return F.interpolate(maps[:, None].float(), size=size, mode="nearest-exact")


def change_maps(
    mask_a: torch.Tensor,
    mask_b: torch.Tensor,
    size: tuple[int, int],
    schedule: ChangeSchedule = ChangeSchedule(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """The unchanged map M and the held map (unchanged and of a held class) at latent size."""
    unchanged = mask_a == mask_b
    hold_classes = torch.tensor(schedule.hold_classes, device=mask_b.device)
    hold = unchanged & torch.isin(mask_b, hold_classes)
    return to_latent(unchanged, size), to_latent(hold, size)


def mix(
    z: torch.Tensor,
    z_a: torch.Tensor,
    unchanged: torch.Tensor,
    hold: torch.Tensor,
    step_index: int,
    num_steps: int,
    i_change: torch.Tensor,
    alpha_bar_t: torch.Tensor | float,
    noise: torch.Tensor,
    schedule: ChangeSchedule = ChangeSchedule(),
    pin: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply ``z = M(1-P)ẑ_A + M P z + (1-M) z`` with ``ẑ_A = √ᾱ z_A + √(1-ᾱ) ε``.

    ``unchanged`` (M), ``hold`` and ``pin`` are (B, 1, h, w) in {0, 1}; ``i_change`` is (B,).
    P is 0 before ``i_change``, 0 on held pixels until ``schedule.hold_start``, 0 on pinned pixels
    always (an anchored halo, see ``geochange.sampling.canvas.anchor``), and 1 otherwise.
    """
    alpha_bar_t = torch.as_tensor(alpha_bar_t, dtype=z.dtype, device=z.device)
    z_hat = alpha_bar_t.sqrt() * z_a + (1 - alpha_bar_t).sqrt() * noise
    p = (step_index >= i_change).to(z.dtype).view(-1, 1, 1, 1)
    if step_index < schedule.hold_start(num_steps):
        p = p * (1 - hold)
    m = unchanged
    if pin is not None:
        p = p * (1 - pin)
        m = torch.maximum(m, pin)
    return m * (1 - p) * z_hat + m * p * z + (1 - m) * z


def _randn(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Noise drawn on the generator's device, so a seed gives the same latents on any device."""
    noise = torch.randn(like.shape, generator=generator, device=generator.device, dtype=like.dtype)
    return noise.to(like.device)


def first_step(start_fraction: float, steps: int) -> int:
    """The step that sampling from a start latent begins at: at least one step runs."""
    return min(round(start_fraction * steps), steps - 1)


def sample_change(
    denoise: Denoise,
    scheduler: SchedulerMixin,
    z_a: torch.Tensor,
    unchanged: torch.Tensor,
    hold: torch.Tensor,
    generator: torch.Generator,
    num_steps: int = 50,
    schedule: ChangeSchedule = ChangeSchedule(),
    eta: float = 0.0,
    pin: torch.Tensor | None = None,
    start_latent: torch.Tensor | None = None,
    start_fraction: float = 0.0,
) -> torch.Tensor:
    """Generate t2 latents from the t1 latent ``z_a`` with the ChangeAnywhere rule.

    ``scheduler`` is a diffusers scheduler (``DDIMScheduler``, ``DPMSolverMultistepScheduler``);
    ``eta`` goes to its ``step`` where it takes one (DDIM). The t2 conditioning lives in
    ``denoise``. Random draws, all from ``generator`` in this order: ``i_change`` per sample, the
    start noise, then one ε per step (plus the scheduler's own, e.g. DDIM with eta > 0).

    With ``start_latent`` sampling starts at step ``round(start_fraction * steps)`` from that
    latent noised to the step's timestep (layout-anchored initialisation); step indices stay
    global, so the mixing rule applies unchanged from there.
    """
    step_kwargs = {}
    if "eta" in inspect.signature(scheduler.step).parameters:
        step_kwargs["eta"] = eta
    elif eta != 0.0:
        raise ValueError(f"{type(scheduler).__name__} takes no eta; leave eta at 0")
    scheduler.set_timesteps(num_steps)
    timesteps = scheduler.timesteps
    n = len(timesteps)
    i_change = draw_i_change(schedule, n, z_a.shape[0], generator).to(z_a.device)
    alphas_cumprod = scheduler.alphas_cumprod.to(device=z_a.device, dtype=z_a.dtype)

    first = 0
    z = _randn(z_a, generator)
    if start_latent is None:
        z = z * scheduler.init_noise_sigma
    else:
        if not 0.0 <= start_fraction < 1.0:
            raise ValueError(f"start_fraction is a fraction in [0, 1), got {start_fraction}")
        first = first_step(start_fraction, n)
        a = alphas_cumprod[int(timesteps[first])]
        z = a.sqrt() * start_latent + (1 - a).sqrt() * z

    for i in range(first, n):
        t = timesteps[i]
        a = alphas_cumprod[int(t)]
        z = mix(z, z_a, unchanged, hold, i, n, i_change, a, _randn(z_a, generator), schedule, pin)
        out = denoise(scheduler.scale_model_input(z, t), t)
        z = scheduler.step(out, t, z, generator=generator, **step_kwargs).prev_sample
    return z
