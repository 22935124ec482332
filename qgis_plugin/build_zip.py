"""Writes build/geochange_qgis-VERSION.zip, installable with QGIS's Plugins > Install from ZIP.

The plugin folder sits at the zip root, as QGIS expects; tests and caches stay out.
Run from anywhere: ``python qgis_plugin/build_zip.py [--output DIR]`` (stdlib only).
"""

from __future__ import annotations

import argparse
import configparser
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "geochange_qgis"
EXCLUDED_PARTS = {"__pycache__", "tests", ".pytest_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}


def version() -> str:
    metadata = configparser.ConfigParser()
    metadata.read(PLUGIN / "metadata.txt", encoding="utf-8")
    return metadata["general"]["version"]


def build(output: Path) -> Path:
    """The zip's path; files are stored in sorted order so the zip is reproducible."""
    output.mkdir(parents=True, exist_ok=True)
    target = output / f"geochange_qgis-{version()}.zip"
    files = sorted(
        path
        for path in PLUGIN.rglob("*")
        if path.is_file()
        and not EXCLUDED_PARTS & set(path.relative_to(PLUGIN).parts)
        and path.suffix not in EXCLUDED_SUFFIXES
    )
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            name = (Path(PLUGIN.name) / path.relative_to(PLUGIN)).as_posix()
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE.parent / "build")
    print(build(parser.parse_args().output))


if __name__ == "__main__":
    main()
