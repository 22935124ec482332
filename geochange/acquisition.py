"""Acquisition differences: make t2 look like another day, another sensor, the same place.

Real bi-temporal pairs differ everywhere, not only where land cover changed (unchanged-land
correlation of real pairs is about 0.30), so a detector trained on pairs whose unchanged land is
nearly identical learns that any difference is change. ``apply_acquisition`` takes a painted RGB
window and its land cover and applies seeded, named controls to the image only; labels never
change (misregistration is a nuisance to ignore, not a change).

Every random quantity is a function of the seed and of GLOBAL pixel coordinates (smooth fields
from a coarse lattice of seeded nodes, noise from seeded lattice tiles), and every neighbourhood
operation reaches at most ``margin()`` pixels, so blocks processed separately with that margin
join without seams. Pure numpy/scipy: no torch, no GIS packages.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np
from scipy.ndimage import gaussian_filter

from geochange.classes import (
    AGRICULTURE,
    BARELAND,
    BUILDING,
    DEVELOPED,
    NUM_CLASSES,
    RANGELAND,
    ROAD,
    TREE,
    WATER,
)
from geochange.errors import InputError

SEASONS: tuple[str, ...] = ("none", "spring", "summer", "autumn", "winter", "dry")


@dataclass(frozen=True)
class Acquisition:
    """How t2's acquisition differs from t1's; all zero (and season none) is the identity."""

    radiometry: float = 0.0
    haze: float = 0.0
    noise: float = 0.0
    blur: float = 0.0
    misregistration: float = 0.0
    shadows: float = 0.0
    season: str = "none"

    def __post_init__(self) -> None:
        for item in fields(self):
            _check(item.name, getattr(self, item.name))

    def to_dict(self) -> dict:
        return asdict(self)

    def is_identity(self) -> bool:
        return self == Acquisition()


class Parameter(NamedTuple):
    """One control as the listing and ``--help`` show it."""

    name: str
    unit: str
    default: float | str
    help: str


PARAMETERS: list[Parameter] = [
    Parameter(
        "radiometry",
        "strength",
        0.0,
        "exposure, gamma, bias and colour balance per band, and a smooth gain field across the "
        "scene (1: +-35 % exposure, +-12 % per band, +-30 % across the scene)",
    ),
    Parameter(
        "haze",
        "strength",
        0.0,
        "additive bluish-white airlight varying smoothly across the scene (1: about half the "
        "signal replaced by airlight)",
    ),
    Parameter("noise", "fraction of 255", 0.0, "sensor noise standard deviation per band"),
    Parameter("blur", "pixels", 0.0, "sensor blur (MTF): Gaussian sigma"),
    Parameter(
        "misregistration",
        "metres",
        0.0,
        "a global sub-pixel shift of this length in a seeded direction, plus a smooth local "
        "warp a quarter as large; labels stay where they are",
    ),
    Parameter(
        "shadows",
        "strength",
        0.0,
        "how far the sun moved: buildings and trees cast new shadows to a seeded side (1: 10 m "
        "behind buildings, 7 m behind trees); dark land on the other side lightens a little",
    ),
    Parameter(
        "season",
        "name",
        "none",
        "class-aware colour shift: vegetation and agriculture move, roads and roofs barely, "
        "unevenly from patch to patch",
    ),
]

LIMITS: dict[str, tuple[float, float]] = {
    "radiometry": (0.0, 1.0),
    "haze": (0.0, 1.0),
    "noise": (0.0, 0.5),
    "blur": (0.0, 10.0),
    "misregistration": (0.0, 50.0),
    "shadows": (0.0, 1.0),
}
"""Accepted range of each numeric control (in its unit)."""


def option_help() -> str:
    """The ``--acquisition`` help text of the commands that take it."""
    controls = "; ".join(f"{p.name} ({p.unit}, {range_text(p.name)})" for p in PARAMETERS)
    return (
        f"Make t2 another acquisition of the place: a preset ({', '.join(PRESETS)}), key=value "
        f"pairs, or a preset then overrides (realistic,noise=0.03). Controls: {controls}. "
        "Labels never change. See `geochange acquisitions`."
    )


def range_text(name: str) -> str:
    """The values a control accepts, as the listing and help show them."""
    return "|".join(SEASONS) if name == "season" else "{:g}-{:g}".format(*LIMITS[name])


def parse_acquisition(spec: str | None) -> Acquisition:
    """``realistic``, ``radiometry=0.3,season=autumn`` or ``realistic,noise=0.03`` (a preset,
    then overrides) into an ``Acquisition``; None or empty is the identity."""
    parts = [p.strip() for p in (spec or "").split(",")]
    parts = [p for p in parts if p]
    base = Acquisition()
    if parts and "=" not in parts[0]:
        name = parts.pop(0).lower()
        if name not in PRESETS:
            raise InputError(
                f"unknown acquisition preset {name!r}",
                f"use one of {', '.join(PRESETS)} or key=value pairs of {_keys()} "
                "(see `geochange acquisitions`)",
            )
        base = PRESETS[name]
    values: dict[str, float | str] = {}
    for part in parts:
        key, eq, text = (s.strip() for s in part.partition("="))
        key = key.lower()
        if not eq:
            raise InputError(
                f"acquisition part {part!r} is not key=value",
                f"a preset name ({', '.join(PRESETS)}) may only come first; then key=value "
                f"pairs of {_keys()}",
            )
        if key not in {f.name for f in fields(Acquisition)}:
            raise InputError(
                f"unknown acquisition parameter {key!r}",
                f"use one of {_keys()} (see `geochange acquisitions`)",
            )
        if key in values:
            raise InputError(f"acquisition parameter {key!r} is given twice", "give it once")
        values[key] = _parse_value(key, text)
    return Acquisition(**{**base.to_dict(), **values})


def _keys() -> str:
    return ", ".join(p.name for p in PARAMETERS)


def _parse_value(key: str, text: str) -> float | str:
    if key == "season":
        return _check(key, text.lower())
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    return _check(key, value, text)


def _check(key: str, value: float | str, text: str | None = None) -> float | str:
    """``value`` if ``key`` accepts it, else an InputError that says what it accepts."""
    if key == "season":
        if value not in SEASONS:
            raise InputError(f"unknown season {value!r}", f"use one of {', '.join(SEASONS)}")
        return value
    low, high = LIMITS[key]
    unit = next(p.unit for p in PARAMETERS if p.name == key)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or not low <= value <= high:
        raise InputError(
            f"acquisition parameter {key}={text or value!r} is not a number from {low:g} to "
            f"{high:g}",
            f"give {key} in {unit}, from {low:g} to {high:g} (see `geochange acquisitions`)",
        )
    return value


PRESETS: dict[str, Acquisition] = {
    "none": Acquisition(),
    "mild": Acquisition(
        radiometry=0.4, haze=0.1, noise=0.015, blur=0.4, misregistration=0.75, shadows=0.4
    ),
    "realistic": Acquisition(
        radiometry=0.8,
        haze=0.25,
        noise=0.025,
        blur=0.7,
        misregistration=1.5,
        shadows=0.8,
        season="summer",
    ),
    "strong": Acquisition(
        radiometry=1.0,
        haze=0.4,
        noise=0.04,
        blur=1.0,
        misregistration=3.0,
        shadows=1.0,
        season="autumn",
    ),
}
"""Calibrated on OpenEarthMap tiles (0.5 m): pooled pixel correlation with the original about
0.9 (mild), 0.75 (realistic), 0.6 (strong); real pairs' unchanged land measures 0.30, as other
days also differ in ways no control here makes (view angle, moving objects, works)."""


# --- random quantities as functions of the seed and global coordinates -----------------------

LATTICE_PX = 256
"""Spacing of the smooth fields' random nodes and size of the noise tiles, in pixels."""
_OFFSET = 1 << 31
"""Added to lattice indices so the seed words stay non-negative."""
_GLOBAL, _GAIN_FIELD, _HAZE_FIELD, _WARP_FIELD, _NOISE_TILES, _SEASON_FIELD, _CROWN_TILES = range(7)
_NODE_CLIP = 3.0
"""Node values are clipped to +-3 so the fields (and the warp's reach) are bounded."""
_BSPLINE_STD = math.sqrt(0.48)
"""Typical std of a cubic B-spline mix of unit normal nodes (variance 0.46 midway between nodes,
0.5 at a node)."""


def _rng(seed: int, *words: int) -> np.random.Generator:
    return np.random.default_rng([seed % (1 << 63), *words])


def _bspline_weights(coords: np.ndarray, spacing: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first of the four nodes around each global coordinate, and their cubic
    B-spline weights (C2-smooth, so fields have no creases at lattice lines)."""
    cell = coords // spacing
    t = (coords - cell * spacing) / spacing
    weights = np.stack(
        [(1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3], axis=1
    )
    return cell - 1, (weights / 6).astype(np.float32)


def _smooth_field(
    seed: int,
    tag: int,
    origin: tuple[int, int],
    shape: tuple[int, int],
    channels: int = 1,
    spacing: int = LATTICE_PX,
) -> np.ndarray:
    """(channels, H, W) float32 fields of about unit std, smooth over ``spacing`` pixels, the
    same at each global pixel whatever window asks (evaluated elementwise, never by a BLAS
    product, whose summation order depends on the array sizes)."""
    rows = origin[0] + np.arange(shape[0])
    cols = origin[1] + np.arange(shape[1])
    first_row, wy = _bspline_weights(rows, spacing)
    first_col, wx = _bspline_weights(cols, spacing)
    r0, c0 = int(first_row.min()), int(first_col.min())
    nodes = np.array(
        [
            [
                _rng(seed, tag, r + _OFFSET, c + _OFFSET).standard_normal(channels)
                for c in range(c0, int(first_col.max()) + 4)
            ]
            for r in range(r0, int(first_row.max()) + 4)
        ]
    )
    nodes = np.clip(nodes, -_NODE_CLIP, _NODE_CLIP).astype(np.float32).transpose(2, 0, 1)
    across = sum(wx[:, b] * nodes[:, :, first_col - c0 + b] for b in range(4))
    field = np.empty((channels, *shape), np.float32)
    for channel, lines in enumerate(across):  # a channel at a time: gathering rows of a 3-D
        # array along its middle axis took 8x as long for two channels as for one
        field[channel] = sum(wy[:, a, None] * lines[first_row - r0 + a] for a in range(4))
    return field / np.float32(_BSPLINE_STD)


def _noise(
    seed: int,
    origin: tuple[int, int],
    shape: tuple[int, int],
    channels: int = 3,
    tag: int = _NOISE_TILES,
) -> np.ndarray:
    """(channels, H, W) float32 unit normal noise drawn per global lattice tile, so a pixel's
    noise does not depend on the window it was processed in."""
    out = np.empty((channels, *shape), np.float32)
    (r0, c0), (h, w) = origin, shape
    for tr in range(r0 // LATTICE_PX, (r0 + h - 1) // LATTICE_PX + 1):
        for tc in range(c0 // LATTICE_PX, (c0 + w - 1) // LATTICE_PX + 1):
            rng = _rng(seed, tag, tr + _OFFSET, tc + _OFFSET)
            tile = rng.standard_normal((channels, LATTICE_PX, LATTICE_PX), dtype=np.float32)
            top, left = tr * LATTICE_PX, tc * LATTICE_PX
            ys = slice(max(r0, top), min(r0 + h, top + LATTICE_PX))
            xs = slice(max(c0, left), min(c0 + w, left + LATTICE_PX))
            out[:, ys.start - r0 : ys.stop - r0, xs.start - c0 : xs.stop - c0] = tile[
                :, ys.start - top : ys.stop - top, xs.start - left : xs.stop - left
            ]
    return out


class _Draws(NamedTuple):
    """The scene-wide random choices, drawn in one fixed order whatever controls are on, so
    turning one control on does not change what another does."""

    exposure: float
    balance: np.ndarray  # (3,)
    bias: np.ndarray  # (3,)
    gamma: float
    band_gamma: np.ndarray  # (3,)
    airlight: np.ndarray  # (3,)
    shift_angle: float
    sun_azimuth: float


def _draws(seed: int) -> _Draws:
    rng = _rng(seed, _GLOBAL)

    def signed(n: int | None = None) -> np.ndarray:
        """Magnitudes 0.5-1 with a random sign: every seed gets a clear effect of the strength
        asked for, never a near-zero one."""
        return rng.uniform(0.5, 1.0, n) * rng.choice([-1.0, 1.0], n)

    return _Draws(
        exposure=float(signed()),
        balance=signed(3),
        bias=signed(3),
        gamma=float(signed()),
        band_gamma=signed(3),
        airlight=np.array([0.78, 0.82, 0.9]) + rng.uniform(-0.05, 0.05, 3),
        shift_angle=float(rng.uniform(0, 2 * math.pi)),
        sun_azimuth=float(rng.uniform(0, 2 * math.pi)),
    )


# --- the controls ----------------------------------------------------------------------------

GAIN_FIELD_STD, BAND_FIELD_STD = 0.3, 0.1
"""Std of the log gain across the scene at ``radiometry=1``: common to the bands, and per band
(colour balance drifting across the scene)."""
LOCAL_WARP_FRACTION = 0.25
"""RMS of the smooth local warp relative to the global shift."""
SEASON_BLEND_PX = 2.0
"""Sigma of the blur of the class weights, so no class outline shows in the colour shift."""
SEASON_PATCH_PX = 64
"""Spacing of the field that makes the season's progress vary from patch to patch (one field
harvested, the next still green)."""
BUILDING_HEIGHT_M, TREE_HEIGHT_M = 10.0, 7.0
"""Shadow length behind buildings and trees at ``shadows=1``, in metres."""
SHADOW_FACTOR = np.array([0.5, 0.55, 0.65], np.float32)
"""Light left in a cast shadow per band: blue least darkened (skylight fills shadows)."""
TREE_SHADE = 0.7
"""Share of a building shadow's darkening that a tree's takes: crowns let light through."""
CROWN_M = 1.5
"""Scale, in metres, over which the height of a wood's edge varies (about a crown's radius):
a tree shadow's far edge is ragged, not the labelled outline shifted (which drew even navy
ribbons along every hedge and shore)."""
CROWN_LOW = 0.3
"""Shortest tree shadow, as a share of the longest."""

# Bare land and water take a season's look only faintly: its gains are vegetation's, and a
# desert taken to summer at 0.4 turned green.
_SEASON_WEIGHT = np.zeros(NUM_CLASSES + 1, np.float32)  # last entry: no data
for _cls, _weight in {
    TREE: 1.0,
    RANGELAND: 1.0,
    AGRICULTURE: 1.0,
    BARELAND: 0.1,
    WATER: 0.1,
    DEVELOPED: 0.1,
    ROAD: 0.05,
    BUILDING: 0.05,
}.items():
    _SEASON_WEIGHT[_cls] = _weight
_SEASON_LOOK: dict[str, tuple[float, tuple[float, float, float]]] = {
    "spring": (1.15, (0.95, 1.08, 0.92)),
    "summer": (1.1, (0.88, 0.97, 0.85)),
    "autumn": (0.85, (1.12, 0.9, 0.6)),
    "winter": (0.35, (1.14, 1.1, 1.04)),
    "dry": (0.7, (1.28, 1.12, 0.78)),
}
"""Per season: saturation factor and per-band gain that vegetation takes at full weight."""


def shift_of(acquisition: Acquisition, seed: int, gsd_m: float) -> tuple[float, float]:
    """The global misregistration (dy, dx) in pixels: ``misregistration / gsd_m`` long."""
    length = acquisition.misregistration / gsd_m
    angle = _draws(seed).shift_angle
    return length * math.sin(angle), length * math.cos(angle)


def _shadow_lengths(acquisition: Acquisition, gsd_m: float) -> tuple[int, int]:
    return (
        round(acquisition.shadows * BUILDING_HEIGHT_M / gsd_m),
        round(acquisition.shadows * TREE_HEIGHT_M / gsd_m),
    )


def margin(acquisition: Acquisition, gsd_m: float) -> int:
    """Pixels of context needed on every side of a window so its core comes out as if the whole
    grid were processed at once: the reach of season blending, shadows, warp and blur."""
    reach = 0.0
    if acquisition.season != "none":
        reach += math.ceil(4 * SEASON_BLEND_PX)
    if acquisition.shadows > 0:
        reach += max(_shadow_lengths(acquisition, gsd_m)) + 4 + math.ceil(3 * CROWN_M / gsd_m)
    if acquisition.misregistration > 0:
        length = acquisition.misregistration / gsd_m
        local = LOCAL_WARP_FRACTION * length * _NODE_CLIP / _BSPLINE_STD
        reach += length + local + 2  # the cubic's outer taps
    if acquisition.blur > 0:
        reach += 4 * acquisition.blur
    return math.ceil(reach)


def apply_acquisition(
    rgb: np.ndarray,
    classes: np.ndarray,
    acquisition: Acquisition,
    seed: int,
    origin: tuple[int, int],
    gsd_m: float,
) -> np.ndarray:
    """``rgb`` (3, H, W) uint8 as another acquisition of the same place; ``classes`` (H, W) is
    its land cover (model indices, 255 = no data), ``origin`` the global (row, col) of
    ``rgb[:, 0, 0]``, ``gsd_m`` metres per pixel. Give the window with ``margin()`` pixels of
    context where the grid has them; those pixels come out less exact than the core."""
    if rgb.ndim != 3 or rgb.shape[0] != 3 or rgb.shape[1:] != classes.shape:
        raise ValueError(f"rgb {rgb.shape} must be (3, H, W) over classes {classes.shape}")
    if not gsd_m > 0:
        raise ValueError(f"gsd_m must be positive, got {gsd_m}")
    if acquisition.is_identity():
        return rgb.copy()
    draws = _draws(seed)
    shape = classes.shape
    image = rgb.astype(np.float32) / 255
    if acquisition.season != "none":
        image = _season(image, classes, acquisition.season, seed, origin)
    if acquisition.shadows > 0:
        heights = _crown_heights(seed, origin, shape, gsd_m)
        image = _shadows(image, classes, acquisition, draws.sun_azimuth, gsd_m, heights)
    if acquisition.haze > 0:
        amount = (
            0.5 * acquisition.haze * (1 + 0.3 * _smooth_field(seed, _HAZE_FIELD, origin, shape))
        )
        amount = np.clip(amount, 0, 0.95)
        image = image * (1 - amount) + draws.airlight[:, None, None].astype(np.float32) * amount
    if acquisition.radiometry > 0:
        image = _radiometry(image, acquisition.radiometry, draws, seed, origin)
    if acquisition.misregistration > 0:
        image = _warp(image, acquisition, seed, origin, gsd_m)
    if acquisition.blur > 0:
        image = gaussian_filter(image, (0, acquisition.blur, acquisition.blur), mode="nearest")
    image *= 255
    if acquisition.noise > 0:
        image += acquisition.noise * 255 * _noise(seed, origin, shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _season(
    image: np.ndarray, classes: np.ndarray, season: str, seed: int, origin: tuple[int, int]
) -> np.ndarray:
    """Vegetation toward the season's look, other land barely, weights blended over class
    edges and varying from patch to patch."""
    saturation, gain = _SEASON_LOOK[season]
    weight = _SEASON_WEIGHT[np.minimum(classes, NUM_CLASSES)]
    weight = gaussian_filter(weight, SEASON_BLEND_PX, mode="nearest")
    patches = _smooth_field(seed, _SEASON_FIELD, origin, classes.shape, spacing=SEASON_PATCH_PX)
    weight = weight * np.clip(1 + 0.6 * patches[0], 0, 2)
    grey = image.mean(axis=0, keepdims=True)
    look = (grey + saturation * (image - grey)) * np.array(gain, np.float32)[:, None, None]
    return image + weight * (look - image)


def _crown_heights(
    seed: int, origin: tuple[int, int], shape: tuple[int, int], gsd_m: float
) -> np.ndarray:
    """(H, W) share of the full tree height, ``CROWN_LOW`` to 1, varying over ``CROWN_M``: white
    noise of the global grid, smoothed and scaled back to about unit std."""
    sigma = CROWN_M / gsd_m
    noise = _noise(seed, origin, shape, 1, _CROWN_TILES)[0]
    smooth = gaussian_filter(noise, sigma, mode="nearest", truncate=3.0)  # as far as margin()
    spread = smooth * 2 * math.sqrt(math.pi) * sigma  # the std a 2-D Gaussian blur leaves is 1/that
    return np.clip(0.7 + 0.3 * spread, CROWN_LOW, 1.0)


def _shadows(
    image: np.ndarray,
    classes: np.ndarray,
    acquisition: Acquisition,
    azimuth: float,
    gsd_m: float,
    crown_heights: np.ndarray,
) -> np.ndarray:
    """New shadows cast away from the sun behind buildings and trees (``crown_heights`` make a
    wood's shadow ragged, and lighter by ``TREE_SHADE``); dark land just on the sunward side
    of both (where the old shadows likely lay) lightened a little."""
    building, tree = classes == BUILDING, classes == TREE
    dy, dx = math.sin(azimuth), math.cos(azimuth)
    building_px, tree_px = _shadow_lengths(acquisition, gsd_m)
    roofs = _sweep(building, dy, dx, building_px) & ~building
    crowns = _sweep(tree, dy, dx, tree_px, tree_px * crown_heights) & ~tree & ~building & ~roofs
    lit = (
        _sweep(building, -dy, -dx, max(building_px // 2, 1))
        | _sweep(tree, -dy, -dx, max(tree_px // 2, 1))
    ) & ~(building | tree | roofs | crowns)
    ground = ~building  # soft shadow edges, but roofs stay as they were
    cast = roofs.astype(np.float32) + TREE_SHADE * crowns.astype(np.float32)
    shade = gaussian_filter(cast, 0.7, mode="nearest") * ground
    light = gaussian_filter(lit.astype(np.float32), 0.7, mode="nearest") * ground
    darkness = np.clip((0.4 - image.mean(axis=0)) / 0.3, 0, 1)  # only dark land lightens
    lift = 1 + 0.4 * acquisition.shadows * light * darkness
    return image * (1 - shade * (1 - SHADOW_FACTOR[:, None, None])) * lift


def _sweep(
    mask: np.ndarray, dy: float, dx: float, length: int, reach: np.ndarray | None = None
) -> np.ndarray:
    """Where ``mask`` reaches when moved 1..length unit steps along (dy, dx) (8-connected);
    with ``reach`` (H, W), only as far as it says at each pixel reached."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    for step in range(1, length + 1):
        sy, sx = round(step * dy), round(step * dx)
        moved = mask[max(-sy, 0) : h - max(sy, 0), max(-sx, 0) : w - max(sx, 0)]
        into = (slice(max(sy, 0), h + min(sy, 0)), slice(max(sx, 0), w + min(sx, 0)))
        out[into] |= moved if reach is None else moved & (reach[into] >= step)
    return out


def _radiometry(
    image: np.ndarray, strength: float, draws: _Draws, seed: int, origin: tuple[int, int]
) -> np.ndarray:
    """Gain, gamma and bias per band (all monotone: gain > 0, gamma > 0), times a smooth gain
    field across the scene."""
    gain = np.exp(strength * (0.35 * draws.exposure + 0.12 * draws.balance)).astype(np.float32)
    gamma = np.exp(strength * (0.25 * draws.gamma + 0.05 * draws.band_gamma)).astype(np.float32)
    bias = (strength * 0.04 * draws.bias).astype(np.float32)
    out = np.empty_like(image)
    for band in range(3):
        out[band] = gain[band] * np.power(np.maximum(image[band], 0), gamma[band]) + bias[band]
    field = _smooth_field(seed, _GAIN_FIELD, origin, image.shape[1:], channels=4)
    spread = strength * (GAIN_FIELD_STD * field[:1] + BAND_FIELD_STD * field[1:])
    return out * np.exp(spread)


def _warp(
    image: np.ndarray, acquisition: Acquisition, seed: int, origin: tuple[int, int], gsd_m: float
) -> np.ndarray:
    """Bicubic resampling at global shift + smooth local warp, as imagery is orthorectified
    (bilinear's averaging of neighbours took half the detail's gradient energy at a half-pixel
    shift). Written out rather than with ``map_coordinates`` so the weights come from global
    coordinates and are bit-identical in any window."""
    dy, dx = shift_of(acquisition, seed, gsd_m)
    h, w = image.shape[1:]
    local = LOCAL_WARP_FRACTION * acquisition.misregistration / gsd_m / math.sqrt(2)
    field = _smooth_field(seed, _WARP_FIELD, origin, (h, w), channels=2).astype(np.float64)
    rows = origin[0] + np.arange(h)[:, None] - dy - local * field[0]
    cols = origin[1] + np.arange(w)[None, :] - dx - local * field[1]
    top, left = np.floor(rows), np.floor(cols)
    y, x = top.astype(np.int64) - origin[0], left.astype(np.int64) - origin[1]
    across = [np.clip(x + tap, 0, w - 1) for tap in CUBIC_TAPS]  # 'nearest' beyond the edges
    weights_x = _cubic_weights((cols - left).astype(np.float32))
    flat = image.reshape(3, -1)
    out = np.zeros_like(image)
    weights_y = _cubic_weights((rows - top).astype(np.float32))
    for tap, weight_y in zip(CUBIC_TAPS, weights_y, strict=True):
        row_start = np.clip(y + tap, 0, h - 1) * w
        line = sum(
            weight_x * np.take(flat, row_start + col, axis=1)  # all bands in one gather
            for weight_x, col in zip(weights_x, across, strict=True)
        )
        out += weight_y * line
    return out


CUBIC_TAPS = (-1, 0, 1, 2)
"""Offsets of the four pixels each output pixel is interpolated from, along each axis."""


def _cubic_weights(fraction: np.ndarray) -> list[np.ndarray]:
    """Keys' cubic convolution weights (a = -0.5) of the taps ``CUBIC_TAPS`` for the
    ``fraction`` (0 to 1) of a pixel that a coordinate lies past its tap 0; they sum to 1."""
    t2, t3 = fraction * fraction, fraction * fraction * fraction
    return [
        -0.5 * t3 + t2 - 0.5 * fraction,
        1.5 * t3 - 2.5 * t2 + 1,
        -1.5 * t3 + 2 * t2 + 0.5 * fraction,
        0.5 * t3 - 0.5 * t2,
    ]
