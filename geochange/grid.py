"""One grid (CRS, transform, shape) for every input, and reading land cover onto it.

The land cover decides the grid unless ``crs``/``gsd`` ask for another one; then it is warped
(mode resampling for class codes, nearest for colour-coded masks, whose RGB triples must not mix).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError, ProjError
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform, transform_bounds
from rasterio.windows import Window

from geochange.classes import CLASS_NAMES, NODATA, ClassScheme
from geochange.errors import InputError

_GEOD = Geod(ellps="WGS84")
MAX_PIXEL_M = 100.0
"""The largest land-cover pixel, in metres, that events can draw changes in (CORINE's)."""


@dataclass(frozen=True)
class Grid:
    """Where every output pixel lies."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        return min(left, right), min(top, bottom), max(left, right), max(top, bottom)

    def window_transform(self, window: Window) -> Affine:
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    def pixel_size_m(self) -> tuple[float, float]:
        """Width and height of a pixel at the grid's centre, in metres on the ground.

        Measured geodesically, so geographic CRSs and Web Mercator give true metres.
        """
        cx, cy = self.width / 2, self.height / 2
        corners = [self.transform @ (cx, cy), self.transform @ (cx + 1, cy)]
        corners.append(self.transform @ (cx, cy + 1))
        to_lonlat = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        (lon0, lat0), (lon1, lat1), (lon2, lat2) = (to_lonlat.transform(*c) for c in corners)
        width = _GEOD.inv(lon0, lat0, lon1, lat1)[2]
        height = _GEOD.inv(lon0, lat0, lon2, lat2)[2]
        return float(width), float(height)

    def gsd_m(self) -> float:
        """One pixel size in metres: the geometric mean of its width and height."""
        width, height = self.pixel_size_m()
        return math.sqrt(width * height)

    def equal_area_crs(self) -> CRS:
        """A Lambert azimuthal equal-area CRS centred on the grid, for areas in m²."""
        to_lonlat = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        lon, lat = to_lonlat.transform(*(self.transform @ (self.width / 2, self.height / 2)))
        return CRS.from_proj4(f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +datum=WGS84 +units=m")


_REMOTE = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://|/vsi(?:curl|s3|gs|az|adls|oss|swift|hdfs|webhdfs)[a-z_]*/)",
    re.IGNORECASE,
)


def require_local(path: str | Path, what: str) -> None:
    """geochange reads only local files (it promises no network access): refuse URLs and GDAL's
    network and archive paths before GDAL opens them (it fetched them, then hashing failed)."""
    text = str(path)
    if _REMOTE.match(text):
        raise InputError(
            f"{what} {text} is on the network; geochange reads local files only",
            "download it first (e.g. with curl or `gdal_translate`) and pass the local file",
        )
    if text.lower().startswith("/vsi"):
        raise InputError(
            f"{what} {text} is a GDAL virtual path; geochange reads plain local files only",
            "extract or copy it to a local file first (e.g. `unzip`, or `gdal_translate` for "
            "a raster) and pass that file",
        )


def open_raster(path: str | Path) -> rasterio.io.DatasetReader:
    """Open a local raster, turning GDAL's errors into a message that names the file."""
    require_local(path, "raster")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioIOError as err:
        raise InputError(
            f"cannot read raster {path}: {err}",
            "check that the path is right and the file is a raster GDAL can read",
        ) from err


class LandCover:
    """A land-cover raster read window by window onto a grid, as class indices."""

    def __init__(
        self,
        path: str | Path,
        scheme: ClassScheme,
        crs: str | None = None,
        gsd: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.scheme = scheme
        self.dataset = open_raster(path)
        self._palette = self._rgb_palette()
        self._check_bands_and_type()
        self._check_nodata()
        source_crs = self._source_crs(crs)
        target_crs = _parse_crs(crs) if crs and self.dataset.crs else source_crs
        source_transform = self._source_transform(gsd, source_crs)
        self._check_on_earth(
            Grid(CRS(source_crs), source_transform, self.dataset.width, self.dataset.height), gsd
        )
        gsd_declares_transform = source_transform != self.dataset.transform
        needs_warp = target_crs != source_crs or (gsd is not None and not gsd_declares_transform)
        self._vrt: WarpedVRT | None = None
        if needs_warp:
            transform, width, height = _target_grid(
                self.dataset, source_crs, source_transform, target_crs, gsd
            )
            self._vrt = WarpedVRT(
                self.dataset,
                src_crs=source_crs,
                src_transform=source_transform,
                crs=target_crs,
                transform=transform,
                width=width,
                height=height,
                resampling=Resampling.nearest if scheme.colours else Resampling.mode,
            )
            self.grid = Grid(CRS(target_crs), transform, width, height)
        else:
            self.grid = Grid(
                CRS(source_crs), source_transform, self.dataset.width, self.dataset.height
            )
        self._check_pixel_size()
        reader = self._vrt or self.dataset
        self._masked = self._vrt is not None or any(
            MaskFlags.all_valid not in flags for flags in reader.mask_flag_enums
        )

    def read_raw(self, window: Window) -> np.ndarray:
        """The input values in ``window`` (``(bands, h, w)``); palettes expanded to RGB."""
        reader = self._vrt or self.dataset
        with self._damaged(window):
            if self._palette is not None:
                return self._palette[:, reader.read(1, window=window)]
            return reader.read(list(range(1, self.scheme.bands + 1)), window=window)

    def read(self, window: Window) -> tuple[np.ndarray, dict[str, int]]:
        """Class indices in ``window`` (``NODATA`` where the input has none or is masked), and
        the values the class scheme does not know, with their pixel counts."""
        raw = self.read_raw(window)
        valid = None
        if self._masked:
            with self._damaged(window):
                valid = (self._vrt or self.dataset).read_masks(1, window=window) > 0
        return self.scheme.classify(raw[0] if self.scheme.bands == 1 else raw, valid)

    @contextmanager
    def _damaged(self, window: Window) -> Iterator[None]:
        """A file whose header opens but whose pixels do not (truncated, corrupt) is the
        user's to fix, not an internal error: name the file, the place and GDAL's reason."""
        try:
            yield
        except RasterioIOError as err:
            reason = err.__cause__ or err
            raise InputError(
                f"cannot read raster {self.path} at rows {int(window.row_off)}-"
                f"{int(window.row_off + window.height)}, columns {int(window.col_off)}-"
                f"{int(window.col_off + window.width)}: the file is damaged or truncated "
                f"({reason})",
                "copy or download the file again; `gdalinfo -checksum FILE` shows whether "
                "GDAL can read all of it",
            ) from err

    def close(self) -> None:
        if self._vrt is not None:
            self._vrt.close()
        self.dataset.close()

    def __enter__(self) -> LandCover:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rgb_palette(self) -> np.ndarray | None:
        """For a paletted raster read with a colour scheme: a (3, 256) lookup to RGB."""
        ds = self.dataset
        if not self.scheme.colours or ds.count != 1 or ds.colorinterp[0] != ColorInterp.palette:
            return None
        lookup = np.zeros((3, 256), np.uint8)
        for index, rgba in ds.colormap(1).items():
            if index < 256:
                lookup[:, index] = rgba[:3]
        return lookup

    def _check_bands_and_type(self) -> None:
        ds = self.dataset
        if ds.width == 0 or ds.height == 0:
            raise InputError(f"land cover {self.path} is empty ({ds.width}x{ds.height} pixels)")
        if np.dtype(ds.dtypes[0]).kind not in "iu":
            raise InputError(
                f"land cover {self.path} holds {ds.dtypes[0]} values, not class codes",
                "give an integer raster of class codes (e.g. uint8), or convert it with "
                "`gdal_translate -ot Byte`",
            )
        if ds.count < self.scheme.bands and self._palette is None:
            raise InputError(
                f"land cover {self.path} has {ds.count} band(s) but class scheme "
                f"{self.scheme.name!r} needs {self.scheme.bands}",
                "pick the scheme that matches the file with --classes",
            )
        if ds.count > 1 and self.scheme.bands == 1:
            raise InputError(
                f"land cover {self.path} has {ds.count} bands; scheme {self.scheme.name!r} "
                "reads class codes from a single band",
                "for an RGB colour-coded mask use --classes dubai or a YAML 'colours:' mapping; "
                "otherwise extract the class band first",
            )

    def _check_on_earth(self, grid: Grid, gsd: float | None) -> None:
        """Places, not just numbers: a CRS on the Earth, coordinates that fit it, a pixel size
        smaller than the region."""
        crs = grid.crs
        left, bottom, right, top = grid.bounds
        if crs.is_geographic and not (left >= -360 and right <= 360 and -90 <= bottom <= top <= 90):
            raise InputError(
                f"land cover {self.path} declares {crs.to_string()}, but its coordinates "
                f"({left:.6g} to {right:.6g}, {bottom:.6g} to {top:.6g}) are not longitudes and "
                "latitudes",
                "give the file the CRS its coordinates are in (e.g. its UTM zone) with "
                "`gdal_edit.py -a_srs EPSG:...`",
            )
        try:
            width_m, height_m = grid.pixel_size_m()
        except ProjError:
            width_m = height_m = math.nan
        if not (math.isfinite(width_m) and math.isfinite(height_m) and width_m * height_m > 0):
            raise InputError(
                f"land cover {self.path} cannot be placed on the Earth: its coordinates lie "
                f"outside what {crs.to_string()} covers",
                "give the file the CRS its coordinates are in with `gdal_edit.py -a_srs`",
            )
        extent = min(width_m * grid.width, height_m * grid.height)
        if gsd is not None and gsd > extent:
            raise InputError(
                f"--gsd {gsd:g} m is larger than the land cover itself ({extent:.4g} m across)",
                "give a pixel size smaller than the region",
            )

    def _check_pixel_size(self) -> None:
        """Events draw buildings, roads and clearings metres wide: pixels of kilometres (a
        transform in degrees read as 1-degree pixels) would ask them for billions of parcels."""
        largest = max(self.grid.pixel_size_m())
        if largest > MAX_PIXEL_M:
            raise InputError(
                f"land cover {self.path} has pixels of {largest:.6g} m on the ground; geochange "
                f"draws changes metres wide and takes pixels of at most {MAX_PIXEL_M:g} m",
                "check its CRS and transform (pixel sizes in degrees read as metres, or the "
                "reverse), or resample it with --gsd",
            )

    def _check_nodata(self) -> None:
        """GDAL masks every pixel equal to the file's no-data value; when the scheme reads that
        value as a class, the class would silently vanish (nodata 0 with oem-index: bareland)."""
        nodata = self.dataset.nodata
        if nodata is None or not float(nodata).is_integer() or self._palette is not None:
            return
        value = int(nodata)
        if self.scheme.colours is not None:
            # the mask is band 1's: every colour whose red is the no-data value is masked
            hit = {c for rgb, c in self.scheme.colours.items() if rgb[0] == value} - {NODATA}
            what = f"colours with red {value}"
        else:
            hit = {(self.scheme.codes or {}).get(value, NODATA)} - {NODATA}
            what = f"value {value}"
        if hit:
            names = " and ".join(CLASS_NAMES[c] for c in sorted(hit))
            raise InputError(
                f"land cover {self.path} marks {value} as no data, but class scheme "
                f"{self.scheme.name!r} reads {what} as {names}: every such pixel would be dropped",
                f"if {value} is {names} in this file, remove the no-data tag "
                f"(`gdal_edit.py -unsetnodata {self.path}`); if it is no data, give a YAML class "
                f"scheme that maps {value} to nodata",
            )

    def _source_crs(self, crs: str | None) -> CRS:
        if self.dataset.crs:
            return _map_crs(CRS(self.dataset.crs), f"the CRS of land cover {self.path}")
        points = self.dataset.gcps[0]
        if points:
            raise InputError(
                f"land cover {self.path} is placed by {len(points)} ground control points, "
                "not by a CRS and a transform",
                f"warp it onto a grid first, e.g. `gdalwarp -t_srs EPSG:32633 {self.path} "
                "fixed.tif`",
            )
        if crs is None:
            raise InputError(
                f"land cover {self.path} has no coordinate reference system",
                "say which CRS it is in with --crs (e.g. --crs EPSG:32633), or fix the file with "
                "`gdal_edit.py -a_srs`",
            )
        return _parse_crs(crs)

    def _source_transform(self, gsd: float | None, crs: CRS) -> Affine:
        transform = self.dataset.transform
        if self.dataset.crs or transform != Affine.identity():
            return transform
        if gsd is None:
            raise InputError(
                f"land cover {self.path} has no georeferencing (no transform)",
                "give its pixel size in metres with --gsd (with --crs); it is then placed "
                "north-up with its top-left corner at (0, 0)",
            )
        if not crs.is_projected:
            raise InputError(
                f"land cover {self.path} has no georeferencing, and {crs.to_string()} is not "
                "a projected CRS to place it in by its pixel size",
                "give a projected --crs (e.g. the UTM zone of the place), or georeference the "
                "file first (`gdal_translate -a_ullr`)",
            )
        size = gsd / crs.axis_info[0].unit_conversion_factor  # metres in the CRS's unit
        return Affine(size, 0, 0, 0, -size, 0)


def _parse_crs(crs: str) -> CRS:
    try:
        parsed = CRS.from_user_input(crs)
    except CRSError as err:
        raise InputError(
            f"--crs {crs!r} is not a CRS: {err}",
            "give an EPSG code (e.g. --crs EPSG:32633), a WKT string or a PROJ string",
        ) from err
    return _map_crs(parsed, f"--crs {_short(crs)}")


def _map_crs(crs: CRS, what: str) -> CRS:
    """A CRS that puts pixels on a map of the Earth: projected or geographic, 2D."""
    if crs.is_projected or crs.is_geographic:
        return crs
    kinds = {
        "Geocentric CRS": "geocentric (3D)",
        "Engineering CRS": "a local engineering CRS (a site grid not tied to the Earth)",
    }
    kind = kinds.get(crs.type_name, f"a {crs.type_name}")
    raise InputError(
        f"{what} is {kind}, not a map CRS geochange can place pixels in",
        "use a projected CRS (e.g. the UTM zone, EPSG:326xx) or a geographic one (EPSG:4326)",
    )


def _short(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _target_grid(
    dataset: rasterio.io.DatasetReader,
    source_crs: CRS,
    source_transform: Affine,
    target_crs: CRS,
    gsd: float | None,
) -> tuple[Affine, int, int]:
    width, height = dataset.width, dataset.height
    left, top = source_transform @ (0, 0)
    right, bottom = source_transform @ (width, height)
    bounds = (min(left, right), min(top, bottom), max(left, right), max(top, bottom))
    resolution = None
    if gsd is not None:
        centre = Transformer.from_crs(source_crs, target_crs, always_xy=True).transform(
            (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
        )
        resolution = gsd_in_crs_units(gsd, target_crs, centre)
    transform, out_width, out_height = calculate_default_transform(
        source_crs, target_crs, width, height, *bounds, resolution=resolution
    )
    return transform, out_width, out_height


def gsd_in_crs_units(gsd: float, crs: CRS, centre: tuple[float, float]) -> tuple[float, float]:
    """The pixel size (x, y) in ``crs``'s units of a pixel ``gsd`` metres on the ground.

    In a projected CRS whose scale is near true (within 1 %: UTM, state planes) the CRS's own
    linear unit converts it exactly (EPSG:2263 counts US feet); elsewhere, in Web Mercator away
    from the equator or a geographic CRS, the pixel is sized to measure ``gsd`` metres at
    ``centre``, as ``Grid.pixel_size_m`` measures it (degrees at the region's latitude).
    """
    step = 1e-5 if crs.is_geographic else 1.0
    x, y = centre
    probe = Grid(crs, Affine(step, 0, x - step, 0, -step, y + step), 2, 2)
    width_m, height_m = probe.pixel_size_m()
    if not (math.isfinite(width_m) and math.isfinite(height_m) and width_m > 0 and height_m > 0):
        raise InputError(
            f"the region's centre has no place on the ground in CRS {crs.to_string()}",
            "choose a CRS that covers the region",
        )
    per_unit = (width_m / step, height_m / step)
    if crs.is_projected:
        unit = crs.axis_info[0].unit_conversion_factor
        if all(abs(m / unit - 1) < 0.01 for m in per_unit):
            return gsd / unit, gsd / unit
    return gsd / per_unit[0], gsd / per_unit[1]


class ImageOnGrid:
    """A real RGB image read onto the grid (bilinear warp), as the t1 image of ``--image``."""

    def __init__(self, path: str | Path, grid: Grid) -> None:
        self.path = Path(path)
        self.dataset = open_raster(path)
        if self.dataset.count < 3 or self.dataset.dtypes[0] != "uint8":
            self.dataset.close()
            raise InputError(
                f"--image {path} must be an RGB image of uint8 bands (it has "
                f"{self.dataset.count} band(s) of {self.dataset.dtypes[0]})",
                "convert it, e.g. gdal_translate -ot Byte -scale -b 1 -b 2 -b 3 IN OUT",
            )
        if self.dataset.crs is None:
            self.dataset.close()
            raise InputError(f"--image {path} has no CRS", "georeference it onto REGION first")
        left, bottom, right, top = transform_bounds(
            self.dataset.crs, grid.crs, *self.dataset.bounds, densify_pts=21
        )
        g_left, g_bottom, g_right, g_top = grid.bounds
        if left >= g_right or right <= g_left or bottom >= g_top or top <= g_bottom:
            self.dataset.close()
            raise InputError(
                f"--image {path} does not overlap the land cover",
                "check that the image shows the same place as REGION and that its CRS is right",
            )
        self.vrt = WarpedVRT(
            self.dataset,
            crs=grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=Resampling.bilinear,
        )

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """RGB (3, h, w) uint8 and its validity (h, w) bool."""
        rgb = self.vrt.read([1, 2, 3], window=window)
        return rgb, self.vrt.read_masks(1, window=window) > 0

    def close(self) -> None:
        self.vrt.close()
        self.dataset.close()
