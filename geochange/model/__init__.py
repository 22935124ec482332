"""The semantic latent diffusion model that paints land-cover masks as images."""

from geochange.model.config import PRESETS, ModelConfig, preset
from geochange.model.semantic_ldm import (
    MaskEncoder,
    MaskInjection,
    SemanticLDM,
    build_unet,
    load_model,
    one_hot,
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
    "preset",
]
