"""geochange: synthetic, georeferenced change-detection data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from geochange.model import SemanticLDM

__version__ = "0.1.0"


def load_model(path: str | Path) -> SemanticLDM:
    """Load a model folder (see ``geochange.model``); torch is imported only when called, so
    commands that need no model start fast."""
    from geochange.model import load_model as load

    return load(path)
