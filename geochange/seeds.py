"""Seed derivation: every random draw of a run comes from the run's one seed and the keys of
what it draws for (block, event, timestamp, pair), so any part can be redone on its own and
draw the same. Keys are integers; the named ones below keep two uses of one seed apart."""

from __future__ import annotations

import numpy as np

BLOCK_COUNTS = 0xB10C
"""Key of the split of an event's count among the blocks."""
ACQUISITION = 0xAC0
"""Key of an image's acquisition differences (sun, haze, noise)."""


def child_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed for ``keys`` under ``seed`` (for torch generators and sub-runs)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def rng(seed: int, *keys: int) -> np.random.Generator:
    """The numpy generator for ``keys`` under ``seed``."""
    return np.random.default_rng([seed, *keys])
