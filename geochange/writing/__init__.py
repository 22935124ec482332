"""Writers of a run's outputs (COGs, polygons, STAC, styles, preview) and the folder rules."""

from __future__ import annotations

from pathlib import Path


def timestamps_in(folder: str | Path) -> list[str]:
    """``t1``, ``t2``, ... as far as a run folder holds their land-cover maps."""
    names: list[str] = []
    while (Path(folder) / f"t{len(names) + 1}_landcover.tif").is_file():
        names.append(f"t{len(names) + 1}")
    return names
