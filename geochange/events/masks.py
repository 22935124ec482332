"""Fast operations on the boolean masks of a window: morphology, boxes, a coarse lattice, pieces.

A window is about 2560 x 2560 pixels and every event runs on every window, so these replace the
generic ``scipy.ndimage`` calls where those dominate: a dilation by shifted ORs costs a tenth of
``binary_dilation``; smooth fields are computed on a lattice of cells and interpolated instead of
at every pixel; and connected pieces of a sparse mask are labelled only on the tiles they touch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

Box = tuple[slice, slice]
EIGHT = np.ones((3, 3), bool)
"""8-connectivity: pixels touching at a corner belong to the same object."""
TILE = 16
"""Side of the tiles on which sparse masks are labelled."""
LATTICE_M = 2.0
"""Cell size of the lattices that smooth fields (distances, noise) are computed on: distances
measured there are off by up to about a cell."""
FOUR = ndimage.generate_binary_structure(2, 1)
"""4-connectivity: pixels touch only along an edge."""


def is_in(classes: np.ndarray, values: tuple[int, ...]) -> np.ndarray:
    """``np.isin`` for a few values, by comparisons: ten times faster (``np.isin`` sorts)."""
    out = classes == values[0]
    for value in values[1:]:
        out |= classes == value
    return out


def dilate(mask: np.ndarray, steps: int = 1, corners: bool = True) -> np.ndarray:
    """``mask`` grown by ``steps`` pixels: a square (8-neighbour) or, with ``corners=False``
    and one step, a cross (4-neighbour). Same result as ``ndimage.binary_dilation``, by ORs of
    shifted copies, the shift doubling each time (a mask grown by r can be shifted by r + 1
    without leaving gaps, even where the array's edge cuts it)."""
    rows = _grow(mask, steps, 0)
    if corners:
        return _grow(rows, steps, 1)
    rows |= _grow(mask, steps, 1)
    return rows


def _grow(mask: np.ndarray, steps: int, axis: int) -> np.ndarray:
    """A copy of ``mask`` grown by ``steps`` pixels both ways along ``axis``."""
    grown, reach = mask, 0
    if steps < 1:
        return mask.copy()
    while reach < steps:
        # a few small shifts of the same copy, or one shift as large as is safe
        shifts = range(1, steps + 1) if steps <= 2 else [min(steps - reach, reach + 1)]
        out = grown.copy()
        for shift in shifts:
            ahead = (slice(shift, None), slice(None))[:: 1 if axis == 0 else -1]
            behind = (slice(None, -shift), slice(None))[:: 1 if axis == 0 else -1]
            out[ahead] |= grown[behind]
            out[behind] |= grown[ahead]
        grown, reach = out, reach + shifts[-1]
    return grown


def erode(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    """``mask`` shrunk by ``steps`` pixels (square); as ``ndimage.binary_erosion``, the area
    outside the array counts as empty."""
    out = ~dilate(~mask, steps)
    out[:steps] = out[-steps:] = False
    out[:, :steps] = out[:, -steps:] = False
    return out


def bounding_box(mask: np.ndarray, margin: int = 0, align: int = 1) -> Box | None:
    """Rows and columns holding ``mask`` pixels, widened by ``margin`` (its start rounded down
    to a multiple of ``align``) and clipped to the array; ``None`` for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if not rows.size:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    r0 = max(rows[0] - margin, 0) // align * align
    c0 = max(cols[0] - margin, 0) // align * align
    return (
        slice(r0, min(rows[-1] + margin + 1, mask.shape[0])),
        slice(c0, min(cols[-1] + margin + 1, mask.shape[1])),
    )


def pool(mask: np.ndarray, size: int, count: bool = False) -> np.ndarray:
    """Per ``size`` x ``size`` block (the last ones padded): whether it holds a ``mask`` pixel,
    or with ``count`` how many (uint16)."""
    h, w = -(-mask.shape[0] // size), -(-mask.shape[1] // size)
    combine = np.add if count else np.logical_or
    padded = np.zeros((h * size, w * size), np.uint16 if count else bool)
    padded[: mask.shape[0], : mask.shape[1]] = mask
    rows = padded[0::size].copy()
    for k in range(1, size):
        combine(rows, padded[k::size], out=rows)
    out = rows[:, 0::size].copy()
    for k in range(1, size):
        combine(out, rows[:, k::size], out=out)
    return out


def expand(cells: np.ndarray, size: int, shape: tuple[int, int]) -> np.ndarray:
    """Per-block values back to pixels of an array of ``shape`` (inverse of :func:`pool`)."""
    return np.repeat(np.repeat(cells, size, 0), size, 1)[: shape[0], : shape[1]]


class Lattice:
    """Cells of ``size`` x ``size`` pixels over an array, with a node at each cell's centre.

    Smooth fields (a distance, a noise) are computed per node and interpolated (bilinear) to
    pixels, at about ``size``² times less cost than at every pixel.
    """

    def __init__(self, shape: tuple[int, int], size: int) -> None:
        self.shape, self.size = shape, size
        self.cells = (-(-shape[0] // size), -(-shape[1] // size))

    def at(self, fields: list[np.ndarray], flat: np.ndarray) -> list[np.ndarray]:
        """The ``fields`` (arrays of node values) at pixels ``flat`` (flat indices), float32.

        Each field is interpolated down the rows first (one value per pixel row and node
        column: cheap), then across, for the whole array where the pixels are many, else
        pixel by pixel.
        """
        if flat.size > 0.35 * self.shape[0] * self.shape[1]:
            return [self._across(self._down(field)).ravel()[flat] for field in fields]
        rows, cols = np.divmod(flat, self.shape[1])
        # position among the node columns of the held (edge-padded) rows
        x = (cols.astype(np.float32) + 0.5) / self.size + 0.5
        left = x.astype(np.int64)
        x -= left
        left += rows * (self.cells[1] + 2)
        values = []
        for field in fields:
            down = self._down(field).ravel()
            value = down[left]
            value += (down[left + 1] - value) * x
            values.append(value)
        return values

    def lowest(self, field: np.ndarray) -> np.ndarray:
        """Per quad (the pixels interpolated from the same four nodes, nodes held beyond the
        edges): the lowest of its nodes, which bounds its pixels' values from below."""
        padded = np.pad(field, 1, mode="edge")
        return np.minimum(
            np.minimum(padded[:-1, :-1], padded[1:, :-1]),
            np.minimum(padded[:-1, 1:], padded[1:, 1:]),
        )

    def quad_min(self, values: np.ndarray) -> np.ndarray:
        """Per quad (see :meth:`lowest`): the lowest of its pixels' ``values``."""
        size, (h, w) = self.size, self.cells
        before = size - size // 2
        padded = np.full(((h + 1) * size, (w + 1) * size), values.max(), values.dtype)
        padded[before : before + self.shape[0], before : before + self.shape[1]] = values
        rows = padded[0::size].copy()
        for k in range(1, size):
            np.minimum(rows, padded[k::size], out=rows)
        out = rows[:, 0::size].copy()
        for k in range(1, size):
            np.minimum(out, rows[:, k::size], out=out)
        return out

    def quad_pixels(self, quads: np.ndarray) -> np.ndarray:
        """Per-quad values (as from :meth:`lowest`) spread to the quads' pixels."""
        rows, cols = (
            np.bincount((2 * np.arange(n) + 1 + self.size) // (2 * self.size), minlength=m + 1)
            for n, m in zip(self.shape, self.cells, strict=True)
        )
        return np.repeat(np.repeat(quads, rows, axis=0), cols, axis=1)

    def _down(self, field: np.ndarray) -> np.ndarray:
        """Node values interpolated to every pixel row, one column of nodes held beyond each
        edge: shape (rows, node columns + 2)."""
        size, (h, w) = self.size, self.cells
        padded = np.pad(field.astype(np.float32), 1, mode="edge")
        offset = (np.arange(size) + 0.5) / size - 0.5
        before = np.floor(offset).astype(int)
        weight = (offset - before).astype(np.float32)
        rows = np.empty((h, size, w + 2), np.float32)
        for k in range(size):
            top = padded[1 + before[k] : 1 + before[k] + h]
            bottom = padded[2 + before[k] : 2 + before[k] + h]
            np.multiply(bottom - top, weight[k], out=rows[:, k])
            rows[:, k] += top
        return rows.reshape(h * size, w + 2)[: self.shape[0]]

    def _across(self, rows: np.ndarray) -> np.ndarray:
        """Rows from :meth:`_down` interpolated to every pixel."""
        size, w = self.size, self.cells[1]
        offset = (np.arange(size) + 0.5) / size - 0.5
        before = np.floor(offset).astype(int)
        weight = (offset - before).astype(np.float32)
        out = np.empty((self.shape[0], w, size), np.float32)
        for k in range(size):
            left = rows[:, 1 + before[k] : 1 + before[k] + w]
            right = rows[:, 2 + before[k] : 2 + before[k] + w]
            np.multiply(right - left, weight[k], out=out[:, :, k])
            out[:, :, k] += left
        return out.reshape(self.shape[0], w * size)[:, : self.shape[1]]


@dataclass
class Runs:
    """The horizontal runs of equal, non-zero labels in a label image, in raster order.

    Per-object sums (size, centroid, moments) and bounds follow from the runs in closed form,
    at a fraction of the cost of visiting every pixel.
    """

    label: np.ndarray
    row: np.ndarray
    start: np.ndarray
    """First column."""
    length: np.ndarray
    width: int
    """Columns of the image."""

    @classmethod
    def of(cls, labels: np.ndarray) -> Runs:
        starts = np.ones(labels.shape, bool)
        np.not_equal(labels[:, 1:], labels[:, :-1], out=starts[:, 1:])
        first = np.flatnonzero(starts)
        length = np.diff(first, append=labels.size)
        label = labels.ravel()[first]
        keep = label > 0
        row, start = np.divmod(first[keep], labels.shape[1])
        return cls(label[keep], row, start, length[keep], labels.shape[1])

    @property
    def stop(self) -> np.ndarray:
        """Last column."""
        return self.start + self.length - 1

    def total(self, n: int, per_run: np.ndarray | None = None) -> np.ndarray:
        """Per label 0..n: the sum of ``per_run`` (default: the pixel count)."""
        weights = self.length if per_run is None else per_run
        return np.bincount(self.label, weights, minlength=n + 1).astype(float)

    def column_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Per run: the sum of its pixels' columns, and of their squares."""
        s, n = self.start.astype(float), self.length.astype(float)
        return n * s + n * (n - 1) / 2, n * s * s + s * n * (n - 1) + (n - 1) * n * (2 * n - 1) / 6

    def bounds(self, n: int) -> np.ndarray:
        """Per label 0..n: first row, last row, first column, last column (0 for none)."""
        out = np.zeros((4, n + 1), np.int64)
        out[0] = out[2] = np.iinfo(np.int64).max
        np.minimum.at(out[0], self.label, self.row)
        np.maximum.at(out[1], self.label, self.row)
        np.minimum.at(out[2], self.label, self.start)
        np.maximum.at(out[3], self.label, self.stop)
        out[:, np.bincount(self.label, minlength=n + 1) == 0] = 0
        return out

    def pixels(self, take: np.ndarray) -> np.ndarray:
        """Flat indices of the pixels of the runs where ``take`` (per run) is set."""
        length = self.length[take]
        first = self.row[take] * self.width + self.start[take]
        ends = np.cumsum(length)
        within = np.arange(ends[-1] if ends.size else 0) - np.repeat(ends - length, length)
        return np.repeat(first, length) + within


def label_classes(
    classes: np.ndarray, wanted: tuple[int, ...]
) -> tuple[np.ndarray, Runs, np.ndarray]:
    """The 8-connected pieces of one class, for every class in ``wanted`` at once, numbered
    as labelling each class's mask in turn would.

    Returns the label image (0 elsewhere), its runs, and the class of each label (index 0
    unused). Runs of one class that touch in consecutive rows are joined (a union-find over
    runs), which is several times faster than labelling each class's mask.
    """
    height, width = classes.shape
    starts = np.ones(classes.shape, bool)
    np.not_equal(classes[:, 1:], classes[:, :-1], out=starts[:, 1:])
    first = np.flatnonzero(starts)
    length = np.diff(first, append=classes.size)
    value = classes.ravel()[first]
    row, start = np.divmod(first, width)
    class_order = np.full(max(256, int(value.max()) + 1), -1)
    class_order[list(wanted)] = np.arange(len(wanted))
    taken = class_order[value] >= 0
    # the runs of the next row within one column of a run's ends (8-connectivity)
    upper = np.flatnonzero(taken & (row < height - 1))
    below = (row[upper] + 1) * width
    lo = np.searchsorted(first, below + np.maximum(start[upper] - 1, 0), side="right") - 1
    hi = np.searchsorted(
        first, below + np.minimum(start[upper] + length[upper], width - 1), "right"
    )
    count = hi - lo
    a = np.repeat(upper, count)
    ends = np.cumsum(count)
    b = np.repeat(lo, count) + np.arange(a.size) - np.repeat(ends - count, count)
    same = value[a] == value[b]
    graph = coo_matrix((np.ones(int(same.sum()), bool), (a[same], b[same])), (first.size,) * 2)
    _, piece = connected_components(graph, directed=False)
    # number the pieces 1..n class by class (in ``wanted`` order), then in raster order, as
    # labelling the classes one by one would
    used, first_run, piece = np.unique(piece[taken], return_index=True, return_inverse=True)
    rank = np.empty(used.size, np.int32)
    rank[np.lexsort((first_run, class_order[value[taken][first_run]]))] = np.arange(
        1, used.size + 1, dtype=np.int32
    )
    label = np.zeros(first.size, np.int32)
    label[taken] = rank[piece.ravel()]
    owner = np.zeros(used.size + 1, classes.dtype)
    owner[label[taken]] = value[taken]
    image = np.repeat(label, length).reshape(classes.shape)
    runs = Runs(label[taken], row[taken], start[taken], length[taken], width)
    return image, runs, owner


class Pieces:
    """The connected pieces of a mask (ids 0..count-1): their sizes, which piece given pixels
    are in, and the pixels of chosen pieces."""

    count: int
    sizes: np.ndarray
    cut: np.ndarray
    """Per piece: whether it continues outside the tiles looked at (its size is unknown)."""

    def of(self, flat: np.ndarray) -> np.ndarray:
        """The pieces of mask pixels ``flat`` (flat indices)."""
        raise NotImplementedError

    def pixels(self, chosen: np.ndarray) -> np.ndarray:
        """Flat indices of the pixels of the pieces where ``chosen`` (per piece) is set."""
        raise NotImplementedError


class _LabelledPieces(Pieces):
    """Pieces of a mask that fills much of its array: one ``ndimage.label``, read as runs."""

    def __init__(self, mask: np.ndarray, region: np.ndarray, corners: bool) -> None:
        inside = mask & region
        self.labels, self.count = ndimage.label(inside, EIGHT if corners else FOUR)
        self.runs = Runs.of(self.labels)
        self.sizes = np.bincount(self.runs.label - 1, self.runs.length, self.count).astype(int)
        self.cut = np.zeros(self.count + 1, bool)
        self.cut[self.labels[dilate(mask & ~region, 1, corners) & inside]] = True
        self.cut = self.cut[1:]

    def of(self, flat: np.ndarray) -> np.ndarray:
        return self.labels.ravel()[flat] - 1

    def pixels(self, chosen: np.ndarray) -> np.ndarray:
        return self.runs.pixels(chosen[self.runs.label - 1])


class _TiledPieces(Pieces):
    """Pieces of a sparse mask, labelled tile by tile and joined across tile edges: the cost
    follows the tiles used instead of the whole array."""

    def __init__(self, mask: np.ndarray, active: np.ndarray, corners: bool) -> None:
        height, width = mask.shape
        h, w, t = *active.shape, TILE
        ti, tj = np.nonzero(active)
        padded = np.zeros((h * t + 2, w * t + 2), bool)
        padded[1 : height + 1, 1 : width + 1] = mask
        s0, s1 = padded.strides
        windows = as_strided(
            padded, (h, w, t + 2, t + 2), (t * s0, t * s1, s0, s1), writeable=False
        )
        # one label call for the stack of tiles, with no connection from one tile to the next
        structure = np.zeros((3, 3, 3), bool)
        structure[1] = EIGHT if corners else FOUR
        labels, n = ndimage.label(windows[ti, tj], structure)
        self.piece, self.count = _join_tiles(labels, n, ti, tj, active.shape)
        self.labels, self.width = labels, width
        self.index = np.full(active.shape, -1, np.int64)
        self.index[ti, tj] = np.arange(ti.size)
        home = labels[:, 1 : t + 1, 1 : t + 1]
        k, r, c = np.nonzero(home)
        self.flat = (ti[k] * t + r).astype(np.int64) * width + tj[k] * t + c
        self.ids = self.piece[home[k, r, c]]
        self.sizes = np.bincount(self.ids, minlength=self.count)
        near = np.zeros((h + 2, w + 2), bool)
        near[1:-1, 1:-1] = active
        around = np.stack([near[ti + dr, tj + dc] for dr in range(3) for dc in range(3)], axis=1)
        part = np.r_[0, np.ones(t, int), 2]
        outside = ~around.reshape(-1, 3, 3)[:, part][:, :, part] & (labels > 0)
        self.cut = np.zeros(self.count, bool)
        self.cut[self.piece[labels[outside]]] = True

    def of(self, flat: np.ndarray) -> np.ndarray:
        rows, cols = np.divmod(flat, self.width)
        k = self.index[rows // TILE, cols // TILE]
        return self.piece[self.labels[k, rows % TILE + 1, cols % TILE + 1]]

    def pixels(self, chosen: np.ndarray) -> np.ndarray:
        return self.flat[chosen[self.ids]]


def pieces(mask: np.ndarray, active: np.ndarray | None = None, corners: bool = True) -> Pieces:
    """The connected pieces of ``mask`` inside the ``active`` tiles (default: all it touches),
    8-connected or, without ``corners``, 4-connected."""
    if active is None:
        active = pool(mask, TILE)
    if np.count_nonzero(active) * (TILE + 2) ** 2 > 0.3 * mask.size:
        return _LabelledPieces(mask, expand(active, TILE, mask.shape), corners)
    return _TiledPieces(mask, active, corners)


def _join_tiles(
    labels: np.ndarray, n: int, ti: np.ndarray, tj: np.ndarray, grid: tuple[int, int]
) -> tuple[np.ndarray, int]:
    """Per tile label: its piece, joining labels that share pixels in overlapping tile edges.

    Each tile's window has a one-pixel rim, so neighbouring windows share two rows or columns.
    Returns the piece of each label (0..m-1; label 0, the background, gets 0 too) and m.
    """
    t = labels.shape[1] - 2
    index = np.full((grid[0] + 2, grid[1] + 2), -1, np.int64)
    index[ti + 1, tj + 1] = np.arange(ti.size)
    edge, start, every = slice(t, t + 2), slice(0, 2), slice(None)
    ours, theirs = [np.zeros(0, np.int32)], [np.zeros(0, np.int32)]
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        other = index[ti + 1 + dr, tj + 1 + dc]
        sel = np.flatnonzero(other >= 0)
        rows = (edge, start) if dr else (every, every)
        cols = {1: (edge, start), -1: (start, edge), 0: (every, every)}[dc]
        a = labels[sel][:, rows[0], cols[0]].ravel()
        b = labels[other[sel]][:, rows[1], cols[1]].ravel()
        ours.append(a[a > 0])
        theirs.append(b[a > 0])
    a, b = np.concatenate(ours), np.concatenate(theirs)
    graph = coo_matrix((np.ones(a.size, bool), (a, b)), shape=(n + 1, n + 1))
    _, piece = connected_components(graph, directed=False)
    used, piece = np.unique(piece[1:], return_inverse=True)
    return np.concatenate([[0], piece.ravel()]), used.size
