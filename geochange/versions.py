"""The versions a run's record names: geochange and the libraries that shape its outputs."""

from __future__ import annotations

import platform

import numpy as np

from geochange import __version__


def versions() -> dict[str, str]:
    """geochange, Python, numpy and the GIS stack (GDAL through rasterio)."""
    import geopandas as gpd
    import pyproj
    import rasterio
    import shapely

    return {
        "geochange": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "rasterio": rasterio.__version__,
        "gdal": rasterio.__gdal_version__,
        "geopandas": gpd.__version__,
        "shapely": shapely.__version__,
        "pyproj": pyproj.__version__,
    }
