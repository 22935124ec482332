"""The semantic latent diffusion model that paints land-cover masks as images.

The configuration imports without torch; the model's names load torch on first use, so
commands that only list presets (``geochange train --help``) start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from geochange.model.config import PRESETS, ModelConfig, preset

if TYPE_CHECKING:
    from geochange.model.semantic_ldm import (
        MaskEncoder,
        MaskInjection,
        SemanticLDM,
        build_unet,
        load_model,
        one_hot,
        pick_device,
    )

__all__ = [
    "PRESETS",
    "MaskEncoder",
    "MaskInjection",
    "ModelConfig",
    "SemanticLDM",
    "build_unet",
    "load_model",
    "one_hot",
    "pick_device",
    "preset",
]
_CONFIG_NAMES = {"PRESETS", "ModelConfig", "preset"}


def __getattr__(name: str) -> Any:
    if name in __all__ and name not in _CONFIG_NAMES:
        from geochange.model import semantic_ldm

        return getattr(semantic_ldm, name)
    raise AttributeError(f"module 'geochange.model' has no attribute {name!r}")
