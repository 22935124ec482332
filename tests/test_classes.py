import numpy as np
import pytest

from geochange.classes import (
    CLASS_NAMES,
    NODATA,
    SCHEMES,
    class_index,
    gdal_colormap,
    load_scheme,
    to_codes,
)
from geochange.errors import InputError


def test_oem_codes_round_trip_to_indices_and_back():
    codes = np.array([[0, 1, 2, 3], [4, 5, 6, 8]], np.uint8)
    indices = SCHEMES["oem"].map(codes)
    assert indices.tolist() == [[NODATA, 0, 1, 2], [3, 4, 5, 7]]
    assert (to_codes(indices) == codes).all()


def test_unknown_codes_are_listed_with_pixel_counts():
    codes = np.array([[1, 9, 9], [42, 2, 3]], np.uint8)
    with pytest.raises(InputError) as err:
        SCHEMES["oem"].map(codes)
    message = str(err.value)
    assert "9 (2 px)" in message and "42 (1 px)" in message and "classes=" in message


def test_dubai_colours_map_and_unknown_colour_fails():
    rgb = np.array([[[60, 110]], [[16, 193]], [[152, 228]]], np.uint8)
    assert SCHEMES["dubai"].map(rgb).tolist() == [[7, 3]]
    with pytest.raises(InputError, match=r"\(1, 2, 3\) \(1 px\)"):
        SCHEMES["dubai"].map(np.array([[[1]], [[2]], [[3]]], np.uint8))


def test_worldcover_maps_every_official_code():
    codes = np.array([10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100], np.uint8)
    mapped = SCHEMES["worldcover"].map(codes)
    assert [CLASS_NAMES[i] for i in mapped[:5]] == [
        "tree",
        "rangeland",
        "rangeland",
        "agriculture land",
        "developed space",
    ]


def test_yaml_scheme_with_codes_and_colours(tmp_path):
    codes_file = tmp_path / "mine.yaml"
    codes_file.write_text("codes:\n  11: tree\n  12: 8\n  0: nodata\n")
    assert load_scheme(codes_file).map(np.array([11, 12, 0])).tolist() == [4, 7, NODATA]
    colours_file = tmp_path / "colours.yaml"
    colours_file.write_text("colours:\n  '255,0,0': building\n")
    scheme = load_scheme(colours_file)
    assert scheme.bands == 3
    assert scheme.map(np.array([[[255]], [[0]], [[0]]])).tolist() == [[7]]


def test_bad_yaml_and_unknown_scheme(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes: [1, 2]\n")
    with pytest.raises(InputError, match="no 'codes:'"):
        load_scheme(bad)
    with pytest.raises(InputError, match="neither a built-in scheme nor a file"):
        load_scheme("nlcd-but-missing")
    wrong_class = tmp_path / "wrong.yaml"
    wrong_class.write_text("codes:\n  1: lava\n")
    with pytest.raises(InputError, match="unknown class 'lava'"):
        load_scheme(wrong_class)


def test_class_index_accepts_names_codes_and_underscores():
    assert class_index("agriculture_land") == 6
    assert class_index(8) == 7
    assert class_index("Building") == 7
    with pytest.raises(InputError):
        class_index(9)


def test_colormap_has_nodata_transparent_and_palette():
    table = gdal_colormap()
    assert table[0][3] == 0
    assert table[8] == (222, 31, 7, 255)
    assert len(table) == 9


def test_oem_index_scheme_reads_the_second_examples_pseudo_labels(shared_data):
    import rasterio
    import rasterio.errors

    mask = shared_data / "second_examples/second/mask_A/1.png"
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning), rasterio.open(mask) as src:
        values = src.read(1)
    classes = SCHEMES["oem-index"].map(values)
    assert (classes == values).all() and classes.max() <= 7
    with pytest.raises(InputError, match="8 "):
        SCHEMES["oem-index"].map(np.array([8], np.uint8))
