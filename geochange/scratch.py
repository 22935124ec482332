"""A raw uint8 raster on disk for intermediate results, read and rewritten window by window.

Events edit overlapping windows (block + halo) many times; a raw file lets them do that with
plain positioned reads and writes, without holding the raster in memory and without the
re-encoding and file growth of rewriting compressed GeoTIFF tiles. ``synth`` keeps the painted
RGB of finished blocks in a three-band one, so later blocks can anchor their halos on it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from rasterio.windows import Window


class ScratchRaster:
    """A (height, width) uint8 array in a file, filled with ``fill``.

    With ``bands`` > 1 pixels are interleaved on disk (one read per row for all bands) and
    windows are (bands, h, w), as rasterio reads them.
    """

    def __init__(
        self,
        path: Path,
        height: int,
        width: int,
        fill: int = 0,
        bands: int = 1,
        reuse: bool = False,
    ) -> None:
        """``reuse`` keeps the pixels of an existing file of the right size (a resumed run)."""
        self.path = path
        self.height, self.width, self.bands = height, width, bands
        row_bytes = width * bands
        if reuse and path.is_file() and path.stat().st_size == height * row_bytes:
            self._fd = os.open(path, os.O_RDWR)
            return
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        if fill:
            row = np.full(row_bytes, fill, np.uint8).tobytes()
            for r in range(height):
                os.pwrite(self._fd, row, r * row_bytes)
        else:
            os.ftruncate(self._fd, height * row_bytes)

    def read(self, window: Window) -> np.ndarray:
        h, w = _bounds(window)[2:]
        b = self.bands
        out = _read_rows(self._fd, self.width * b, window, b)
        if b == 1:
            return out
        return out.reshape(h, w, b).transpose(2, 0, 1)

    def write(self, window: Window, data: np.ndarray) -> None:
        r0, c0, h, w = _bounds(window)
        b = self.bands
        shape = (h, w) if b == 1 else (b, h, w)
        if data.shape != shape:
            raise ValueError(f"data of shape {data.shape} does not fit window {window}")
        if b > 1:
            data = data.transpose(1, 2, 0)
        block = np.ascontiguousarray(data, np.uint8).reshape(h, w * b)
        for i in range(h):
            os.pwrite(self._fd, block[i].tobytes(), ((r0 + i) * self.width + c0) * b)

    def close(self) -> None:
        os.close(self._fd)
        self.path.unlink(missing_ok=True)


def window_digest(path: Path, height: int, width: int, window: Window) -> str | None:
    """sha256 of ``window``'s pixels in the scratch raster file ``path`` of a (height, width)
    grid, whatever its bands; None when the file is missing or not of such a raster's size."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    bands, rest = divmod(size, height * width)
    if rest or not bands:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        pixels = _read_rows(fd, width * bands, window, bands)
    finally:
        os.close(fd)
    return hashlib.sha256(pixels.tobytes()).hexdigest()


def _read_rows(fd: int, row_bytes: int, window: Window, bands: int) -> np.ndarray:
    """The window's rows as (h, w * bands) bytes of a file of rows of ``row_bytes``."""
    r0, c0, h, w = _bounds(window)
    out = np.empty((h, w * bands), np.uint8)
    for i in range(h):
        out[i] = np.frombuffer(os.pread(fd, w * bands, (r0 + i) * row_bytes + c0 * bands), np.uint8)
    return out


def _bounds(window: Window) -> tuple[int, int, int, int]:
    return int(window.row_off), int(window.col_off), int(window.height), int(window.width)
