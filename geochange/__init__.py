"""geochange: synthetic, georeferenced change-detection data."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geochange.dataset import make_dataset as make_dataset
    from geochange.evaluation.quality import evaluate as evaluate
    from geochange.example import write_example as write_example
    from geochange.inputs import open_inputs as open_inputs
    from geochange.model import SemanticLDM
    from geochange.simulation import simulate as simulate
    from geochange.synth import synthesize as synthesize
    from geochange.training.train import train as train

__version__ = "0.1.0"

_LAZY = {
    "open_inputs": "geochange.inputs",
    "simulate": "geochange.simulation",
    "synthesize": "geochange.synth",
    "make_dataset": "geochange.dataset",
    "train": "geochange.training.train",
    "evaluate": "geochange.evaluation.quality",
    "write_example": "geochange.example",
}
"""The function behind each command, imported on first use: ``import geochange`` stays fast
and loads neither torch nor rasterio, yet ``geochange.synthesize(geochange.open_inputs(...),
"out")`` works. Each takes its options as keywords, named as the command's flags."""
_SUBMODULES = ("simulation", "synth", "dataset", "example", "analysis")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"geochange.{name}")
    raise AttributeError(f"module 'geochange' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, *_SUBMODULES])


def load_model(path: str | Path) -> SemanticLDM:
    """Load a model folder (see ``geochange.model``); torch is imported only when called, so
    commands that need no model start fast."""
    from geochange.model import load_model as load

    return load(path)


def open_result(folder: str | Path) -> Any:
    """A finished run as a lazy ``xarray.Dataset`` (see ``geochange.analysis``)."""
    from geochange.analysis import open_result as open_

    return open_(folder)


def change_statistics(result: Any) -> Any:
    """Area tables of a run: by event, by transition, and the transition matrix."""
    from geochange.analysis import change_statistics as statistics

    return statistics(result)


def plot_change(result: Any, **options: Any) -> Any:
    """Before | after images and land cover with the change outlined and a class legend;
    options ``before``, ``after``, ``axes``, ``max_edge`` (see ``geochange.plotting``).
    matplotlib is imported only when called."""
    from geochange.plotting import plot_change as plot

    return plot(result, **options)


def plot_statistics(result: Any, **options: Any) -> Any:
    """The change statistics of a run as bar charts; option ``axes`` (see
    ``geochange.plotting``)."""
    from geochange.plotting import plot_statistics as plot

    return plot(result, **options)
