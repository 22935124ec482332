"""Ragged fronts: land taken by fronts advancing from a source (forest edges, shores, seeds).

A pixel's cost is its distance from the source scaled by a smooth random field, so fronts
advance in lobes and bays with ragged edges instead of an even ring, and the cheapest pixels are
taken. Both fields are smooth, so they are computed on a lattice of cells about ``LATTICE_M``
across and interpolated to the pixels; the first few pixels from the source, where the lattice is
too coarse, are measured by dilation steps, and fronts stop a cell short of their reach to keep
within it. Everything is cropped to the pixels that can be reached, in separate parts where they
lie in separate clusters (the seeds of new copses), and only pixels that may be among the
cheapest are priced.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from geochange.events.base import EventWindow
from geochange.events.masks import (
    EIGHT,
    LATTICE_M,
    TILE,
    Box,
    Lattice,
    bounding_box,
    dilate,
    erode,
    expand,
    pieces,
    pool,
)

HOLE_M2 = 30.0
"""Holes smaller than this left inside a grown area are filled: they read as noise, not land."""
OPEN_M = 1.0
"""Slivers narrower than about twice this are removed from a grown area."""
CLUSTER = 64
"""Pixels a front can reach that are a tile of this many pixels apart are worked on in separate
crops (at most ``MAX_PARTS``), unless that saves little."""
MAX_PARTS = 12
TOLERANCE = 0.05
"""Share of its target a front may miss by when it can reach more (tidying leaves jumps)."""
GROW_TRIES = 12
"""Selections a front tries (each opened and tidied) to come near its goal."""


def smooth_noise(lattice: Lattice, cell_px: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field of about unit spread whose blobs are about ``cell_px`` pixels across,
    at the nodes of ``lattice``.

    Drawn on a grid of four samples per blob (blurred) and interpolated to the nodes, or drawn
    on the nodes where they are coarser than that, so the cost grows with neither the blob size
    nor the pixel count.
    """
    step = max(cell_px / 4, 1.0) / lattice.size
    if step <= 1.0:
        white = rng.standard_normal(lattice.cells, np.float32)
        field = ndimage.gaussian_filter(white, max(1.5 * step, 0.5), mode="wrap")
    else:
        shape = (int(lattice.cells[0] / step) + 3, int(lattice.cells[1] / step) + 3)
        coarse = ndimage.gaussian_filter(rng.standard_normal(shape, np.float32), 1.5, mode="wrap")
        field = ndimage.zoom(coarse, step, order=1, prefilter=False)
        field = field[: lattice.cells[0], : lattice.cells[1]]
    # unit spread at the pixels: interpolating between nodes smooths a fine field out. A crop
    # too small to measure the spread on keeps the field's own; the clip keeps exp() finite.
    rows = min(lattice.size, lattice.shape[0])
    first = (lattice.shape[0] - rows) // 2 * lattice.shape[1]
    (at,) = lattice.at([field], np.arange(first, first + rows * lattice.shape[1]))
    spread = at.std() if at.size > 16 else 0.0
    return np.clip(field / (spread if spread > 0.1 else field.std() or 1.0), -4.0, 4.0)


def ragged_grow(
    window: EventWindow,
    source: np.ndarray,
    into: np.ndarray,
    target: int,
    rng: np.random.Generator,
    reach_m: float,
    grain_m: float = 30.0,
    roughness: float = 1.2,
) -> np.ndarray:
    """About ``target`` pixels of ``into`` (within ``TOLERANCE`` of it, unless fewer can be
    reached) taken by fronts advancing from ``source``.

    The fronts advance in lobes and bays (wide as ``grain_m``, deeper with ``roughness``) with
    ragged edges; the cheapest pixels within ``reach_m`` that stay connected to ``source`` are
    taken, without slivers or small holes. ``source`` pixels that are also ``into`` (seed points)
    are taken as well.
    """
    out = np.zeros(window.shape, bool)
    boxes = (bounding_box(source), bounding_box(into)) if target > 0 else (None,)
    if None in boxes:
        return out
    pixel = window.pixel_size_m
    reach = (int(np.ceil(reach_m / pixel[1])) + 1, int(np.ceil(reach_m / pixel[0])) + 1)
    # where the source's and ``into``'s boxes, widened by the reach, meet: nothing else counts
    box = tuple(
        slice(max(max(a.start, b.start) - r, 0), min(min(a.stop, b.stop) + r, n))
        for a, b, r, n in zip(*boxes, reach, window.shape, strict=True)
    )
    if any(part.start >= part.stop for part in box):
        return out
    src, inn = source[box], into[box]
    seeds = src & inn
    out[box] = seeds
    goal = target - int(np.count_nonzero(seeds))
    size = max(1, int(round(LATTICE_M / min(pixel))))
    distance = ndimage.distance_transform_edt(
        ~pool(src, size), sampling=(size * pixel[1], size * pixel[0])
    ).astype(np.float32)
    near = expand(distance <= reach_m, size, src.shape) & inn & ~src
    steps = max(1, int(round(OPEN_M / min(pixel))))
    grain_px = grain_m / min(pixel)
    parts = []
    for crop in _crops(near, max(steps, size + 1) + 1, size) if goal > 0 else []:
        lattice = Lattice(near[crop].shape, size)
        noise = roughness * smooth_noise(lattice, grain_px, rng)
        noise += 0.4 * smooth_noise(lattice, max(grain_px / 8, 2.0), rng)
        cells = tuple(slice(part.start // size, -(-part.stop // size)) for part in crop)
        parts.append(
            _Part(crop, src[crop], near[crop], lattice, distance[cells], noise, pixel, reach_m)
        )
    if parts:
        front = _Front(parts, goal, steps, HOLE_M2 / window.pixel_area_m2)
        for part, chosen in zip(parts, front.grow(goal, TOLERANCE * target), strict=True):
            out[box][part.crop] |= chosen
    return out


def _crops(near: np.ndarray, margin: int, align: int) -> list[Box]:
    """Disjoint boxes (widened by ``margin``, starting at multiples of ``align``) around the
    clusters of ``near`` pixels, or one box around them all."""
    whole = bounding_box(near, margin, align)
    if whole is None:
        return []
    labels, n = ndimage.label(pool(near, CLUSTER), EIGHT)
    if n == 1 or n > MAX_PARTS:
        return [whole]
    boxes = []
    for rows, cols in ndimage.find_objects(labels):
        r0, c0 = rows.start * CLUSTER, cols.start * CLUSTER
        inner = bounding_box(near[r0 : rows.stop * CLUSTER, c0 : cols.stop * CLUSTER])
        box = (
            max(r0 + inner[0].start - margin, 0) // align * align,
            min(r0 + inner[0].stop + margin, near.shape[0]),
            max(c0 + inner[1].start - margin, 0) // align * align,
            min(c0 + inner[1].stop + margin, near.shape[1]),
        )
        # merge with the boxes it overlaps, as often as the union overlaps another
        while (hit := next((b for b in boxes if _overlap(b, box)), None)) is not None:
            boxes.remove(hit)
            box = (
                min(hit[0], box[0]),
                max(hit[1], box[1]),
                min(hit[2], box[2]),
                max(hit[3], box[3]),
            )
        boxes.append(box)
    area = sum((b[1] - b[0]) * (b[3] - b[2]) for b in boxes)
    if area > 0.6 * (whole[0].stop - whole[0].start) * (whole[1].stop - whole[1].start):
        return [whole]
    return [(slice(b[0], b[1]), slice(b[2], b[3])) for b in boxes]


def _overlap(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether boxes (first row, end row, first column, end column) share a pixel."""
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


class _Part:
    """The pixels a front may take inside one crop of the window, and what each costs.

    Only the pixels that may be among the cheapest are priced: the pixels of a quad (those
    interpolated from the same four lattice nodes) cost at least its ``bound``, so pricing every
    quad whose bound is under a limit gives all the pixels that cost less than the limit.
    """

    def __init__(
        self,
        crop: Box,
        source: np.ndarray,
        near: np.ndarray,
        lattice: Lattice,
        distance: np.ndarray,
        noise: np.ndarray,
        pixel: tuple[float, float],
        reach_m: float,
    ) -> None:
        """Candidates are the ``near`` pixels within ``reach_m`` of ``source``. Their distance
        is interpolated from the lattice's ``distance`` but counted in pixel steps close to the
        source, where cells are too coarse; their cost is that distance scaled by ``noise``.
        """
        self.crop, self.lattice, self.near, self.fields = crop, lattice, near, [distance, noise]
        self.reach_m, self.margin_m = reach_m, lattice.size * max(pixel)
        self.step_m = float(np.sqrt(pixel[0] * pixel[1]))
        self.rings = _ring_steps(source, lattice.size + 1)
        self.touching = dilate(source)
        # close to the source a pixel's distance is counted in steps; farther out it is
        # interpolated, so no lower than the quad's lowest node
        close = lattice.size + 1
        steps = lattice.quad_min(self.rings).astype(np.float32)
        farther = np.maximum(lattice.lowest(distance), (close + 0.5) * self.step_m)
        lowest = np.where(steps <= close, steps * self.step_m, farther)
        self.bound = lowest * np.exp(lattice.lowest(noise))
        self.node_cost = distance * np.exp(noise)
        self.counts = pool(near, lattice.size, count=True)
        # where gaps are looked for: every candidate, priced or not (pricing adds the rest)
        far = expand(distance > reach_m - 2 * self.margin_m, lattice.size, near.shape)
        self.candidates = near & ~far
        self.flat, self.cost = np.zeros(0, np.int64), np.zeros(0, np.float32)
        self.priced, self.complete = -np.inf, False

    def price(self, limit: float) -> None:
        """Price the pixels of the quads whose bound is under ``limit`` (and not yet priced)."""
        size = self.lattice.size
        cells = (self.bound <= limit) & (self.bound > self.priced)
        flat = np.flatnonzero(self.lattice.quad_pixels(cells) & self.near)
        coarse, noise = self.lattice.at(self.fields, flat)
        rings = self.rings.ravel()[flat]
        exact = rings <= size + 1
        metres = np.where(
            exact, rings * self.step_m, np.maximum(coarse, (size + 1.5) * self.step_m)
        )
        inside = metres <= np.where(exact, self.reach_m, self.reach_m - self.margin_m)
        self.flat = np.concatenate([self.flat, flat[inside]])
        self.cost = np.concatenate([self.cost, metres[inside] * np.exp(noise[inside])])
        self.candidates.ravel()[flat[inside]] = True
        self.priced = limit
        self.complete = bool((self.bound <= limit).all())

    def opened(self, threshold: float, steps: int) -> np.ndarray:
        """The candidates that cost ``threshold`` or less, opened by ``steps`` (no slivers)."""
        chosen = np.zeros(self.near.shape, bool)
        chosen.ravel()[self.flat[self.cost <= threshold]] = True
        return dilate(erode(chosen, steps), steps)

    def tidy(self, chosen: np.ndarray, hole_px: float) -> np.ndarray:
        """``chosen`` with its holes under ``hole_px`` pixels filled, keeping the pieces that
        touch the source."""
        gap = self.candidates & ~chosen
        gaps = pieces(gap, dilate(pool(chosen, TILE)))
        if gaps.count:
            beside = np.zeros(gaps.count, bool)
            beside[gaps.of(np.flatnonzero(dilate(chosen) & gap))] = True
            fill = (gaps.sizes < hole_px) & beside & ~gaps.cut
            if fill.any():
                chosen = chosen.copy()
                chosen.ravel()[gaps.pixels(fill)] = True
        found = pieces(chosen)
        keep = np.zeros(found.count, bool)
        keep[found.of(np.flatnonzero(self.touching & chosen))] = True
        if not keep.all():
            chosen = chosen.copy()
            chosen.ravel()[found.pixels(~keep)] = False
        return chosen


class _Front:
    """Parts of a front that share one threshold: the cheapest pixels over all are taken."""

    def __init__(self, parts: list[_Part], goal: int, steps: int, hole_px: float) -> None:
        self.parts, self.steps, self.hole_px = parts, steps, hole_px
        cost = np.concatenate([part.node_cost.ravel() for part in parts])
        counts = np.concatenate([part.counts.ravel() for part in parts])
        self.limit = _quantile(cost, counts, 2 * goal)
        self._price()

    def _price(self) -> None:
        for part in self.parts:
            part.price(self.limit)
        if all(part.complete for part in self.parts):
            self.limit = np.inf
        self.cost = np.concatenate([part.cost for part in self.parts])
        self.safe = int(np.count_nonzero(self.cost <= self.limit))

    def grow(self, goal: int, tolerance: float) -> list[np.ndarray]:
        """About ``goal`` pixels over all parts (within ``tolerance`` where the front can reach
        that many), opened (no slivers), small holes filled, all connected to the source.

        The number of cheapest pixels to take is searched on what is left after tidying, not
        before: cheap pixels cut off from the source are dropped, so the share left is far from
        constant and jumps where a cheap pocket joins. Secant steps inside a bracket, every
        other one halving it, converge on such a curve; a ratio corrected once did not (it
        overshot by half or stopped at a fifth of the goal). A jump still left is bridged by
        advancing the smaller selection into the larger one.
        """
        empty = [np.zeros(part.near.shape, bool) for part in self.parts]
        best, best_miss = empty, float(goal)
        low, high = (0, 0), None
        low_chosen, high_chosen = empty, empty
        for step in range(GROW_TRIES if self.cost.size else 0):
            want = self._guess(goal, low, high, halve=step % 2 == 1)
            if want is None:
                break
            want = self._price_for(want)
            chosen = self._take(want)
            got = sum(int(np.count_nonzero(c)) for c in chosen)
            if abs(got - goal) < best_miss:
                best, best_miss = chosen, abs(got - goal)
            if best_miss <= tolerance or (got < goal and want == self.cost.size):
                break
            if got < goal:
                low, low_chosen = (want, got), chosen
            else:
                high, high_chosen = (want, got), chosen
        if best_miss > tolerance and high is not None:
            bridged = self._advance(low_chosen, high_chosen, goal)
            if abs(sum(int(np.count_nonzero(c)) for c in bridged) - goal) < best_miss:
                return bridged
        return best

    def _advance(
        self, low: list[np.ndarray], high: list[np.ndarray], goal: int
    ) -> list[np.ndarray]:
        """``low`` and the pixels of ``high`` beside the source, grown ring by ring inside
        ``high`` to about ``goal`` pixels: a cheap pocket that joins all at once is taken only
        as far as needed, as a front would advance into it."""
        inside = [lo | hi for lo, hi in zip(low, high, strict=True)]
        chosen = [
            lo | (part.touching & within)
            for lo, part, within in zip(low, self.parts, inside, strict=True)
        ]
        got = sum(int(np.count_nonzero(c)) for c in chosen)
        ring = 0
        while got < goal:
            ring += 1
            # 8- and 4-neighbour rings in turn follow Euclidean distance within a few percent
            grown = [
                dilate(c, 1, corners=ring % 2 == 1) & within
                for c, within in zip(chosen, inside, strict=True)
            ]
            more = sum(int(np.count_nonzero(g)) for g in grown)
            # a 4-neighbour ring may stall at a diagonal step that the next ring takes
            if (more == got and ring % 2 == 1) or more - goal > goal - got:
                break
            chosen, got = grown, more
        return chosen

    def _price_for(self, want: int) -> int:
        """``want``, once the ``want`` cheapest pixels are priced (at most every candidate)."""
        while want > self.safe and self.limit < np.inf:
            self.limit *= 2
            self._price()
        return min(want, self.cost.size)

    def _take(self, want: int) -> list[np.ndarray]:
        """The ``want`` cheapest priced pixels over all parts, opened and tidied, per part."""
        threshold = (
            np.inf if want == self.cost.size else np.partition(self.cost, want - 1)[want - 1]
        )
        return [part.tidy(part.opened(threshold, self.steps), self.hole_px) for part in self.parts]

    def _guess(
        self, goal: int, low: tuple[int, int], high: tuple[int, int] | None, halve: bool
    ) -> int | None:
        """Pixels to take for ``goal`` left after tidying, from the tries (taken, left) that
        left too few (``low``) and too many (``high``); ``None`` once they are adjacent."""
        if high is None:
            if low[1] > 0:
                return max(round(low[0] * goal / low[1] * 1.1), low[0] + 1)
            return round(1.6 * goal) if low[0] == 0 else 2 * low[0]
        if high[0] - low[0] <= 1:
            return None
        if halve:
            return (low[0] + high[0]) // 2
        want = low[0] + (high[0] - low[0]) * (goal - low[1]) / max(high[1] - low[1], 1)
        return int(min(max(round(want), low[0] + 1), high[0] - 1))


def _quantile(cost: np.ndarray, counts: np.ndarray, wanted: int) -> float:
    """About the cost under which ``wanted`` pixels lie, from per-cell costs and pixel counts
    (a histogram of log costs: sorting every cell would cost more than it saves)."""
    if counts.sum() <= wanted:
        return np.inf
    log = np.log(np.maximum(cost[counts > 0], 1e-6))
    low, span = log.min(), log.max() - log.min() + 1e-6
    bins = ((log - low) * (255 / span)).astype(np.int64)
    total = np.cumsum(np.bincount(bins, weights=counts[counts > 0], minlength=256))
    return float(np.exp(low + span * (np.searchsorted(total, wanted) + 1) / 255))


def _ring_steps(source: np.ndarray, most: int) -> np.ndarray:
    """Steps from ``source`` (1 to ``most``; ``most`` + 1 beyond) by alternating 8- and
    4-neighbour dilations, which follow Euclidean distance within a few percent."""
    steps = np.full(source.shape, most + 1, np.uint8)
    reached = source
    for k in range(1, most + 1):
        reached = dilate(reached, 1, corners=k % 2 == 1)
        np.subtract(steps, reached, out=steps, casting="unsafe")
    return steps
