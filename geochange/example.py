"""A made-up but plausible land cover to try geochange on: the edge of a small town.

The Quickstart and the tests need a region without shipping or copying real data, so this module
draws one from a seed: a street grid with building lots in the dense part, main roads that bend out
into the fields, a river, woods and field parcels. Structure sizes are in metres at the
OpenEarthMap ground sampling distance (0.5 m), so events and models see familiar shapes. Writing
files stays in `write_example`, at the end; the rest only makes the array and its georeferencing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import CRS
from scipy import ndimage, sparse

from geochange.classes import (
    AGRICULTURE,
    BARELAND,
    BUILDING,
    DEVELOPED,
    RANGELAND,
    ROAD,
    TREE,
    WATER,
)
from geochange.grid import Grid
from geochange.writing.folder import OutputFolder
from geochange.writing.geotiff import write_landcover

EXAMPLE_CRS = "EPSG:32633"
"""UTM zone 33N: metric, and the centre below lies in central Europe (about 50.1 N, 15.0 E)."""
EXAMPLE_CENTRE = (500_000.0, 5_550_000.0)
GSD = 0.5
"""Metres per pixel the structure is drawn for (OpenEarthMap's)."""

_PX = 1.0 / GSD  # pixels per metre
_STEP = 8.0  # spacing of path samples, px
_CHUNK = 16  # path segments measured together
_COARSE = 4  # clearance to paths is measured on a grid this much coarser, then interpolated
_CORNER = 3.0 * _PX  # lots keep this far from the cross street's curb

_RESIDENTIAL, _COMMERCIAL, _PARK, _VACANT, _GREEN = range(5)
_BLOCK_SHARES = (0.74, 0.10, 0.08, 0.04, 0.04)
_BLOCK_GROUND = np.array([RANGELAND, DEVELOPED, RANGELAND, BARELAND, RANGELAND], dtype=np.uint8)
_CROPS = np.array([AGRICULTURE, RANGELAND, BARELAND, TREE], dtype=np.uint8)
_CROP_SHARES = (0.74, 0.12, 0.09, 0.05)


def example_transform(size: int, gsd: float = GSD) -> Affine:
    """North-up transform that centres a region of ``size`` pixels on a fixed UTM 33N point."""
    half = size * gsd / 2
    return Affine(gsd, 0.0, EXAMPLE_CENTRE[0] - half, 0.0, -gsd, EXAMPLE_CENTRE[1] + half)


def example_landcover(size: int = 2048, seed: int = 0) -> np.ndarray:
    """Class indices (``size`` x ``size``, uint8) of a made-up town edge at 0.5 m, set by ``seed``.

    The town (a street grid with building lots) lies on one side, fields on the other; main roads
    cross both and a river winds through the outskirts.
    """
    rng = np.random.default_rng(seed)
    xx = np.arange(size, dtype=np.float32)[None, :]
    yy = np.arange(size, dtype=np.float32)[:, None]
    noise = _Noise.draw(rng, size)

    # Zoning: the position along a random direction, with a wavy border, decides town and fields.
    phi = float(rng.uniform(0, 2 * np.pi))
    along = (xx - size / 2) * np.float32(np.cos(phi)) + (yy - size / 2) * np.float32(np.sin(phi))
    town_edge = float(rng.uniform(-0.10, -0.02)) * size
    field_edge = town_edge + float(rng.uniform(0.08, 0.14)) * size
    wavy = along + np.float32(45 * _PX) * noise.low
    field_zone = wavy > field_edge

    grid = _StreetGrid.draw(rng, size, phi + float(rng.uniform(-0.45, 0.45)), xx, yy)
    river, river_half = _river_path(rng, size, phi, town_edge)
    river_clear = _path_clearance([(river, river_half)], size, reach=40 * _PX)
    town = _Town.draw(rng, grid, wavy < town_edge, town_edge - along, river_clear < 20 * _PX)
    del along, wavy
    grid.half_v[town.main_line] = rng.uniform(5.0, 6.5) * _PX  # the main street is a main road
    roads, field_angle = _main_roads(rng, size, phi, grid, town, field_zone)
    road_clear = _path_clearance(roads, size, reach=20 * _PX)

    cover = np.full((size, size), RANGELAND, dtype=np.uint8)
    _paint_outskirts(cover, noise, field_zone)
    _paint_fields(cover, rng, field_angle, xx, yy, noise, field_zone)
    cover[noise.woods + 0.35 * noise.mid + 0.15 * noise.fine > 1.45] = TREE
    street, in_block = _paint_town(cover, rng, grid, town, noise)
    open_land = ~(street | in_block)
    _paint_farmsteads(cover, rng, roads[2:], field_zone & open_land, road_clear, river_clear, noise)
    _paint_river(cover, river_clear, noise, open_land)
    for _ in range(1 + size // 2048):
        _paint_pond(cover, rng, noise, open_land, road_clear, river_clear)
    cover[street | (road_clear < 0)] = ROAD
    _tidy(cover)
    return cover


# --- smooth noise and interpolation ------------------------------------------------------------


def write_example(
    folder: str | Path, *, size: int = 2048, seed: int = 0, overwrite: bool = False
) -> Path:
    """Write ``folder/region.tif``: the example land cover as a styled COG."""
    grid = Grid(CRS.from_user_input(EXAMPLE_CRS), example_transform(size), size, size)
    with OutputFolder(folder, overwrite) as partial:
        write_landcover(partial / "region.tif", grid, example_landcover(size, seed))
    return Path(folder) / "region.tif"


def _interp_matrix(n_out: int, cell: float, cubic: bool) -> sparse.csr_matrix:
    """Sparse weights that resample a lattice of spacing ``cell`` px to ``n_out`` pixels.

    Linear weights interpolate (lattice node ``k`` sits at pixel ``k * cell``); cubic B-spline
    weights smooth, and are scaled so that resampled white noise keeps unit variance.
    """
    t = np.arange(n_out) / cell
    base = np.floor(t).astype(np.int64)
    f = t - base
    if cubic:
        weights = np.stack(
            [(1 - f) ** 3, 3 * f**3 - 6 * f**2 + 4, -3 * f**3 + 3 * f**2 + 3 * f + 1, f**3], axis=1
        )
        weights /= np.sqrt((weights**2).sum(axis=1, keepdims=True))
    else:
        weights = np.stack([1 - f, f], axis=1)
    cols = base[:, None] + np.arange(weights.shape[1])
    rows = np.repeat(np.arange(n_out), weights.shape[1])
    return sparse.csr_matrix(
        (weights.ravel().astype(np.float32), (rows, cols.ravel())),
        shape=(n_out, int(cols.max()) + 1),
    )


def _resample(lattice: np.ndarray, matrix: sparse.csr_matrix) -> np.ndarray:
    """``matrix @ lattice @ matrix.T`` for a square lattice, C-ordered, in two sparse passes."""
    return np.asarray(matrix @ (matrix @ lattice.T).T, dtype=np.float32)


def _noise(rng: np.random.Generator, size: int, cell: float) -> np.ndarray:
    """Smooth Gaussian noise (unit variance) with features about ``cell`` px across."""
    matrix = _interp_matrix(size, cell, cubic=True)
    n = matrix.shape[1]
    return _resample(rng.standard_normal((n, n), dtype=np.float32), matrix)


@dataclass(frozen=True)
class _Noise:
    """Noise fields shared by everything with ragged edges, from ~200 m features down to ~5 m."""

    low: np.ndarray
    woods: np.ndarray
    mid: np.ndarray
    fine: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, size: int) -> _Noise:
        return cls(*(_noise(rng, size, metres * _PX) for metres in (192.0, 80.0, 20.0, 5.0)))


# --- paths: roads and the river ----------------------------------------------------------------


def _wander(
    rng: np.random.Generator,
    start: np.ndarray,
    heading: float,
    bend: float,
    wavelength: float,
    size: int,
) -> np.ndarray:
    """Points ``(x, y)`` of a smoothly bending path from ``start`` until it leaves the image.

    The heading strays at most ``bend`` radians from ``heading``, so the path never turns back and
    always leaves.
    """
    margin = 64.0
    n = int(np.ceil(1.5 * (size + 2 * margin) / (_STEP * np.cos(bend)))) + 1
    s = np.arange(n) * _STEP
    freq = 2 * np.pi / (wavelength * np.array([1.0, 0.53, 0.29]))
    amp = np.array([1.0, 0.5, 0.25])
    phase = rng.uniform(0, 2 * np.pi, 3)
    wave = (amp * np.sin(s[:, None] * freq + phase)).sum(axis=1) - (amp * np.sin(phase)).sum()
    angle = heading + wave * bend / (2 * amp.sum())
    steps = _STEP * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    points = start + np.concatenate([np.zeros((1, 2)), np.cumsum(steps[:-1], axis=0)])
    outside = ((points < -margin) | (points > size + margin)).any(axis=1)
    end = int(np.argmax(outside)) if outside.any() else n - 1
    return points[: end + 1]


def _through(
    rng: np.random.Generator,
    point: np.ndarray,
    heading: float,
    bend: float,
    wavelength: float,
    size: int,
) -> np.ndarray:
    """A wandering path through ``point``, from image edge to image edge."""
    back = _wander(rng, point, heading + np.pi, bend, wavelength, size)
    ahead = _wander(rng, point, heading, bend, wavelength, size)
    return np.concatenate([back[::-1], ahead[1:]])


def _heading(path: np.ndarray, k: int) -> float:
    """Direction of ``path`` at its ``k``-th point."""
    a, b = path[max(k - 1, 0)], path[min(k + 1, len(path) - 1)]
    return float(np.arctan2(b[1] - a[1], b[0] - a[0]))


def _inside(points: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Which points lie at least ``margin`` px inside the image."""
    return ((points >= margin) & (points < size - margin)).all(axis=1)


def _segment_distance(xs: np.ndarray, ys: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Distance from each point of the grid ``ys`` x ``xs`` to the polyline ``path``."""
    a = path[:-1].astype(np.float32)
    ab = (path[1:] - path[:-1]).astype(np.float32)
    length2 = np.maximum((ab**2).sum(axis=1), 1e-6)
    px = xs.astype(np.float32)[None, :, None] - a[:, 0]
    py = ys.astype(np.float32)[:, None, None] - a[:, 1]
    t = np.clip((px * ab[:, 0] + py * ab[:, 1]) / length2, 0, 1)
    dist2 = (px - t * ab[:, 0]) ** 2 + (py - t * ab[:, 1]) ** 2
    return np.sqrt(dist2.min(axis=2))


def _path_clearance(paths: list[tuple[np.ndarray, float]], size: int, reach: float) -> np.ndarray:
    """Distance (px) from each pixel to the nearest path edge, negative on it, capped at ``reach``.

    ``paths`` holds ``(points, half_width)``. Distances are exact on a lattice ``_COARSE`` times
    coarser and interpolated: distance to a path is piecewise linear, so edges stay smooth at a
    fraction of the cost.
    """
    matrix = _interp_matrix(size, _COARSE, cubic=False)
    n = matrix.shape[1]
    lattice = np.full((n, n), reach, dtype=np.float32)
    for points, half_width in paths:
        for start in range(0, len(points) - 1, _CHUNK):
            chunk = points[start : start + _CHUNK + 1]
            pad = half_width + reach
            lo = np.clip(np.floor((chunk.min(axis=0) - pad) / _COARSE), 0, n).astype(int)
            hi = np.clip(np.ceil((chunk.max(axis=0) + pad) / _COARSE) + 1, 0, n).astype(int)
            if (hi <= lo).any():
                continue
            xs = np.arange(lo[0], hi[0]) * _COARSE
            ys = np.arange(lo[1], hi[1]) * _COARSE
            window = lattice[lo[1] : hi[1], lo[0] : hi[0]]
            np.minimum(window, _segment_distance(xs, ys, chunk) - half_width, out=window)
    return _resample(lattice, matrix)


def _river_path(
    rng: np.random.Generator, size: int, phi: float, town_edge: float
) -> tuple[np.ndarray, float]:
    """A meandering river across the outskirts, roughly parallel to the town's edge."""
    ahead = np.array([np.cos(phi), np.sin(phi)])
    across = np.array([-np.sin(phi), np.cos(phi)])
    offset = town_edge + rng.uniform(0.16, 0.30) * size
    point = size / 2 + offset * ahead + rng.uniform(-0.2, 0.2) * size * across
    heading = phi + np.pi / 2 + rng.uniform(-0.4, 0.4)
    path = _through(rng, point, heading, 0.9, rng.uniform(150, 300) * _PX, size)
    return path, float(rng.uniform(8, 13) * _PX)


# --- the town --------------------------------------------------------------------------------


@dataclass
class _StreetGrid:
    """The town's street grid in a frame turned by ``theta``.

    Long streets run along ``u`` at ``v = ev[j]``, cross streets along ``v`` at ``u = eu[i]``; the
    pixel at ``(u, v)`` lies in block ``(iu, iv)`` with ``eu[iu-1] <= u < eu[iu]`` and likewise for
    ``v``. ``half_u``/``half_v`` are the streets' half widths in pixels.
    """

    theta: float
    eu: np.ndarray
    ev: np.ndarray
    half_u: np.ndarray
    half_v: np.ndarray
    u: np.ndarray
    v: np.ndarray
    iu: np.ndarray
    iv: np.ndarray

    @classmethod
    def draw(
        cls, rng: np.random.Generator, size: int, theta: float, xx: np.ndarray, yy: np.ndarray
    ) -> _StreetGrid:
        cos_t, sin_t = np.float32(np.cos(theta)), np.float32(np.sin(theta))
        u = xx * cos_t + yy * sin_t
        v = yy * cos_t - xx * sin_t
        corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
        cu = corners @ [float(cos_t), float(sin_t)]
        cv = corners @ [-float(sin_t), float(cos_t)]
        eu = _lines(rng, cu.min(), cu.max(), 75 * _PX, 130 * _PX)
        ev = _lines(rng, cv.min(), cv.max(), 45 * _PX, 62 * _PX)
        return cls(
            theta=theta,
            eu=eu,
            ev=ev,
            half_u=(rng.uniform(3, 4, len(eu)) * _PX).astype(np.float32),
            half_v=(rng.uniform(3, 4, len(ev)) * _PX).astype(np.float32),
            u=u,
            v=v,
            iu=np.searchsorted(eu, u, side="right").astype(np.int32),
            iv=np.searchsorted(ev, v, side="right").astype(np.int32),
        )

    def point(self, u: np.ndarray | float, v: np.ndarray | float) -> np.ndarray:
        """Image ``(x, y)`` of grid coordinates."""
        c, s = np.cos(self.theta), np.sin(self.theta)
        u, v = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(v, np.float64))
        return np.stack([u * c - v * s, u * s + v * c], axis=-1)


def _lines(
    rng: np.random.Generator, lo: float, hi: float, shortest: float, longest: float
) -> np.ndarray:
    """Irregularly spaced line positions that cover ``[lo, hi]`` with a spare spacing each side."""
    n = int(np.ceil((hi - lo + 2 * longest) / shortest)) + 1
    steps = rng.uniform(shortest, longest, n)
    return (lo - longest + np.concatenate([[0.0], np.cumsum(steps)])).astype(np.float32)


def _nearest_line(
    coord: np.ndarray, index: np.ndarray, lines: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each pixel: distance to the nearer line bounding its block, that line's index, the
    block beyond it, and whether it is the lower one."""
    below = coord - lines[index - 1]
    above = lines[index] - coord
    lower = below < above
    step = lower.astype(np.int32)
    return np.minimum(below, above), index - step, index + 1 - 2 * step, lower


@dataclass(frozen=True)
class _Town:
    """Which blocks are built up, of what kind, how deep inside the town (px), and which long
    street is the main street."""

    block: np.ndarray
    kind: np.ndarray
    depth: np.ndarray
    main_line: int

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        grid: _StreetGrid,
        zone: np.ndarray,
        depth: np.ndarray,
        near_river: np.ndarray,
    ) -> _Town:
        """Blocks mostly in the town zone and clear of the river, as one connected piece."""
        shape = (len(grid.eu) + 1, len(grid.ev) + 1)
        n = shape[0] * shape[1]
        sample = (slice(None, None, 4), slice(None, None, 4))  # blocks are >= 90 px across
        ids = (grid.iu[sample] * shape[1] + grid.iv[sample]).ravel()
        count = np.bincount(ids, minlength=n)
        in_zone = np.bincount(ids, weights=zone[sample].ravel(), minlength=n)
        wet = np.bincount(ids, weights=near_river[sample].ravel(), minlength=n)
        depth_sum = np.bincount(ids, weights=depth[sample].ravel(), minlength=n)
        block = ((count > 0) & (in_zone >= 0.5 * count) & (wet == 0)).reshape(shape)
        labels, found = ndimage.label(block, structure=np.ones((3, 3)))
        if found > 1:
            block = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
        kind = rng.choice(len(_BLOCK_SHARES), size=shape, p=_BLOCK_SHARES).astype(np.int8)
        main_line = _main_line(grid, block)
        beside_main = np.zeros(shape, dtype=bool)
        beside_main[:, main_line : main_line + 2] = True
        kind[beside_main & (rng.random(shape) < 0.5)] = _COMMERCIAL
        return cls(block, kind, (depth_sum / np.maximum(count, 1)).reshape(shape), main_line)


def _main_line(grid: _StreetGrid, block: np.ndarray) -> int:
    """The long street through the middle of the town that borders the most town blocks; it must
    cross the image so that the roads joined to it are in the image too."""
    v_range = np.array([grid.v.min(), grid.v.max()])
    crosses = (grid.ev > v_range[0] + 20 * _PX) & (grid.ev < v_range[1] - 20 * _PX)
    bordering = (block[:, :-1] | block[:, 1:]).sum(axis=0)
    lines = np.flatnonzero(crosses & (bordering > 0))
    if not lines.size:
        return int(np.argmax(np.where(crosses, -np.abs(grid.ev - v_range.mean()), -np.inf)))
    quarter = (lines[-1] - lines[0]) / 4
    middle = lines[(lines >= lines[0] + quarter) & (lines <= lines[-1] - quarter)]
    middle = middle if middle.size else lines
    return int(middle[np.argmax(bordering[middle])])


def _main_roads(
    rng: np.random.Generator,
    size: int,
    phi: float,
    grid: _StreetGrid,
    town: _Town,
    field_zone: np.ndarray,
) -> tuple[list[tuple[np.ndarray, float]], float]:
    """Main roads as ``(points, half_width)``, each joined to one before it so the network is one.

    The main street runs straight through the town and bends away into the fields, a bypass
    crosses it just outside the town, and country roads branch off into the fields. Also returns
    the bypass's heading, which the field parcels follow.
    """
    j = town.main_line
    corner_u = grid.u[[0, 0, -1, -1], [0, -1, 0, -1]]
    rows = np.flatnonzero(town.block[:, j] | town.block[:, j + 1])
    u_exit = float(grid.eu[rows.max()]) if rows.size else float(corner_u.mean())
    straight = grid.point(np.arange(corner_u.min() - 64, u_exit, _STEP), grid.ev[j])
    exit_point = grid.point(u_exit, grid.ev[j])
    onward = _wander(rng, exit_point, grid.theta, 0.4, rng.uniform(250, 450) * _PX, size)
    main = np.concatenate([straight, onward])

    k = _pick(rng, onward, size, first=20)
    junction = onward[k] if k is not None else _centre(main, size)
    bypass_heading = phi + np.pi / 2 + rng.uniform(-0.15, 0.15)  # along the town's edge
    bypass = _through(rng, junction, bypass_heading, 0.25, rng.uniform(300, 600) * _PX, size)
    roads = [(main, float(grid.half_v[j])), (bypass, float(rng.uniform(5.5, 7.0) * _PX))]

    for _ in range(max(1, round(size / 1400))):
        parent = roads[int(rng.integers(0, 2))][0]
        k = _pick(rng, parent, size, zone=field_zone)
        if k is None:
            continue
        heading = _heading(parent, k) + np.pi / 2
        if np.cos(heading - phi) < 0:  # branch off towards the fields, away from the town
            heading += np.pi
        heading += rng.uniform(-0.4, 0.4)
        lane = _wander(rng, parent[k], heading, 0.3, rng.uniform(250, 450) * _PX, size)
        roads.append((lane, float(rng.uniform(5.0, 6.0) * _PX)))
    return roads, float(bypass_heading)


def _pick(
    rng: np.random.Generator,
    path: np.ndarray,
    size: int,
    zone: np.ndarray | None = None,
    first: int | None = None,
) -> int | None:
    """A random point of ``path`` well inside the image (and in ``zone`` if it can be), one of the
    ``first`` such points if given; None when the path never enters the image."""
    inside = np.flatnonzero(_inside(path, size, 16.0))
    if zone is not None and inside.size:
        xy = path[inside].astype(int)
        zoned = inside[zone[xy[:, 1], xy[:, 0]]]
        inside = zoned if zoned.size else inside
    if not inside.size:
        return None
    return int(rng.choice(inside[:first]))


def _centre(path: np.ndarray, size: int) -> np.ndarray:
    """The point of ``path`` nearest the image centre."""
    return path[np.argmin(((path - size / 2) ** 2).sum(axis=1))]


@dataclass(frozen=True)
class _Lots:
    """Building lots along both long sides of each block.

    ``width`` and ``count`` are per block side, flat-indexed by ``(iu * nv + iv) * 2 + side``; the
    rest are per lot, indexed by ``side_index * max_lots + lot``: whether it is built, and where
    along the lot (px from its start) and how far from the curb its house, driveway and patio go.
    """

    max_lots: int
    width: np.ndarray
    count: np.ndarray
    built: np.ndarray
    house_x: np.ndarray
    house_w: np.ndarray
    setback: np.ndarray
    house_d: np.ndarray
    drive_x: np.ndarray
    paved: np.ndarray
    patio: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, grid: _StreetGrid, town: _Town) -> _Lots:
        nu, nv = town.block.shape
        run = np.ones(nu)
        run[1:-1] = np.diff(grid.eu) - grid.half_u[:-1] - grid.half_u[1:] - 2 * _CORNER
        half_depth = np.ones(nv)
        half_depth[1:-1] = (np.diff(grid.ev) - grid.half_v[:-1] - grid.half_v[1:]) / 2
        commercial = town.kind == _COMMERCIAL
        sides = (nu, nv, 2)
        nominal = np.where(
            commercial[..., None], rng.uniform(22, 30, sides), rng.uniform(14, 23, sides)
        )
        count = np.maximum(1, np.floor(run[:, None, None] / (nominal * _PX))).astype(np.int32)
        width = run[:, None, None] / count
        max_lots = int(count.max())
        shape = (*sides, max_lots)
        com = commercial[..., None, None]

        def metres(low: float, high: float, low_com: float, high_com: float) -> np.ndarray:
            lots = np.where(
                com, rng.uniform(low_com, high_com, shape), rng.uniform(low, high, shape)
            )
            return lots * _PX

        lot_w = width[..., None]
        house_w = np.clip(lot_w - metres(3, 7, 4, 8), 8 * _PX, 25 * _PX)
        house_x = _PX + rng.random(shape) * (lot_w - house_w - 2 * _PX)
        setback = metres(3, 7, 3, 5)
        room = half_depth[None, :, None, None] - setback - np.where(com, 1, 2) * _PX
        house_d = np.minimum(metres(8, 14, 14, 24), room)
        residential = (town.kind == _RESIDENTIAL)[..., None, None]
        p_built = np.clip(0.6 + 0.35 * town.depth / (100 * _PX), 0.6, 0.95)[..., None, None]
        built = (residential & (rng.random(shape) < p_built)) | (com & (rng.random(shape) < 0.9))
        built &= np.arange(max_lots) < count[..., None]
        drive_x = house_x + rng.random(shape) * (house_w - 3.5 * _PX)
        paved = com | (rng.random(shape) < 0.25)
        patio = np.where(rng.random(shape) < 0.4, rng.uniform(2, 5, shape) * _PX, 0.0)
        return cls(
            max_lots,
            *(a.astype(np.float32).ravel() for a in (width, count)),
            built.ravel(),
            *(a.astype(np.float32).ravel() for a in (house_x, house_w, setback, house_d, drive_x)),
            paved.ravel(),
            patio.astype(np.float32).ravel(),
        )


def _paint_town(
    cover: np.ndarray,
    rng: np.random.Generator,
    grid: _StreetGrid,
    town: _Town,
    noise: _Noise,
) -> tuple[np.ndarray, np.ndarray]:
    """Paint the town blocks: ground by block kind, yard and park trees, sidewalks, street trees,
    paved fronts, driveways and patios, then the houses. Returns the street and block masks.

    Only the blocks' own pixels are worked on, as flat arrays, to spare time and memory.
    """
    lots = _Lots.draw(rng, grid, town)
    n_lines = len(grid.ev)
    lined = rng.random(n_lines) < 0.5
    spacing = (rng.uniform(9, 13, n_lines) * _PX).astype(np.float32)
    phase = (rng.random(n_lines) * spacing).astype(np.float32)

    in_block = town.block[grid.iu, grid.iv]
    street, curb, cross_curb, facing = _streets(grid, town, in_block)
    where = np.flatnonzero(in_block & ~street)
    curb, cross_curb, u, iu, iv, mid, fine = (
        a.ravel()[where]
        for a in (curb, cross_curb, grid.u, grid.iu, grid.iv, noise.mid, noise.fine)
    )
    line_v = facing.ravel()[where]
    kind = town.kind[iu, iv]
    land = _BLOCK_GROUND[kind]
    land[(kind == _VACANT) & (mid + 0.5 * fine > 0.3)] = RANGELAND
    leafy = (kind == _RESIDENTIAL) | (kind == _GREEN)
    land[leafy & (fine + 0.7 * mid > 1.2)] = TREE
    land[(kind == _PARK) & (mid + 0.5 * fine > -0.2)] = TREE
    land[np.minimum(curb, cross_curb) < 1.5 * _PX] = DEVELOPED
    gap = spacing[line_v]
    offset = np.mod(u - phase[line_v], gap) - gap / 2
    crown = (2.2 + 0.6 * fine) * _PX
    land[lined[line_v] & (offset**2 + (curb - 2.2 * _PX) ** 2 < crown**2)] = TREE

    side = (iu * (n_lines + 1) + iv) * 2 + (line_v == iv)
    lot_w = lots.width[side]
    along = u - grid.eu[iu - 1] - grid.half_u[iu - 1] - _CORNER
    lot = np.floor(along / lot_w).astype(np.int32)
    key = side * lots.max_lots + np.clip(lot, 0, lots.max_lots - 1)
    built = (along >= 0) & (lot < lots.count[side]) & lots.built[key]
    x = along - lot * lot_w
    setback = lots.setback[key]
    beside = (x >= lots.house_x[key]) & (x < lots.house_x[key] + lots.house_w[key])
    drive = (x >= lots.drive_x[key]) & (x < lots.drive_x[key] + 3.5 * _PX)
    behind = curb - setback - lots.house_d[key]
    land[built & (curb < setback) & (lots.paved[key] | drive)] = DEVELOPED
    land[built & beside & (behind >= 0) & (behind < lots.patio[key])] = DEVELOPED
    land[built & beside & (curb >= setback) & (behind < 0)] = BUILDING
    cover.ravel()[where] = land
    return street, in_block


def _streets(
    grid: _StreetGrid, town: _Town, in_block: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The streets around the town blocks, and for each pixel its distance from the curb of the
    nearest long and cross street and which long street that is (the one its lot faces)."""
    du, line_u, beyond_u, _ = _nearest_line(grid.u, grid.iu, grid.eu)
    cross_curb = du - grid.half_u[line_u]
    street = (cross_curb < 0) & (in_block | town.block[beyond_u, grid.iv])
    del du, line_u, beyond_u
    dv, line_v, beyond_v, _ = _nearest_line(grid.v, grid.iv, grid.ev)
    curb = dv - grid.half_v[line_v]
    street |= (curb < 0) & (in_block | town.block[grid.iu, beyond_v])
    return street, curb, cross_curb, line_v


# --- the land around it ----------------------------------------------------------------------


def _paint_outskirts(cover: np.ndarray, noise: _Noise, field_zone: np.ndarray) -> None:
    """Bare patches and shrub clumps in the rough land between the town and the fields."""
    rough = ~field_zone
    cover[rough & (noise.mid + 0.5 * noise.fine > 1.2)] = BARELAND
    cover[rough & (noise.fine + 0.3 * noise.mid > 2.1)] = TREE


def _paint_fields(
    cover: np.ndarray,
    rng: np.random.Generator,
    angle: float,
    xx: np.ndarray,
    yy: np.ndarray,
    noise: _Noise,
    zone: np.ndarray,
) -> None:
    """Field parcels: bands along ``angle`` cut into strips at a slant of their own, each a crop,
    meadow, ploughed land or woodlot, with grass margins and some hedgerows between bands."""
    size = cover.shape[0]
    cos_a, sin_a = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    p = xx * cos_a + yy * sin_a
    q = yy * cos_a - xx * sin_a
    bands = _lines(rng, -1.5 * size, 1.5 * size, 80 * _PX, 230 * _PX)
    band = np.searchsorted(bands, q, side="right").astype(np.int32)
    tilt = rng.uniform(-0.3, 0.3, len(bands) + 1).astype(np.float32)
    shift = rng.uniform(0, 200 * _PX, len(bands) + 1).astype(np.float32)
    strips = _lines(rng, -2.25 * size, 2.25 * size + 200 * _PX, 35 * _PX, 100 * _PX)
    strip = np.searchsorted(strips, p + tilt[band] * q + shift[band], side="right")
    parcel = band * (len(strips) + 1) + strip.astype(np.int32)
    crops = rng.choice(_CROPS, size=(len(bands) + 1) * (len(strips) + 1), p=_CROP_SHARES)
    cover[zone] = crops[parcel[zone]]
    edge = np.zeros_like(zone)
    edge[:, 2:] = parcel[:, 2:] != parcel[:, :-2]
    edge[2:, :] |= parcel[2:, :] != parcel[:-2, :]
    cover[zone & edge] = RANGELAND
    dq, line_q, _, _ = _nearest_line(q, band, bands)
    hedged = rng.random(len(bands)) < 0.4
    cover[zone & hedged[line_q] & (dq < (1.8 + 1.0 * noise.fine) * _PX)] = TREE


def _paint_farmsteads(
    cover: np.ndarray,
    rng: np.random.Generator,
    roads: list[tuple[np.ndarray, float]],
    zone: np.ndarray,
    road_clear: np.ndarray,
    river_clear: np.ndarray,
    noise: _Noise,
) -> None:
    """A few farmsteads along the country roads: a paved yard with a house, a barn and maybe a
    shed, a driveway to the road and a belt of trees behind."""
    size = cover.shape[0]
    for path, half in roads:
        candidates = np.flatnonzero(_inside(path, size, 90.0))
        xy = path[candidates].astype(int)
        candidates = candidates[zone[xy[:, 1], xy[:, 0]]]
        for k in rng.permutation(candidates)[: int(rng.integers(1, 2 + candidates.size // 100))]:
            _farmstead(cover, rng, path[k], _heading(path, k), half, road_clear, river_clear, noise)


def _farmstead(
    cover: np.ndarray,
    rng: np.random.Generator,
    point: np.ndarray,
    heading: float,
    half: float,
    road_clear: np.ndarray,
    river_clear: np.ndarray,
    noise: _Noise,
) -> None:
    """One farmstead beside the road at ``point``; skipped where it would touch a road or water."""
    along = np.array([np.cos(heading), np.sin(heading)])
    away = rng.choice([-1.0, 1.0]) * np.array([-along[1], along[0]])
    yard_w, yard_d, gap = rng.uniform(40, 65) * _PX, rng.uniform(42, 55) * _PX, rng.uniform(8, 20)
    centre = point + away * (half + gap * _PX + yard_d / 2)
    reach = int(np.hypot(yard_w, yard_d) / 2 + 15 * _PX)
    x0, y0 = (np.maximum(centre.astype(int) - reach, 0)).tolist()
    x1, y1 = (np.minimum(centre.astype(int) + reach + 1, cover.shape[0])).tolist()
    if x1 <= x0 or y1 <= y0:
        return
    window = (slice(y0, y1), slice(x0, x1))
    xs = np.arange(x0, x1)[None, :] - centre[0]
    ys = np.arange(y0, y1)[:, None] - centre[1]
    s = xs * along[0] + ys * along[1]
    t = xs * away[0] + ys * away[1]
    yard = (np.abs(s) < yard_w / 2) & (np.abs(t) < yard_d / 2)
    if (road_clear[window][yard] < 3 * _PX).any() or (river_clear[window][yard] < 5 * _PX).any():
        return
    patch = cover[window]
    belt = (np.abs(s) < yard_w / 2 + 10 * _PX) & (np.abs(t) < yard_d / 2 + 10 * _PX)
    patch[belt & (t > 0) & (noise.fine[window] > -0.3)] = TREE
    patch[yard] = DEVELOPED
    drive = rng.uniform(-0.3, 0.3) * yard_w
    patch[(np.abs(s - drive) < 2 * _PX) & (t < 0) & (t > -yard_d / 2 - (gap + 2) * _PX)] = DEVELOPED
    house_w, house_d = rng.uniform(10, 15) * _PX, rng.uniform(8, 12) * _PX
    barn_w, barn_d = rng.uniform(16, 24) * _PX, rng.uniform(11, 18) * _PX
    barn_s = -yard_w / 2 + 3 * _PX + rng.random() * (yard_w - 6 * _PX - barn_w)
    front, side = -yard_d / 2 + 4 * _PX, yard_w / 2 - 3 * _PX
    boxes = [
        (-side, -side + house_w, front, front + house_d),
        (barn_s, barn_s + barn_w, yard_d / 2 - 3 * _PX - barn_d, yard_d / 2 - 3 * _PX),
    ]
    if rng.random() < 0.6:
        shed_w, shed_d = rng.uniform(8, 11) * _PX, rng.uniform(8, 10) * _PX
        boxes.append((side - shed_w, side, front, front + shed_d))
    for s0, s1, t0, t1 in boxes:
        patch[(s >= s0) & (s < s1) & (t >= t0) & (t < t1)] = BUILDING


def _paint_river(
    cover: np.ndarray, river_clear: np.ndarray, noise: _Noise, open_land: np.ndarray
) -> None:
    """The river with a ragged shore, mud banks and a riparian strip of trees."""
    shore = river_clear + (3.0 * noise.mid + 1.5 * noise.fine) * _PX
    riparian = river_clear + 8 * _PX * noise.mid < 14 * _PX
    cover[open_land & riparian & (noise.fine + noise.mid > -0.3)] = TREE
    cover[open_land & (shore < 4 * _PX) & (noise.fine > 0.9)] = BARELAND
    cover[shore < 0] = WATER


def _paint_pond(
    cover: np.ndarray,
    rng: np.random.Generator,
    noise: _Noise,
    open_land: np.ndarray,
    road_clear: np.ndarray,
    river_clear: np.ndarray,
) -> None:
    """Often a pond with a ragged, tree-lined shore, somewhere clear of roads, river and town."""
    size = cover.shape[0]
    radius, aspect, angle = rng.uniform(18, 40) * _PX, rng.uniform(1.0, 1.8), rng.uniform(0, np.pi)
    reach = int(radius * aspect * 1.6) + 8
    if rng.random() > 0.7 or size <= 2 * reach + 2:
        return
    for cx, cy in rng.integers(reach, size - reach, (20, 2)):
        window = (slice(cy - reach, cy + reach), slice(cx - reach, cx + reach))
        if (
            not open_land[window].all()
            or (road_clear[window] < 5 * _PX).any()
            or (river_clear[window] < 15 * _PX).any()
        ):
            continue
        xs = np.arange(-reach, reach)[None, :]
        ys = np.arange(-reach, reach)[:, None]
        a = (xs * np.cos(angle) + ys * np.sin(angle)) / (radius * aspect)
        b = (ys * np.cos(angle) - xs * np.sin(angle)) * aspect / radius
        shape = np.hypot(a, b) + 0.2 * noise.mid[window] + 0.15 * noise.fine[window]
        patch = cover[window]
        patch[(shape < 1.35) & (noise.fine[window] > -0.2)] = TREE
        patch[shape < 1.0] = WATER
        return


def _tidy(cover: np.ndarray) -> None:
    """Demolish buildings within 1.5 m of a road or water (whole footprints, so none is cut) and
    pave road pieces cut off from the network (by the image border)."""
    near = _grow((cover == ROAD) | (cover == WATER), int(1.5 * _PX))
    buildings, found = ndimage.label(cover == BUILDING)
    touching = np.zeros(found + 1, dtype=bool)
    touching[buildings[near]] = True
    touching[0] = False
    cover[touching[buildings]] = DEVELOPED
    roads, found = ndimage.label(cover == ROAD)
    if found > 1:
        sizes = np.bincount(roads.ravel())
        sizes[0] = 0
        cover[(roads > 0) & (roads != np.argmax(sizes))] = DEVELOPED


def _grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` dilated by a square of ``radius`` px, by shifting: cheaper than a filter."""
    grown = mask.copy()
    for k in range(1, radius + 1):
        grown[:, k:] |= mask[:, :-k]
        grown[:, :-k] |= mask[:, k:]
    rows = grown.copy()
    for k in range(1, radius + 1):
        grown[k:] |= rows[:-k]
        grown[:-k] |= rows[k:]
    return grown
