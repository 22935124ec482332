"""Blocks, halos and the order they are processed in.

Blocks bound memory. Each block is simulated together with a halo around it, so an event
anchored near a border is finished in the halo rather than cut. Blocks are visited in four
phases by the parity of their row and column: two blocks of one phase are a whole block apart,
so their windows (block + halo, halo ≤ half a block) never overlap and can run in any order or
in parallel, while every block still sees the edits of the phases before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from rasterio.windows import Window

    from geochange.grid import Grid

TILE = 512
"""Internal tile size of every output GeoTIFF; blocks are multiples of it."""


class Box(NamedTuple):
    """A window by its offsets and size, read as rasterio's ``Window`` is (``row_off``,
    ``col_off``, ``height``, ``width``): it stands in for one where no GIS package is at hand."""

    col_off: int
    row_off: int
    width: int
    height: int


@dataclass(frozen=True)
class Block:
    """One block of the grid and its window with halo (clipped to the grid)."""

    row: int
    col: int
    core: Window | Box
    window: Window | Box

    @classmethod
    def alone(cls, row: int, height: int, width: int) -> Block:
        """An array painted on its own (a dataset pair), without halo; ``row`` keys its noise."""
        whole = Box(0, 0, width, height)
        return cls(row, 0, whole, whole)

    @property
    def core_in_window(self) -> tuple[slice, slice]:
        """The core as array slices of the window."""
        r0 = int(self.core.row_off - self.window.row_off)
        c0 = int(self.core.col_off - self.window.col_off)
        return slice(r0, r0 + int(self.core.height)), slice(c0, c0 + int(self.core.width))

    @property
    def phase(self) -> int:
        return (self.row % 2) * 2 + self.col % 2


@dataclass(frozen=True)
class Plan:
    """How a grid is cut into blocks."""

    grid: Grid
    block_size: int
    halo: int

    def __post_init__(self) -> None:
        if self.block_size % TILE:
            raise ValueError(f"block size must be a multiple of {TILE}")
        if 2 * self.halo > self.block_size:
            raise ValueError("halo must be at most half a block")

    @property
    def rows(self) -> int:
        return -(-self.grid.height // self.block_size)

    @property
    def cols(self) -> int:
        return -(-self.grid.width // self.block_size)

    def block(self, row: int, col: int) -> Block:
        from rasterio.windows import Window  # blocks of a grid are read and written by rasterio

        size, halo = self.block_size, self.halo
        r0, c0 = row * size, col * size
        r1, c1 = min(r0 + size, self.grid.height), min(c0 + size, self.grid.width)
        w_r0, w_c0 = max(r0 - halo, 0), max(c0 - halo, 0)
        w_r1, w_c1 = min(r1 + halo, self.grid.height), min(c1 + halo, self.grid.width)
        return Block(
            row,
            col,
            Window(c0, r0, c1 - c0, r1 - r0),
            Window(w_c0, w_r0, w_c1 - w_c0, w_r1 - w_r0),
        )

    def blocks(self) -> Iterator[Block]:
        """Every block in row-major order (for passes where order does not matter)."""
        for row in range(self.rows):
            for col in range(self.cols):
                yield self.block(row, col)

    def phased(self) -> Iterator[Block]:
        """Every block, phase by phase (the order of the event pass)."""
        return iter(sorted(self.blocks(), key=lambda b: (b.phase, b.row, b.col)))

    def phases(self) -> list[list[Block]]:
        """The blocks of each phase, in ``phased`` order; empty phases left out."""
        groups: list[list[Block]] = [[], [], [], []]
        for block in self.phased():
            groups[block.phase].append(block)
        return [group for group in groups if group]

    def __len__(self) -> int:
        return self.rows * self.cols


def make_plan(grid: Grid, block_size: int, halo_m: float) -> Plan:
    """A plan whose halo covers ``halo_m`` metres, with blocks no larger than needed."""
    pixel = min(grid.pixel_size_m())
    halo = int(-(-halo_m // pixel)) + 2
    longest = max(grid.width, grid.height)
    size = min(block_size, -(-longest // TILE) * TILE)
    if 2 * halo > size:
        size = max(size, -(-2 * halo // TILE) * TILE)
    return Plan(grid, size, min(halo, size // 2))
