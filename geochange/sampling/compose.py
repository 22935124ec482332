"""Pixel-space composition: the image after keeps the image before where land did not change.

The paper decodes t2 entirely from latents, so every pixel passes through the autoencoder and
loses what it cannot reconstruct. Here t2 = B + D(z2) - D(E(B)) where the base B holds wanted
pixels (unchanged land, changed land filled with exemplars): the real pixels plus the model's
variation. Elsewhere t2 = D(z2), blended over a band so that no seam shows (DESIGN.md section 1).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

FEATHER = 8.0
"""Width in pixels of the band, centred on the edge of the kept land, over which the kept base
fades into the model's pixels."""


VARIATION_SIGMA = 8.0
"""Blur (pixels) of the model's variation before it is added to a kept image."""


def blend_weight(keep: np.ndarray, band: float = FEATHER) -> np.ndarray:
    """(h, w) float32: 1 inside ``keep``, 0 outside, linear across ``band`` pixels on its edge."""
    if keep.all() or not keep.any():
        return keep.astype(np.float32)
    inside = ndimage.distance_transform_edt(keep)
    outside = ndimage.distance_transform_edt(~keep)
    signed = np.where(keep, inside - 0.5, 0.5 - outside)
    return np.clip(0.5 + signed / band, 0.0, 1.0).astype(np.float32)


def compose(
    base: np.ndarray, decoded: np.ndarray, base_decoded: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """``weight * (base + blur(decoded - base_decoded)) + (1 - weight) * decoded`` as RGB
    uint8.

    ``base`` is uint8 (3, h, w); ``decoded`` (the new latents) and ``base_decoded`` (the base's
    latents) are float pixels on the same 0-255 scale. The variation is blurred by
    ``VARIATION_SIGMA``: the decoder renders some of the base's edges that a re-textured latent
    no longer holds, and their difference would take that detail out of the real image.
    """
    variation = coarse_blur(decoded - base_decoded, VARIATION_SIGMA)
    out = weight * (base.astype(np.float32) + variation) + (1 - weight) * decoded
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def coarse_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """Per band, a Gaussian blur of ``sigma`` pixels of float (c, h, w), done on cells of
    ``sigma // 2`` pixels a side (their means, blurred, interpolated back linearly): a wide
    blur is a fifth of the work there, and what the cells add (their own blur of a pixel or
    so) is lost in ``sigma``. For sigma 8 on a 256² variation it differed from the exact
    blur by 0.14 grey levels RMS, at most 1.2."""
    factor = max(1, int(sigma // 2))
    if factor == 1:
        return ndimage.gaussian_filter(pixels, (0, sigma, sigma))
    bands, height, width = pixels.shape
    extra = (-height % factor, -width % factor)
    if any(extra):  # mirrored at the far edges, as the exact blur's 'reflect' would see them
        pixels = np.pad(pixels, ((0, 0), (0, extra[0]), (0, extra[1])), mode="symmetric")
    rows, cols = (pixels.shape[1] // factor, pixels.shape[2] // factor)
    cells = pixels.reshape(bands, rows, factor, cols, factor).mean(axis=(2, 4))
    cells = ndimage.gaussian_filter(cells, (0, sigma / factor, sigma / factor))
    return _upsample(_upsample(cells, height, 1, factor), width, 2, factor)


def _upsample(cells: np.ndarray, size: int, axis: int, factor: int) -> np.ndarray:
    """``size`` pixels along ``axis`` linearly interpolated between the centres of cells of
    ``factor`` pixels (the nearest cell's value beyond the outer centres)."""
    centres = (np.arange(size) + 0.5) / factor - 0.5
    low = np.floor(centres).astype(np.intp)
    fraction = (centres - low).astype(cells.dtype)
    last = cells.shape[axis] - 1
    low, high = np.clip(low, 0, last), np.clip(low + 1, 0, last)
    shape = [1] * cells.ndim
    shape[axis] = size
    below, above = np.take(cells, low, axis=axis), np.take(cells, high, axis=axis)
    return below + fraction.reshape(shape) * (above - below)
