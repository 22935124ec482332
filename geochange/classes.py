"""The canonical land-cover classes and the input schemes that map onto them.

In memory a land-cover array holds model indices 0-7 (OpenEarthMap order) and ``NODATA`` (255).
On disk geochange writes OpenEarthMap's own codes, index + 1, with 0 = no data, so its outputs read
back as inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from geochange.errors import InputError

CLASS_NAMES: tuple[str, ...] = (
    "bareland",
    "rangeland",
    "developed space",
    "road",
    "tree",
    "water",
    "agriculture land",
    "building",
)
PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 0, 0),
    (0, 255, 36),
    (148, 148, 148),
    (255, 255, 255),
    (34, 97, 38),
    (0, 69, 255),
    (75, 181, 73),
    (222, 31, 7),
)
NUM_CLASSES = len(CLASS_NAMES)
NODATA = 255
"""In-memory no-data index."""
NODATA_CODE = 0
"""On-disk no-data code."""
_UNKNOWN = 254
"""Marks input values a scheme does not list, inside lookup tables."""

BARELAND, RANGELAND, DEVELOPED, ROAD, TREE, WATER, AGRICULTURE, BUILDING = range(NUM_CLASSES)


def to_codes(indices: np.ndarray) -> np.ndarray:
    """Model indices (``NODATA`` for no data) to on-disk codes (0 for no data)."""
    return np.where(indices == NODATA, NODATA_CODE, indices + 1).astype(np.uint8)


def class_index(name_or_code: str | float) -> int:
    """A class given by name ("tree", "agriculture_land") or on-disk code (1-8) to its index.

    A whole float code (8.0) counts as the code: an integer field with empty values reads
    back as floats from many vector formats.
    """
    if isinstance(name_or_code, float) and name_or_code.is_integer():
        name_or_code = int(name_or_code)
    text = str(name_or_code).strip().lower().replace("_", " ")
    if text.isdigit() and 1 <= int(text) <= NUM_CLASSES:
        return int(text) - 1
    if text in CLASS_NAMES:
        return CLASS_NAMES.index(text)
    valid = ", ".join(f"{i + 1}={n.replace(' ', '_')}" for i, n in enumerate(CLASS_NAMES))
    raise InputError(
        f"unknown class {name_or_code!r}",
        f"use a class name or on-disk code: {valid}",
    )


def gdal_colormap() -> dict[int, tuple[int, int, int, int]]:
    """Colour table for on-disk codes, as rasterio's ``write_colormap`` wants it."""
    table = {NODATA_CODE: (0, 0, 0, 0)}
    table.update({i + 1: (*rgb, 255) for i, rgb in enumerate(PALETTE)})
    return table


@dataclass(frozen=True)
class ClassScheme:
    """How the values of an input land-cover raster map onto the canonical classes.

    ``codes`` maps single-band values, ``colours`` maps RGB triples (for colour-coded masks).
    A value mapped to ``NODATA`` is ignored; a value not listed at all is an error.
    """

    name: str
    codes: dict[int, int] | None = None
    colours: dict[tuple[int, int, int], int] | None = None

    @property
    def bands(self) -> int:
        return 3 if self.colours is not None else 1

    def map(self, data: np.ndarray) -> np.ndarray:
        """Input values (``(H, W)`` or ``(3, H, W)``) to class indices; raises on unknown values."""
        classes, unknown = self.classify(data)
        if unknown:
            raise unknown_values_error(self, unknown)
        return classes

    def classify(
        self, data: np.ndarray, valid: np.ndarray | None = None
    ) -> tuple[np.ndarray, dict[str, int]]:
        """Class indices (``NODATA`` outside ``valid``), and the unknown values with their pixel
        counts (empty if none)."""
        if self.colours is None and data.dtype in (np.uint8, np.uint16):
            classes = self._direct_table(data.dtype)[data]
        else:
            keys, lut = self._lookup
            packed = self._packed(data)
            position = np.clip(np.searchsorted(keys, packed), 0, len(keys) - 1)
            classes = np.where(keys[position] == packed, lut[position], _UNKNOWN).astype(np.uint8)
        if valid is not None:
            classes[~valid] = NODATA
        unknown = classes == _UNKNOWN
        if not unknown.any():
            return classes, {}
        values, counts = np.unique(self._packed(data)[unknown], return_counts=True)
        listing = {self._describe(int(v)): int(c) for v, c in zip(values, counts, strict=True)}
        return classes, listing

    @cached_property
    def _tables(self) -> dict[np.dtype, np.ndarray]:
        return {}

    def _direct_table(self, dtype: np.dtype) -> np.ndarray:
        """A lookup table indexed by every value of a small integer type (fast path)."""
        if dtype not in self._tables:
            table = np.full(np.iinfo(dtype).max + 1, _UNKNOWN, np.uint8)
            for code, index in (self.codes or {}).items():
                if 0 <= code < len(table):
                    table[code] = index
            self._tables[dtype] = table
        return self._tables[dtype]

    @cached_property
    def _lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted known values (packed RGB for colours) and their class indices."""
        if self.colours is not None:
            table = {_pack_one(rgb): idx for rgb, idx in self.colours.items()}
        else:
            table = dict(self.codes or {})
        keys = np.array(sorted(table), dtype=np.int64)
        lut = np.array([table[k] for k in keys], dtype=np.uint8)
        return keys, lut

    def _packed(self, data: np.ndarray) -> np.ndarray:
        return _pack(data) if self.colours is not None else data.astype(np.int64)

    def _describe(self, packed: int) -> str:
        if self.colours is None:
            return str(packed)
        return str(((packed >> 16) & 255, (packed >> 8) & 255, packed & 255))


def unknown_values_error(scheme: ClassScheme, unknown: dict[str, int]) -> InputError:
    listing = ", ".join(f"{value} ({count} px)" for value, count in list(unknown.items())[:20])
    more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
    return InputError(
        f"land cover has values that class scheme {scheme.name!r} does not know: {listing}{more}",
        f"pick the scheme that matches the file with --classes ({', '.join(SCHEMES)}; "
        "`geochange classes` says what each reads) or give a YAML file that maps every value "
        "to a class",
    )


def _pack_one(rgb: tuple[int, int, int]) -> int:
    return (int(rgb[0]) << 16) | (int(rgb[1]) << 8) | int(rgb[2])


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]


SCHEMES: dict[str, ClassScheme] = {
    "oem": ClassScheme("oem", codes={0: NODATA, **{i + 1: i for i in range(NUM_CLASSES)}}),
    # Model indices 0-7 with no no-data value, as in the SECOND/LsSCD pseudo-label masks.
    "oem-index": ClassScheme("oem-index", codes={i: i for i in range(NUM_CLASSES)}),
    # Dubai (Humans in the Loop) RGB masks; vegetation there is mostly palms and parks -> tree.
    # Grey is the source's "unlabeled"; black (about 0.6 % of the pixels) is unlabelled border.
    "dubai": ClassScheme(
        "dubai",
        colours={
            (60, 16, 152): BUILDING,
            (132, 41, 246): BARELAND,
            (110, 193, 228): ROAD,
            (254, 221, 58): TREE,
            (226, 169, 41): WATER,
            (155, 155, 155): NODATA,
            (0, 0, 0): NODATA,
        },
    ),
    # LoveDA (0.3 m): 0 no data, 1 background, 2 building, 3 road, 4 water, 5 barren, 6 forest,
    # 7 agriculture. "Background" is whatever else there is (field margins, tree rows, yards,
    # grass, dirt tracks), no one class of ours, so it is ignored (no data), not guessed.
    "loveda": ClassScheme(
        "loveda",
        codes={
            0: NODATA,
            1: NODATA,
            2: BUILDING,
            3: ROAD,
            4: WATER,
            5: BARELAND,
            6: TREE,
            7: AGRICULTURE,
        },
    ),
    # ISPRS Potsdam patches (0.05 m) as the common 512² conversion writes them: 0 is the
    # unlabelled border drawn around every object, then the benchmark's classes in its order.
    # Impervious surfaces there are streets and pavements, and cars stand on them: both road.
    "potsdam": ClassScheme(
        "potsdam",
        codes={
            0: NODATA,  # object borders
            1: ROAD,  # impervious surfaces
            2: BUILDING,
            3: RANGELAND,  # low vegetation
            4: TREE,
            5: ROAD,  # car
            6: NODATA,  # clutter / background
        },
    ),
    # FLAIR-1 RGB masks (0.2 m), its 19-class palette. Impervious surface is mostly streets and
    # lanes -> road; pervious surface (gravel, beaten earth, sports grounds) -> developed space;
    # plowed land is a field between crops -> agriculture land; "other" is ignored.
    "flair": ClassScheme(
        "flair",
        colours={
            (219, 14, 154): BUILDING,
            (147, 142, 123): DEVELOPED,  # pervious surface
            (248, 12, 0): ROAD,  # impervious surface
            (169, 113, 1): BARELAND,  # bare soil
            (21, 83, 174): WATER,
            (25, 74, 38): TREE,  # coniferous
            (70, 228, 131): TREE,  # deciduous
            (243, 166, 13): TREE,  # brushwood
            (102, 0, 130): AGRICULTURE,  # vineyard
            (85, 255, 0): RANGELAND,  # herbaceous vegetation
            (255, 243, 13): AGRICULTURE,  # agricultural land
            (228, 223, 124): AGRICULTURE,  # plowed land
            (61, 230, 235): WATER,  # swimming pool
            (255, 255, 255): BARELAND,  # snow
            (138, 179, 160): BARELAND,  # clear cut
            (107, 113, 79): TREE,  # mixed
            (197, 220, 66): TREE,  # ligneous
            (153, 153, 255): BUILDING,  # greenhouse
            (0, 0, 0): NODATA,  # other
        },
    ),
    # ESA WorldCover 10 m codes.
    "worldcover": ClassScheme(
        "worldcover",
        codes={
            0: NODATA,
            10: TREE,  # tree cover
            20: RANGELAND,  # shrubland
            30: RANGELAND,  # grassland
            40: AGRICULTURE,  # cropland
            50: DEVELOPED,  # built-up
            60: BARELAND,  # bare / sparse vegetation
            70: BARELAND,  # snow and ice
            80: WATER,  # permanent water bodies
            90: WATER,  # herbaceous wetland
            95: TREE,  # mangroves
            100: RANGELAND,  # moss and lichen
        },
    ),
    # SECOND semantic labels: 0 no change/unlabelled, then water, ground, low vegetation,
    # tree, building, playground.
    "second": ClassScheme(
        "second",
        codes={
            0: NODATA,
            1: WATER,
            2: BARELAND,
            3: RANGELAND,
            4: TREE,
            5: BUILDING,
            6: DEVELOPED,
        },
    ),
}


def load_scheme(name_or_path: str | Path) -> ClassScheme:
    """A built-in scheme by name, or a user YAML file.

    The YAML file has a ``codes:`` mapping (value -> class name or code) or a ``colours:`` mapping
    ("R,G,B" -> class), where the class ``nodata`` marks values to ignore.
    """
    key = str(name_or_path)
    if key.lower() in SCHEMES:
        return SCHEMES[key.lower()]
    path = Path(key)
    if not path.is_file():
        raise InputError(
            f"class scheme {key!r} is neither a built-in scheme nor a file",
            f"use one of {', '.join(SCHEMES)} or the path of a YAML file",
        )
    try:
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except UnicodeDecodeError as err:
        raise InputError(
            f"class scheme {path} is not UTF-8 text ({err.reason} at byte {err.start})",
            "save it as UTF-8",
        ) from err
    except (OSError, yaml.YAMLError) as err:
        raise InputError(f"cannot read class scheme {path}: {err}") from err
    if not isinstance(spec, dict) or not ({"codes", "colours"} & spec.keys()):
        raise InputError(
            f"class scheme {path} has no 'codes:' or 'colours:' mapping",
            "write e.g. 'codes: {1: tree, 2: water, 0: nodata}'",
        )
    mapping = spec["codes" if "codes" in spec else "colours"]
    if not isinstance(mapping, dict) or not mapping:
        raise InputError(
            f"class scheme {path}: its '{'codes' if 'codes' in spec else 'colours'}:' is not a "
            "mapping of values to classes",
            "write e.g. 'codes: {1: tree, 2: water, 0: nodata}'",
        )

    def target(value: object) -> int:
        return NODATA if str(value).strip().lower() == "nodata" else class_index(value)

    if "codes" in spec:
        return ClassScheme(path.stem, codes={_code(k, path): target(v) for k, v in mapping.items()})
    colours = {_colour(k, path): target(v) for k, v in mapping.items()}
    return ClassScheme(path.stem, colours=colours)


def _code(key: object, path: Path) -> int:
    """A raster value of a YAML ``codes:`` key: a whole number (1.7 is not 1)."""
    if isinstance(key, bool) or not isinstance(key, int):
        raise InputError(
            f"code {key!r} in class scheme {path} is not a whole number",
            "the keys of 'codes:' are the raster's values, e.g. 'codes: {1: tree, 0: nodata}'",
        )
    return key


def _colour(key: object, path: Path) -> tuple[int, int, int]:
    """An RGB triple of a YAML ``colours:`` key written 'R,G,B', each 0-255."""
    parts = str(key).replace(" ", "").strip("()[]").split(",")
    if len(parts) != 3 or not all(p.isdigit() and int(p) <= 255 for p in parts):
        raise InputError(
            f"colour {key!r} in {path} is not 'R,G,B' with each of 0-255",
            "write e.g. 'colours: {\"60,16,152\": building}'",
        )
    red, green, blue = (int(p) for p in parts)
    return red, green, blue


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice (it kept the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is written twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)
