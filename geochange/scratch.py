"""A raw uint8 raster on disk for intermediate results, read and rewritten window by window.

Events edit overlapping windows (block + halo) many times; a raw file lets them do that with
plain positioned reads and writes, without holding the raster in memory and without the
re-encoding and file growth of rewriting compressed GeoTIFF tiles.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from rasterio.windows import Window


class ScratchRaster:
    """A (height, width) uint8 array in a file, filled with ``fill``."""

    def __init__(self, path: Path, height: int, width: int, fill: int = 0) -> None:
        self.path = path
        self.height, self.width = height, width
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        if fill:
            row = np.full(width, fill, np.uint8).tobytes()
            for r in range(height):
                os.pwrite(self._fd, row, r * width)
        else:
            os.ftruncate(self._fd, height * width)

    def read(self, window: Window) -> np.ndarray:
        r0, c0, h, w = _bounds(window)
        out = np.empty((h, w), np.uint8)
        for i in range(h):
            out[i] = np.frombuffer(os.pread(self._fd, w, (r0 + i) * self.width + c0), np.uint8)
        return out

    def write(self, window: Window, data: np.ndarray) -> None:
        r0, c0, h, w = _bounds(window)
        if data.shape != (h, w):
            raise ValueError(f"data of shape {data.shape} does not fit window {window}")
        block = np.ascontiguousarray(data, np.uint8)
        for i in range(h):
            os.pwrite(self._fd, block[i].tobytes(), (r0 + i) * self.width + c0)

    def close(self) -> None:
        os.close(self._fd)
        self.path.unlink(missing_ok=True)


def _bounds(window: Window) -> tuple[int, int, int, int]:
    return int(window.row_off), int(window.col_off), int(window.height), int(window.width)
