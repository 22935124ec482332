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
    mix,
    sample_change,
    to_latent,
)

__all__ = [
    "ChangeSchedule",
    "anchor",
    "canvas_denoise",
    "change_maps",
    "draw_i_change",
    "fuse_step",
    "mix",
    "sample_change",
    "tile_windows",
    "to_latent",
    "window_weights",
]
