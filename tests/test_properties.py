"""Property-based tests (hypothesis): event specs, vector geometries and the event rules.

Random inputs must give a finished run or an ``InputError``, never another exception; the
events must keep their invariants on any small land cover.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import hypothesis
import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geochange.classes import CLASS_NAMES, NODATA, NUM_CLASSES
from geochange.cli.main import cli
from geochange.errors import InputError
from geochange.events import EVENTS, Event, EventWindow, Param, RegionStats, parse_events
from geochange.inputs import open_inputs
from geochange.simulation import simulate
from tests.conftest import write_raster

FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
RUNS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
"""Fewer examples where each one is a whole run on disk."""
EACH = settings(max_examples=20, deadline=None)
"""Per event: every event gets its share."""
UTM = "EPSG:32633"
X0, Y0, PIXEL = 500_000.0, 5_550_000.0, 0.5
SIDE = 80
"""The region of the run tests: 80 x 80 pixels of 0.5 m from (X0, Y0) down to the right."""
CLASS_WORDS = [name.replace(" ", "_") for name in CLASS_NAMES]


# Event parameters: ``name:key=value,...``


def in_range(param: Param) -> st.SearchStrategy:
    """Values of ``param`` that its range allows."""
    if param.kind is int:
        return st.integers(int(param.minimum or 0), int(param.maximum or 10**6))
    if param.kind is float:
        low = -1e6 if param.minimum is None else param.minimum
        high = 1e6 if param.maximum is None else param.maximum
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    return st.sampled_from(CLASS_WORDS)


@st.composite
def event_choices(
    draw: st.DrawFn, name: str | None = None, small_counts: bool = False
) -> tuple[str, dict[str, object]]:
    """An event name (``name`` or any) and values for some of its parameters, all in range;
    ``small_counts``: a count of 1-8, for events run on small rasters."""
    name = name or draw(st.sampled_from(sorted(EVENTS)))
    params = EVENTS[name].params
    chosen = draw(st.lists(st.sampled_from(params), unique_by=lambda p: p.name)) if params else []
    values = {}
    for param in chosen:
        strategy = in_range(param)
        if small_counts and param.name == "count":
            strategy = st.integers(1, 8)
        values[param.name] = draw(strategy)
    return name, values


def spec_text(name: str, values: dict[str, object], space: str = "") -> str:
    parts = [f"{key}{space}={space}{value!r}" for key, value in values.items()]
    parts = [part.replace("'", "") for part in parts]
    return f"{name}:{','.join(parts)}" if parts else name


@FAST
@given(choices=st.lists(event_choices(), min_size=1, max_size=3), space=st.sampled_from(["", " "]))
def test_valid_specs_round_trip(choices, space):
    spec = ", ".join(spec_text(name, values, space) for name, values in choices)
    try:
        events = parse_events(spec)
    except InputError as err:
        # the one check a range cannot express: the class a 'to' parameter names
        assert "is not one of the allowed classes" in str(err)
        return
    assert [event.name for event in events] == [name for name, _ in choices]
    for event, (_, values) in zip(events, choices, strict=True):
        expected = {p.name: values.get(p.name, p.default) for p in event.params}
        assert event.values == expected
    again = parse_events(",".join(repr(event) for event in events))
    assert [event.values for event in again] == [event.values for event in events]


@st.composite
def out_of_range(draw: st.DrawFn) -> tuple[str, str, str]:
    """An event, one of its numeric parameters and a value its range or type refuses."""
    numeric = [
        (name, param)
        for name, cls in EVENTS.items()
        for param in cls.params
        if param.kind in (int, float)
    ]
    name, param = draw(st.sampled_from(numeric))
    refused = [st.sampled_from(["nan", "inf", "-inf", "", "x", "1..2", "0x10", "1e999"])]
    if param.minimum is not None:
        refused.append(st.floats(max_value=param.minimum, exclude_max=True, allow_nan=False))
    if param.maximum is not None:
        refused.append(st.floats(min_value=param.maximum, exclude_min=True, allow_nan=False))
    if param.kind is int:
        refused.append(st.floats(allow_nan=False).filter(lambda v: not float(v).is_integer()))
    value = draw(st.one_of(refused))
    text = value if isinstance(value, str) else repr(value)
    return name, param.name, text


@FAST
@given(case=out_of_range())
def test_out_of_range_values_are_input_errors(case):
    name, key, text = case
    with pytest.raises(InputError) as err:
        parse_events(f"{name}:{key}={text}")
    assert f"{name}:{key}" in str(err.value)


TOKENS = (
    sorted(EVENTS)
    + [p.name for cls in EVENTS.values() for p in cls.params]
    + [":", "=", ",", " ", "1", "0.5", "-3", "nan", "1e9", "x", "building", "::", "=="]
)


@FAST
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=12), noise=st.text(max_size=8))
def test_any_spec_text_parses_or_is_an_input_error(tokens, noise):
    spec = "".join(tokens) + noise
    try:
        events = parse_events(spec)
    except InputError:
        return
    assert all(isinstance(event, Event) for event in events)


# Vector geometries given as --buildings, --changes or --where.

inside_x = st.floats(X0 - 10, X0 + SIDE * PIXEL + 10)
inside_y = st.floats(Y0 - SIDE * PIXEL - 10, Y0 + 10)
points = st.tuples(inside_x, inside_y)


def box(corners: tuple[tuple[float, float], tuple[float, float]]) -> shapely.Polygon:
    (x1, y1), (x2, y2) = corners
    return shapely.box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


polygons = st.one_of(
    st.tuples(points, points).map(box),  # valid, or flat (zero area)
    st.lists(points, min_size=3, max_size=8).map(shapely.Polygon),  # often self-intersecting
    st.just(shapely.Polygon()),
    st.tuples(points, points).map(lambda c: box(c).buffer(1).difference(box(c))),  # a ring
)
geometries = st.one_of(
    polygons,
    polygons,
    polygons,
    st.lists(polygons, min_size=1, max_size=3).map(
        lambda parts: (
            shapely.MultiPolygon([p for p in parts if not p.is_empty])
            if all(isinstance(p, shapely.Polygon) for p in parts)
            else parts[0]
        )
    ),
    points.map(shapely.Point),
    st.lists(points, min_size=2, max_size=4).map(shapely.LineString),
    st.lists(points, min_size=1, max_size=3).map(shapely.MultiPoint),
    st.lists(polygons | points.map(shapely.Point), min_size=1, max_size=3).map(
        shapely.GeometryCollection
    ),
)
targets = st.sampled_from(["water", "building", "agriculture_land", 6, "8", 2.0])


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    codes = np.full((SIDE, SIDE), 2, np.uint8)  # rangeland
    codes[10:30, 10:40] = 8
    codes[40:44, :] = 4
    codes[50:, 50:] = 5
    codes[:8, 60:] = 6
    codes[70:, :10] = 0
    return write_raster(tmp_path_factory.mktemp("region") / "region.tif", codes)


@pytest.mark.parametrize("role", ["--buildings", "--changes", "--where"])
@RUNS
@given(shapes=st.lists(geometries, min_size=1, max_size=4), to_class=targets)
def test_any_geometries_finish_or_are_input_errors(region, tmp_path, role, shapes, to_class):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    frame = gpd.GeoDataFrame({"to_class": [to_class] * len(shapes)}, geometry=shapes, crs=UTM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # GDAL notes on mixed geometry types
        frame.to_file(folder / "v.gpkg")
    out = folder / "out"
    args = ["simulate", str(region), role, str(folder / "v.gpkg"), "--events", "regrowth"]
    done = CliRunner().invoke(cli, [*args, "-o", str(out)])
    assert done.exit_code in (0, 2), done.output
    hypothesis.event(f"exit status {done.exit_code}")
    assert "Traceback" not in done.output
    if done.exit_code == 2:
        assert "Error: " in done.stderr
        assert not out.exists() and not list(folder.glob(".out*"))
        return
    with rasterio.open(out / "t1_landcover.tif") as src:
        t1 = src.read(1)
    with rasterio.open(out / "t2_landcover.tif") as src:
        t2 = src.read(1)
    with rasterio.open(out / "change.tif") as src:
        change = src.read(1)
    valid = t1 != 0
    np.testing.assert_array_equal(change[valid], (t1 != t2)[valid])
    assert (change[~valid] == 255).all() and (t2[~valid] == 0).all()


# The event rules on random land covers.


def box_in(draw: st.DrawFn, height: int, width: int, most: float) -> tuple[slice, slice]:
    """A rectangle of at least one pixel whose margins take at most ``most`` of each side."""
    top, bottom = draw(st.integers(0, int(height * most))), draw(st.integers(0, int(height * most)))
    left, right = draw(st.integers(0, int(width * most))), draw(st.integers(0, int(width * most)))
    return slice(top, max(height - bottom, top + 1)), slice(left, max(width - right, left + 1))


@st.composite
def land_covers(draw: st.DrawFn) -> np.ndarray:
    """Class patches of random sizes with a few speckles and maybe a block of no-data."""
    height, width = draw(st.integers(24, 96)), draw(st.integers(24, 96))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cell = draw(st.integers(3, 32))
    coarse = rng.integers(0, NUM_CLASSES, (height // cell + 1, width // cell + 1), np.uint8)
    land = np.repeat(np.repeat(coarse, cell, 0), cell, 1)[:height, :width].copy()
    speckles = rng.random((height, width)) < draw(st.sampled_from([0.0, 0.01, 0.05]))
    land[speckles] = rng.integers(0, NUM_CLASSES, int(speckles.sum()))
    if draw(st.booleans()):
        land[box_in(draw, height, width, 1.0)] = NODATA
    return land


@st.composite
def windows(draw: st.DrawFn) -> tuple[EventWindow, np.ndarray]:
    """A window on a random land cover with a core inside it, maybe a --where rectangle and
    maybe a rectangle an earlier event already changed (code 1); also the t2 before the event."""
    land = draw(land_covers())
    shape = land.shape
    allowed = None
    if draw(st.booleans()):
        allowed = np.zeros(shape, bool)
        allowed[box_in(draw, *shape, 0.5)] = True
    t2, event = land.copy(), np.zeros_like(land)
    if draw(st.booleans()):
        earlier = np.zeros(shape, bool)
        earlier[box_in(draw, *shape, 1.0)] = True
        earlier &= land != NODATA
        t2[earlier], event[earlier] = (land[earlier] + 1) % NUM_CLASSES, 1
    pixel = draw(st.sampled_from([(0.5, 0.5), (1.0, 1.0), (2.0, 2.0), (0.6, 0.45)]))
    sizes = np.array([[12.0, 8.0], [20.0, 10.0]]) if draw(st.booleans()) else np.zeros((0, 2))
    window = EventWindow(
        t1=land,
        t2=t2,
        event=event,
        core=box_in(draw, *shape, 0.3),
        pixel_size_m=pixel,
        stats=RegionStats(sizes, np.bincount(land[land != NODATA], minlength=NUM_CLASSES)),
        allowed=allowed,
    )
    return window, t2.copy()


@pytest.mark.parametrize("name", sorted(EVENTS))
@EACH
@given(data=st.data(), case=windows(), seed=st.integers(0, 2**16))
def test_events_keep_their_invariants(name, data, case, seed):
    window, before = case
    _, values = data.draw(event_choices(name, small_counts=True))
    try:
        event = EVENTS[name](**values)
    except InputError:
        return  # a 'to' class this event does not allow
    t1, earlier = window.t1.copy(), window.event == 1
    count = int(event.values[event.count_param]) if event.count_param else 0
    code = 2
    event.apply(window, code, np.random.default_rng(seed), count)
    t2, codes = window.t2, window.event
    np.testing.assert_array_equal(window.t1, t1)  # t1 is read only
    changed = t2 != before
    hypothesis.event("changed land" if changed.any() else "no change")
    np.testing.assert_array_equal(changed, codes == code)  # changed exactly where the event is
    assert (codes[earlier] == 1).all()  # an earlier event's pixels are left alone
    valid = t1 != NODATA
    assert (t2[valid] < NUM_CLASSES).all()  # classes stay in range
    assert (t2[~valid] == NODATA).all() and (codes[~valid] == 0).all()  # no-data untouched
    assert {
        (int(a), int(b)) for a, b in zip(t1[changed], t2[changed], strict=True)
    } <= event.transitions
    if window.allowed is not None:
        assert not (changed & ~window.allowed).any()


@RUNS
@given(
    land=land_covers(), choices=st.lists(event_choices(small_counts=True), min_size=1, max_size=3)
)
def test_simulate_on_random_land_covers(tmp_path, land, choices):
    """Whole runs: t1 is the input, change is set exactly where t2 differs, no-data stays."""
    codes = np.where(land == NODATA, 0, land + 1).astype(np.uint8)
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    region = write_raster(folder / "r.tif", codes)
    spec = ",".join(spec_text(name, values) for name, values in choices)
    try:
        with open_inputs(region, events=spec) as inputs:
            result = simulate(inputs, folder / "out", block_size=512)
    except InputError as err:
        message = str(err)
        hypothesis.event("refused")
        assert "is not one of the allowed classes" in message or "holds no data" in message
        assert not (folder / "out").exists()
        return
    hypothesis.event(f"ran, {result.summary['changes']['polygons'] and 'some' or 'no'} change")
    with rasterio.open(result.output / "t1_landcover.tif") as src:
        np.testing.assert_array_equal(src.read(1), codes)
    with rasterio.open(result.output / "t2_landcover.tif") as src:
        t2 = src.read(1)
    with rasterio.open(result.output / "change.tif") as src:
        change = src.read(1)
    valid = codes != 0
    np.testing.assert_array_equal(change[valid], (codes != t2)[valid])
    assert (t2[valid] >= 1).all() and (t2 <= NUM_CLASSES).all()
    assert (change[~valid] == 255).all() and (t2[~valid] == 0).all()
