"""End-to-end checks of ``simulate``: the content of every output, on real and generated data."""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio import features
from rasterio.errors import NotGeoreferencedWarning
from rio_cogeo.cogeo import cog_validate

from geochange.classes import CLASS_NAMES, SCHEMES
from geochange.events import EVENTS
from geochange.grid import Grid
from geochange.inputs import open_inputs
from geochange.simulation import simulate
from tests.conftest import write_raster


def run(region, output, events="", seed=0, block_size=2048, **options):
    with open_inputs(region, events=events, **options) as inputs:
        return simulate(inputs, output, seed=seed, block_size=block_size)


def read(path: Path) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    with rasterio.open(path) as src:
        return src.read(1), src.profile


def check_outputs(out: Path, expected_t1_codes: np.ndarray, grid: Grid) -> gpd.GeoDataFrame:
    """The checks every run must pass; returns the change polygons."""
    t1, profile = read(out / "t1_landcover.tif")
    t2, t2_profile = read(out / "t2_landcover.tif")
    change, change_profile = read(out / "change.tif")
    # the no-data tags themselves, as QGIS reads them (not only through the STAC item)
    assert (profile["nodata"], t2_profile["nodata"], change_profile["nodata"]) == (0, 0, 255)
    assert profile["crs"] == grid.crs and profile["transform"].almost_equals(grid.transform)
    assert (profile["width"], profile["height"]) == (grid.width, grid.height)
    assert change_profile["crs"] == grid.crs
    np.testing.assert_array_equal(t1, expected_t1_codes)
    valid = t1 != 0
    np.testing.assert_array_equal(change[valid], (t1 != t2)[valid].astype(np.uint8))
    assert (change[~valid] == 255).all() and (t2[~valid] == 0).all()
    assert change.any(), "nothing changed"
    for name in ("t1_landcover.tif", "t2_landcover.tif", "change.tif"):
        valid_cog, errors, _ = cog_validate(out / name, quiet=True)
        assert valid_cog, errors
    for name in ("t1_landcover.qml", "t2_landcover.qml"):
        entries = ET.parse(out / name).getroot().findall(".//paletteEntry")
        assert [e.get("label") for e in entries] == list(CLASS_NAMES)
    with rasterio.open(out / "t1_landcover.tif") as src:
        assert src.colormap(1)[8][:3] == (222, 31, 7)
        assert "land cover" in src.descriptions[0]
    polygons = gpd.read_file(out / "changes.gpkg", layer="changes")
    check_polygons(polygons, t1, t2, change, grid)
    return polygons


def check_polygons(polygons, t1, t2, change, grid: Grid) -> None:
    """Polygons cover the changed pixels exactly, one t2 class each, named after the t1 class
    that covered most of them."""
    assert list(polygons.columns) == ["event", "from_class", "to_class", "area_m2", "geometry"]
    assert polygons.crs == grid.crs
    pixel_area = np.prod(grid.pixel_size_m())
    ids = features.rasterize(
        zip(polygons.geometry, range(1, len(polygons) + 1), strict=True),
        out_shape=t1.shape,
        transform=grid.transform,
        dtype="int32",
    )
    np.testing.assert_array_equal(ids > 0, change == 1)
    counts = np.bincount(ids.ravel(), minlength=len(polygons) + 1)[1:]
    np.testing.assert_allclose(polygons["area_m2"], counts * pixel_area, rtol=0.01)
    inside = 0
    for index, row in enumerate(polygons.itertuples(), start=1):
        under = ids == index
        assert np.bincount(t1[under]).argmax() == CLASS_NAMES.index(row.from_class) + 1
        assert set(np.unique(t2[under])) == {CLASS_NAMES.index(row.to_class) + 1}
        pair = (CLASS_NAMES.index(row.from_class), CLASS_NAMES.index(row.to_class))
        if row.event in EVENTS:
            assert pair in EVENTS[row.event].transitions, (row.event, pair)
        r, c = rasterio.transform.rowcol(grid.transform, *row.geometry.representative_point().xy)
        assert ids[int(r[0]), int(c[0])] == index
        r, c = rasterio.transform.rowcol(grid.transform, *row.geometry.centroid.xy)
        inside += change[int(r[0]), int(c[0])] == 1
    assert inside >= 0.8 * len(polygons), "most centroids must fall on changed pixels"


def grid_of(path: Path) -> Grid:
    with rasterio.open(path) as src:
        return Grid(src.crs, src.transform, src.width, src.height)


def test_openearthmap_geographic_tile(shared_data, tmp_path):
    label = shared_data / "openearthmap/labels/houston_16.tif"
    result = run(
        label, tmp_path / "out", "building_add:count=25,deforestation:fraction=0.3", seed=4
    )
    codes, _ = read(label)
    grid = grid_of(label)
    assert grid.crs.is_geographic
    polygons = check_outputs(result.output, codes, grid)
    assert set(polygons["event"]) == {"building_add", "deforestation"}
    assert polygons.loc[polygons.event == "building_add", "to_class"].eq("building").all()
    summary = result.summary
    assert summary["seed"] == 4 and summary["inputs"]["region"]["sha256"]
    assert summary["changes"]["pixels_by_event"]["building_add"] > 0


def test_same_seed_same_files_other_seed_differs(town_tif, tmp_path):
    events = "building_add:count=15,flood,road_add:count=2"
    a = run(town_tif, tmp_path / "a", events, seed=7).output
    b = run(town_tif, tmp_path / "b", events, seed=7).output
    c = run(town_tif, tmp_path / "c", events, seed=8).output
    # every file, changes.gpkg too (its gpkg_contents.last_change was the time of writing);
    # only run.json's timings and paths and item.json's id and creation time differ
    for path in a.iterdir():
        if path.name not in ("run.json", "item.json"):
            assert path.read_bytes() == (b / path.name).read_bytes(), path.name
    assert (a / "t2_landcover.tif").read_bytes() != (c / "t2_landcover.tif").read_bytes()


def test_every_block_draws_its_own_events():
    """Event seeds hold the block's row and column: two blocks of the same land differ (without
    them every block repeated the same clearings)."""
    from rasterio.windows import Window

    from geochange.events import EventWindow, RegionStats, parse_events
    from geochange.plan import Block
    from geochange.run import _apply_events

    land = np.full((256, 256), 4, np.uint8)  # tree (index 4)
    land[:, :40] = 0  # bareland beside it: the edge clearings start from
    results = []
    for row, col in ((0, 0), (0, 1), (1, 0)):
        core = Window(0, 0, 256, 256)
        window = EventWindow(
            land,
            land.copy(),
            np.zeros_like(land),
            (slice(0, 256), slice(0, 256)),
            (1.0, 1.0),
            RegionStats(),
        )
        events = parse_events("deforestation:fraction=0.3")
        results.append(_apply_events(events, 1, 5, (Block(row, col, core, core), window, [0]))[0])
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert not np.array_equal(results[a], results[b]), f"blocks {a} and {b} drew the same"


def test_blocks_do_not_cut_events(town_tif, town_codes, tmp_path):
    result = run(town_tif, tmp_path / "out", "building_add:count=60,deforestation", block_size=512)
    polygons = check_outputs(result.output, town_codes, grid_of(town_tif))
    border_x = 500_000 + 512 * 0.5
    border_y = 5_550_000 - 512 * 0.5
    borders = shapely.MultiLineString(
        [[(border_x, 5_549_000), (border_x, 5_551_000)], [(499_000, border_y), (501_000, border_y)]]
    )
    crossing = polygons[polygons.intersects(borders) & ~polygons.touches(borders)]
    assert len(crossing) > 0, "expected some changes to cross the inner block borders"
    for key, group in polygons.groupby(["event", "to_class"]):
        shapes = np.asarray(group.geometry.values)
        shared = shapely.intersection(shapes[:, None], shapes)
        length = shapely.length(shared)
        np.fill_diagonal(length, 0)
        assert length.max() == 0, f"polygons of {key} share an edge: cut at a block border"
    new_buildings = shapely.get_parts(polygons[polygons.event == "building_add"].union_all())
    assert min(b.area for b in new_buildings) > 20, "a new building was cut into a sliver"


def test_small_raster_nodata_blocks_and_edges(tmp_path):
    codes = np.full((700, 1300), 2, np.uint8)
    codes[:, 600:] = 0  # two of three blocks hold no data at all
    codes[0, 0] = codes[-1, 0] = 5  # edge and corner pixels
    codes[200:300, 100:300] = 8
    region = write_raster(tmp_path / "r.tif", codes)
    result = run(region, tmp_path / "out", "building_remove:count=1", block_size=512)
    t1, _ = read(result.output / "t1_landcover.tif")
    np.testing.assert_array_equal(t1, codes)
    check_outputs(result.output, codes, grid_of(region))
    tiny = write_raster(tmp_path / "tiny.tif", np.array([[8, 8, 8], [8, 8, 3], [3, 3, 3]], "uint8"))
    small = run(tiny, tmp_path / "tiny_out", "building_remove:count=1", min_area=0)
    t2, profile = read(small.output / "t2_landcover.tif")
    assert profile["width"] == 3 and (t2 != 8).all()


def test_dubai_rgb_and_paletted_masks(shared_data, tmp_path):
    for mask in (
        shared_data / "dubai/tile_1/masks/image_part_001.png",
        shared_data / "dubai/tile_2/masks/image_part_003.png",
    ):
        out = tmp_path / mask.parent.parent.name
        result = run(mask, out, "building_add:count=10", classes="dubai", crs="EPSG:32640", gsd=0.5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(mask) as src:
                data = src.read()
                if src.count == 1:
                    palette = src.colormap(1)
                    data = np.array([[palette[v][:3] for v in row] for row in data[0]])
                    data = data.transpose(2, 0, 1)
        expected = SCHEMES["dubai"].map(data[:3])
        expected = np.where(expected == 255, 0, expected + 1)
        t1, profile = read(result.output / "t1_landcover.tif")
        np.testing.assert_array_equal(t1, expected)
        assert profile["crs"] == "EPSG:32640" and profile["transform"].a == 0.5


def test_prague_buildings_burned_onto_utm_grid(shared_data, tmp_path):
    gpkg = shared_data / "prague_vectors/bubenec.gpkg"
    footprints = gpd.read_file(gpkg, layer="buildings").to_crs("EPSG:32633")
    left, bottom, right, top = footprints.total_bounds
    transform = rasterio.transform.from_origin(left - 10, top + 10, 0.5, 0.5)
    shape = (int((top - bottom + 20) / 0.5), int((right - left + 20) / 0.5))
    region = write_raster(tmp_path / "r.tif", np.full(shape, 2, np.uint8), transform=transform)
    result = run(
        region,
        tmp_path / "out",
        "building_remove:count=5",
        buildings=f"{gpkg}|layername=buildings",
    )
    t1, _ = read(result.output / "t1_landcover.tif")
    burned = features.rasterize(footprints.geometry, out_shape=shape, transform=transform)
    np.testing.assert_array_equal(t1 == 8, burned == 1)
    polygons = gpd.read_file(result.output / "changes.gpkg")
    assert (polygons.from_class == "building").all() and len(polygons) >= 5


def test_spacenet_footprints_onto_web_mercator_grid(shared_data, tmp_path):
    labels = shared_data / "spacenet_sample/geotiff_labels.geojson"
    footprints = gpd.read_file(labels).to_crs("EPSG:3857")
    left, bottom, right, top = footprints.total_bounds
    transform = rasterio.transform.from_origin(left - 20, top + 20, 0.6, 0.6)
    shape = (int((top - bottom + 40) / 0.6), int((right - left + 40) / 0.6))
    region = write_raster(
        tmp_path / "r.tif", np.full(shape, 3, np.uint8), crs="EPSG:3857", transform=transform
    )
    result = run(region, tmp_path / "out", "building_remove:count=3", buildings=labels)
    t1, _ = read(result.output / "t1_landcover.tif")
    burned = features.rasterize(footprints.geometry, out_shape=shape, transform=transform)
    np.testing.assert_array_equal(t1 == 8, burned == 1)
    grid = grid_of(region)
    width_m, height_m = grid.pixel_size_m()
    assert width_m < 0.6 * 0.9, "Web Mercator units are not ground metres"
    polygons = check_outputs(result.output, t1, grid)
    assert (polygons.event == "building_remove").all()


def test_reprojection_with_crs_and_gsd(shared_data, tmp_path):
    label = shared_data / "openearthmap/labels/palu_8.tif"
    result = run(label, tmp_path / "out", "regrowth", crs="EPSG:32750", gsd=1.0)
    t1, profile = read(result.output / "t1_landcover.tif")
    assert profile["crs"] == "EPSG:32750"
    assert profile["transform"].a == pytest.approx(1.0)
    codes, _ = read(label)
    shares = np.bincount(t1[t1 > 0], minlength=9)[1:] / (t1 > 0).sum()
    source = np.bincount(codes[codes > 0], minlength=9)[1:] / (codes > 0).sum()
    np.testing.assert_allclose(shares, source, atol=0.03)


def test_user_changes_and_where(town_tif, tmp_path):
    polygon = shapely.box(500_050, 5_549_700, 500_150, 5_549_800)
    drawn = gpd.GeoDataFrame(
        {"to_class": ["water", "7"], "event": ["new_lake", None]},
        geometry=[polygon, shapely.box(500_300, 5_549_700, 500_350, 5_549_750)],
        crs="EPSG:32633",
    ).to_crs("EPSG:4326")
    drawn.to_file(tmp_path / "changes.geojson")
    zone = gpd.GeoDataFrame(geometry=[shapely.box(500_200, 5_549_600, 500_400, 5_549_900)])
    zone.set_crs("EPSG:32633").to_file(tmp_path / "zone.gpkg")
    result = run(
        town_tif,
        tmp_path / "out",
        "regrowth:fraction=0.5",
        changes=tmp_path / "changes.geojson",
        where=tmp_path / "zone.gpkg",
    )
    polygons = gpd.read_file(result.output / "changes.gpkg")
    assert set(polygons.event) == {"new_lake", "user_change", "regrowth"}
    lake = polygons[polygons.event == "new_lake"]
    assert (lake.to_class == "water").all()
    assert lake.area_m2.sum() == pytest.approx(100 * 100, rel=0.05)
    regrowth = polygons[polygons.event == "regrowth"]
    zone_poly = zone.geometry.iloc[0]
    assert regrowth.within(zone_poly.buffer(0.01)).all()


def test_masked_values_are_no_data_and_an_empty_change_is_written(tmp_path):
    codes = np.full((64, 80), 2, np.uint8)
    codes[:10] = 99  # the file's nodata value, unknown to the scheme but masked
    region = write_raster(tmp_path / "r.tif", codes, nodata=99)
    result = run(region, tmp_path / "out", "building_remove")
    t1, _ = read(result.output / "t1_landcover.tif")
    change, _ = read(result.output / "change.tif")
    assert (t1[:10] == 0).all() and (t1[10:] == 2).all()
    assert (change[:10] == 255).all() and (change[10:] == 0).all()
    polygons = gpd.read_file(result.output / "changes.gpkg", layer="changes")
    assert len(polygons) == 0 and "area_m2" in polygons.columns
    assert result.summary["changes"]["polygons"] == 0


def test_a_run_and_its_image_pass_draw_from_one_seed(town_tif, tmp_path):
    """The seed is given once: an image pass holding another one is refused before anything
    is written, so a run's outputs never mix two seeds."""
    from types import SimpleNamespace

    from geochange.run import Run

    images = SimpleNamespace(seed=0, fingerprint=dict)
    with open_inputs(town_tif, events="regrowth") as inputs:
        with pytest.raises(ValueError, match="seed 0, the run 1"):
            Run(inputs, tmp_path / "out", seed=1, images=images)
        Run(inputs, tmp_path / "out", seed=0, images=images)
    assert not (tmp_path / "out").exists()
