"""The seamless latent canvas: a block denoised as overlapping tiles, fused at every step.

MultiDiffusion: at each denoising step the model sees batched tile windows of the block latent and
the outputs are averaged where windows overlap, so neighbouring tiles agree on every step and the
block comes out without seams. Weights taper linearly across the overlap, except on a window side
that lies on the canvas boundary, which keeps weight 1 (so the border is not darkened).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from geochange.sampling.changeanywhere import Denoise

Window = tuple[slice, slice]
DenoiseTiles = Callable[[torch.Tensor, torch.Tensor, Sequence[Window]], torch.Tensor]
"""``denoise_tiles(tiles, t, windows)``: tiles are the crops of ``windows`` stacked on the batch
axis (window-major); the windows let the caller crop its conditioning the same way."""


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    return [*starts, size - tile]


def tile_windows(height: int, width: int, tile: int, overlap: int) -> list[Window]:
    """Windows of ``tile`` (clipped to the canvas) covering every pixel, the last flush with the
    border, none outside; all the same size so they batch."""
    if not 0 <= overlap < tile:
        raise ValueError(f"need 0 <= overlap < tile, got overlap={overlap}, tile={tile}")
    th, tw = min(tile, height), min(tile, width)
    return [
        (slice(r, r + th), slice(c, c + tw))
        for r in _starts(height, tile, tile - overlap)
        for c in _starts(width, tile, tile - overlap)
    ]


def _ramp(length: int, taper: int, low_open: bool, high_open: bool) -> torch.Tensor:
    """1-D weights ramping over ``taper`` pixels on each side that is open (not on the border)."""
    ramp = torch.ones(length)
    steps = torch.arange(1, taper + 1) / (taper + 1)
    if low_open:
        ramp[:taper] = torch.minimum(ramp[:taper], steps)
    if high_open:
        ramp[length - taper :] = torch.minimum(ramp[length - taper :], steps.flip(0))
    return ramp


def window_weights(windows: Sequence[Window], height: int, width: int, taper: int) -> torch.Tensor:
    """Per-window (N, h, w) fusion weights, strictly positive so every covered pixel counts."""
    weights = []
    for rows, cols in windows:
        h, w = rows.stop - rows.start, cols.stop - cols.start
        t = min(taper, h // 2, w // 2)
        wy = _ramp(h, t, rows.start > 0, rows.stop < height)
        wx = _ramp(w, t, cols.start > 0, cols.stop < width)
        weights.append(wy[:, None] * wx[None, :])
    return torch.stack(weights)


def fuse_step(
    denoise_tiles: DenoiseTiles,
    z: torch.Tensor,
    t: torch.Tensor,
    windows: Sequence[Window],
    batch_size: int,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Denoise ``z`` (B, C, H, W) window by window, ``batch_size`` windows per call, and return the
    weighted average of the outputs (uniform weights when ``weights`` is None)."""
    if weights is None:
        weights = torch.ones(len(windows), 1, 1)
    weights = weights.to(device=z.device, dtype=z.dtype)
    total = torch.zeros_like(z)
    norm = torch.zeros(z.shape[-2:], device=z.device, dtype=z.dtype)
    batch = z.shape[0]
    for first in range(0, len(windows), batch_size):
        chunk = windows[first : first + batch_size]
        tiles = torch.cat([z[..., rows, cols] for rows, cols in chunk])
        outputs = denoise_tiles(tiles, t, chunk).split(batch)
        for k, ((rows, cols), out) in enumerate(zip(chunk, outputs, strict=True)):
            w = weights[first + k]
            total[..., rows, cols] += w * out
            norm[rows, cols] += w
    return total / norm


def canvas_denoise(
    denoise_tiles: DenoiseTiles,
    windows: Sequence[Window],
    batch_size: int,
    taper: int = 0,
) -> Denoise:
    """A ``denoise(z, t)`` for ``sample_change`` that fuses tile windows at every step.

    ``taper`` is the ramp width in latent pixels (the tile overlap is the natural choice).
    """
    height = max(rows.stop for rows, _ in windows)
    width = max(cols.stop for _, cols in windows)
    weights = window_weights(windows, height, width, taper)

    def denoise(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return fuse_step(denoise_tiles, z, t, windows, batch_size, weights)

    return denoise


def anchor(
    z_a: torch.Tensor,
    unchanged: torch.Tensor,
    anchor_latent: torch.Tensor,
    anchor_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Anchor a block's halo on an already generated neighbour, with the same mixing operator.

    Where ``anchor_mask`` (B, 1, h, w) is 1, the neighbour's latents replace ``z_a`` and M = 1;
    the returned ``pin`` (pass it to ``sample_change``) keeps P = 0 there at every step, so the
    halo is the neighbour re-noised to each timestep and the block grows out of it without a seam.
    Returns ``(z_a, unchanged, pin)``.
    """
    z_a = anchor_mask * anchor_latent + (1 - anchor_mask) * z_a
    unchanged = torch.maximum(unchanged, anchor_mask)
    return z_a, unchanged, anchor_mask
