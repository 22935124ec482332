"""Writes the official STAC extension schemas that ``tests/test_stac.py`` validates against.

pystac ships the core STAC schemas but fetches extension schemas from the web when it validates.
The test machines reach PyPI only, so the schemas come from there: the source distributions of
pystac's own extension packages hold its test cassettes, recorded HTTP responses of the schema
URLs. This script downloads those sdists with pip, copies each schema body byte for byte into
``NAME-VERSION.json`` beside it, and records where each came from in ``sources.json``.

Run ``.venv/bin/python tests/stac_schemas/extract.py`` after changing an extension version.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).parent
SCHEMAS = {
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json": (
        "pystac-ext-projection==2.0.1",
        "tests/cassettes/test_projection/test_validate_proj.yaml",
    ),
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json": (
        "pystac-ext-raster==1.1.1",
        "tests/cassettes/test_raster/test_validate_raster.yaml",
    ),
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json": (
        "pystac-ext-classification==2.0.1",
        "tests/cassettes/test_classification/test_validate_classification.yaml",
    ),
    "https://stac-extensions.github.io/processing/v1.0.0/schema.json": (
        "pystac-ext-raster==1.1.1",
        "tests/cassettes/test_raster/test_validate_raster.yaml",
    ),
}
"""Schema URL → (sdist whose test cassette recorded it, cassette path inside the sdist)."""


def recorded_body(sdist: Path, cassette: str, uri: str) -> str:
    with tarfile.open(sdist) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith(cassette))
        recording = yaml.safe_load(archive.extractfile(member).read())
    for interaction in recording["interactions"]:
        response = interaction["response"]
        if interaction["request"]["uri"] == uri and response["status"]["code"] == 200:
            return response["body"]["string"]
    raise LookupError(f"{cassette} in {sdist.name} holds no 200 response for {uri}")


def main() -> None:
    sources = {}
    with tempfile.TemporaryDirectory() as download:
        packages = sorted({package for package, _ in SCHEMAS.values()})
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
            + ["-d", download, *packages],
            check=True,
        )
        for uri, (package, cassette) in SCHEMAS.items():
            name = package.split("==")[0].replace("-", "_")
            sdist = next(Path(download).glob(f"{name}-*.tar.gz"))
            body = recorded_body(sdist, cassette, uri)
            json.loads(body)  # a whole schema, not a truncated recording
            extension, version = uri.split("/")[-3:-1]
            file = f"{extension}-{version}.json"
            (HERE / file).write_text(body)
            sources[uri] = {
                "file": file,
                "sdist": sdist.name,
                "cassette": cassette,
                "sha256": hashlib.sha256(body.encode()).hexdigest(),
            }
    (HERE / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")


if __name__ == "__main__":
    main()
