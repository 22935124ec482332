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
    blur takes a tenth of the time there, and what the cells add (their own blur of a pixel or
    so) is lost in ``sigma``. With sigma 8, on the model's variations of 20 dataset pairs
    (256²), it differed from the exact blur by 0.18 grey levels RMS, at most 1.7."""
    factor = max(1, int(sigma // 2))
    if factor == 1:
        return ndimage.gaussian_filter(pixels, (0, sigma, sigma))
    bands, height, width = pixels.shape
    extra = (-height % factor, -width % factor)
    if any(extra):  # mirrored at the far edges, as the exact blur's 'reflect' would see them
        pixels = np.pad(pixels, ((0, 0), (0, extra[0]), (0, extra[1])), mode="symmetric")
    rows, cols = (pixels.shape[1] // factor, pixels.shape[2] // factor)
    cells = np.zeros((bands, rows, cols), np.float32)
    for row in range(factor):  # strided sums: a reshaped mean took 13 times as long
        for col in range(factor):
            cells += pixels[:, row::factor, col::factor]
    cells = ndimage.gaussian_filter(cells / factor**2, (0, sigma / factor, sigma / factor))
    return _upsample(_upsample(cells, 1, factor)[:, :height], 2, factor)[:, :, :width]


def _upsample(cells: np.ndarray, axis: int, factor: int) -> np.ndarray:
    """``factor`` pixels per cell along ``axis``, linearly interpolated between the cells'
    centres (the outer cells' values beyond them). Pixel ``j`` of every cell lies at the same
    fraction between the same two neighbours, so each of the ``factor`` phases is one
    operation on whole shifted views."""
    edges = [np.take(cells, [0], axis=axis), cells, np.take(cells, [-1], axis=axis)]
    padded = np.concatenate(edges, axis=axis)  # cell k is padded[k + 1]
    count = cells.shape[axis]
    shape = list(cells.shape)
    shape[axis] = count * factor
    out = np.empty(shape, cells.dtype)

    def along(part: slice) -> tuple[slice, ...]:
        return (slice(None),) * axis + (part,)

    for phase in range(factor):
        centre = (phase + 0.5) / factor - 0.5  # from the own cell's centre, in cells
        first = 0 if centre < 0 else 1  # padded index of the left neighbour of cell 0
        fraction = np.float32(centre + 1 if centre < 0 else centre)
        below = padded[along(slice(first, first + count))]
        above = padded[along(slice(first + 1, first + 1 + count))]
        out[along(slice(phase, None, factor))] = below + fraction * (above - below)
    return out
