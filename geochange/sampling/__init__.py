"""Sampling: the ChangeAnywhere mixing rule and the seamless latent canvas, as tensor code."""

from geochange.sampling.canvas import (
    anchor,
    canvas_denoise,
    fuse_step,
    tile_windows,
    window_weights,
)
from geochange.sampling.changeanywhere import (
    ChangeSchedule,
    change_maps,
    draw_i_change,
    first_step,
    mix,
    sample_change,
    to_latent,
)
from geochange.sampling.compose import blend_weight, compose
from geochange.sampling.exemplars import exemplar_fill

__all__ = [
    "ChangeSchedule",
    "anchor",
    "blend_weight",
    "canvas_denoise",
    "change_maps",
    "compose",
    "draw_i_change",
    "exemplar_fill",
    "first_step",
    "fuse_step",
    "mix",
    "sample_change",
    "tile_windows",
    "to_latent",
    "window_weights",
]
