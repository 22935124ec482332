"""Shared fixtures: the real data in ../shared/data and small generated rasters."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GEOCHANGE_SHARED_DATA", REPO.parent / "shared" / "data"))


class NetworkUsed(RuntimeError):
    """A test connected beyond this machine: geochange promises no network access."""


@pytest.fixture(autouse=True, scope="session")
def no_network() -> Iterator[None]:
    """Fail any connection from the test process to an address other than loopback (Dask's
    local clusters talk over 127.0.0.1). Connections that GDAL's own libcurl would make are
    not seen here; inputs that would need them are refused before GDAL opens them."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("connect", "connect_ex"):
            patch.setattr(socket.socket, name, _local_only(getattr(socket.socket, name)))
        yield


def _local_only(connect: Callable) -> Callable:
    def guarded(sock: socket.socket, address: object) -> object:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])  # type: ignore[index]
            try:
                local = ipaddress.ip_address(host).is_loopback
            except ValueError:
                local = host == "localhost"
            if not local:
                raise NetworkUsed(f"a test connected to {address}")
        return connect(sock, address)

    return guarded


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder; tests that need it skip with a reason where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real data not found at {SHARED_DATA}; set GEOCHANGE_SHARED_DATA to its folder"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised model in a folder: fast, so its pixels are noise-like, and
    tests check geometry, masks and determinism with it, never how images look."""
    import torch

    from geochange.model import SemanticLDM, preset

    torch.manual_seed(0)
    return SemanticLDM(preset("tiny")).save_pretrained(tmp_path_factory.mktemp("m") / "tiny")


@pytest.fixture
def one_thread():
    """Torch on one thread: the tiny models gain nothing from threads, and on a busy shared
    machine a second intra-op thread spinning for a core makes each step 10-50x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def crop_openearthmap(
    shared_data: Path, tile: str, window: Window, folder: Path
) -> tuple[Path, Path]:
    """A window of a real OpenEarthMap tile: its label and image as GeoTIFFs in ``folder``."""
    paths = []
    for kind in ("labels", "images"):
        with rasterio.open(shared_data / "openearthmap" / kind / f"{tile}.tif") as src:
            data = src.read(window=window)
            profile = {**src.profile, "width": int(window.width), "height": int(window.height)}
            profile["transform"] = src.window_transform(window)
        paths.append(folder / f"{kind}.tif")
        with rasterio.open(paths[-1], "w", **profile) as dst:
            dst.write(data)
    return paths[0], paths[1]


def write_raster(
    path: Path,
    data: np.ndarray,
    crs: str | None = "EPSG:32633",
    transform: Affine | None = None,
    nodata: float | None = None,
) -> Path:
    """A small GeoTIFF for tests (``data`` is (h, w) or (bands, h, w))."""
    bands = data if data.ndim == 3 else data[None]
    profile = {
        "driver": "GTiff",
        "width": bands.shape[2],
        "height": bands.shape[1],
        "count": bands.shape[0],
        "dtype": bands.dtype,
        "transform": transform or Affine(0.5, 0, 500_000, 0, -0.5, 5_550_000),
    }
    if crs:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


@pytest.fixture(scope="session")
def town_codes() -> np.ndarray:
    """A 1024² example town as on-disk codes (1-8)."""
    from geochange.example import example_landcover

    return example_landcover(1024, seed=3) + 1


@pytest.fixture
def town_tif(tmp_path: Path, town_codes: np.ndarray) -> Path:
    return write_raster(tmp_path / "town.tif", town_codes.astype(np.uint8))
