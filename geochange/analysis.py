"""A finished run as an xarray Dataset, and its change statistics, for analysts in Jupyter.

The Dataset is lazy: every variable is a dask array chunked like the COG's internal blocks, so
opening a city-sized run reads nothing until a value is asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rioxarray
import xarray as xr

from geochange.classes import CLASS_NAMES, PALETTE
from geochange.errors import InputError
from geochange.grid import Grid
from geochange.writing import timestamps_in

LANDCOVER_CODES = list(range(1, len(CLASS_NAMES) + 1))
"""OpenEarthMap codes in the land-cover GeoTIFFs (0 is no data)."""


def _open(path: Path) -> xr.DataArray:
    """A lazy DataArray chunked like the file's internal blocks."""
    with rasterio.open(path) as src:
        rows, cols = src.block_shapes[0]
    return rioxarray.open_rasterio(path, chunks={"band": -1, "y": rows, "x": cols}, masked=False)


def open_result(folder: str | Path) -> xr.Dataset:
    """The run in ``folder`` (written by ``simulate`` or ``synth``) as an ``xarray.Dataset``.

    Variables: ``landcover(time, y, x)`` (OpenEarthMap codes, CF ``flag_values`` and
    ``flag_meanings``, the palette in ``colormap``), ``change(y, x)`` (0 unchanged, 1 changed,
    255 no data) and, for ``synth`` runs, ``image(time, band, y, x)`` (RGB uint8). ``time`` is
    labelled t1, t2, ...; the CRS is on ``ds.rio``; ``run.json`` is in the attributes.
    """
    folder = Path(folder)
    run_file = folder / "run.json"
    if not run_file.is_file():
        raise InputError(
            f"{folder} is not a finished geochange run (no run.json)",
            "pass the output folder of `geochange simulate` or `geochange synth`",
        )
    stamps = timestamps_in(folder)
    time = xr.DataArray(stamps, dims="time", name="time")
    landcover = xr.concat(
        [_open(folder / f"{t}_landcover.tif").squeeze("band", drop=True) for t in stamps], time
    )
    landcover.attrs = {
        "long_name": "land cover (OpenEarthMap codes)",
        "flag_values": LANDCOVER_CODES,
        "flag_meanings": " ".join(name.replace(" ", "_") for name in CLASS_NAMES),
        "colormap": {code: list(rgb) for code, rgb in zip(LANDCOVER_CODES, PALETTE, strict=True)},
        "_FillValue": 0,
    }
    change = _open(folder / "change.tif").squeeze("band", drop=True)
    change.attrs = {
        "long_name": "change between t1 and t2",
        "flag_values": [0, 1],
        "flag_meanings": "unchanged changed",
        "_FillValue": 255,
    }
    variables = {"landcover": landcover, "change": change}
    if all((folder / f"{t}.tif").is_file() for t in stamps):
        image = xr.concat([_open(folder / f"{t}.tif") for t in stamps], time)
        image.attrs = {"long_name": "painted image (RGB)"}
        variables["image"] = image
    run = json.loads(run_file.read_text())
    dataset = xr.Dataset(variables, attrs={"run": json.dumps(run), "source": str(folder)})
    return dataset.rio.write_crs(landcover.rio.crs)


def change_statistics(result: xr.Dataset | str | Path) -> dict[str, pd.DataFrame]:
    """Area tables of a run (from ``open_result`` or its folder):

    - ``by_event``: change polygons per event, with their area in m² (``changes.gpkg``);
    - ``by_transition``: changed area in m² per (from class, to class) between t1 and t2;
    - ``transition_matrix``: pixels per (t1 class, t2 class), unchanged land on the diagonal.
    """
    dataset = result if isinstance(result, xr.Dataset) else open_result(result)
    folder = Path(dataset.attrs["source"])
    t1 = dataset["landcover"].isel(time=0).values
    t2 = dataset["landcover"].isel(time=1).values
    valid = (t1 > 0) & (t2 > 0)
    size = len(CLASS_NAMES) + 1
    counts = np.bincount(t1[valid].astype(np.int64) * size + t2[valid], minlength=size * size)
    matrix = pd.DataFrame(
        counts.reshape(size, size)[1:, 1:],
        index=pd.Index(CLASS_NAMES, name="t1"),
        columns=pd.Index(CLASS_NAMES, name="t2"),
    )
    transform = dataset.rio.transform()
    grid = Grid(dataset.rio.crs, transform, dataset.rio.width, dataset.rio.height)
    pixel_m2 = float(np.prod(grid.pixel_size_m()))
    stacked = matrix.stack()
    moved = stacked[[a != b for a, b in stacked.index] & (stacked.to_numpy() > 0)].rename("pixels")
    by_transition = moved.to_frame()
    by_transition["area_m2"] = by_transition["pixels"] * pixel_m2
    polygons = gpd.read_file(folder / "changes.gpkg", layer="changes")
    by_event = (
        polygons.groupby("event")["area_m2"].agg(polygons="count", area_m2="sum").reset_index()
    )
    return {
        "by_event": by_event,
        "by_transition": by_transition.reset_index(),
        "transition_matrix": matrix,
    }
