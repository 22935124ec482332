"""The small training loop of the evaluation's own networks (segmenter, change detector)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

LOG_EVERY = 50
"""Steps between loss messages."""


def fit(
    name: str,
    optimizer: torch.optim.Optimizer,
    steps: int,
    step_loss: Callable[[int], torch.Tensor],
    log: Callable[[str], None] | None = None,
) -> None:
    """``steps`` optimizer steps on ``step_loss(step)``, whose batch depends on the step alone
    (so a seed gives the same network); ``log`` gets the mean loss every ``LOG_EVERY`` steps."""
    recent: list[float] = []
    for step in range(steps):
        loss = step_loss(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        recent.append(loss.item())
        if log is not None and (step + 1) % LOG_EVERY == 0:
            log(f"{name} step {step + 1}/{steps}: loss {np.mean(recent):.4f}")
            recent.clear()
