"""The walls of the code, read from its imports: what may import what.

The data flow (grid → events → plan → run passes → writing; model and sampling below them;
front ends on top) is kept by contracts on the import graph, read statically from every
``import`` in ``geochange/`` (also those inside functions), and by importing the lean core in a
Python where the GIS packages cannot be imported, as on the GPU machine.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "geochange"
GIS = ("rasterio", "pyproj", "pyogrio", "geopandas", "shapely", "rioxarray", "xarray", "pystac")
LEAN_CORE = (
    "geochange.model",
    "geochange.sampling",
    "geochange.events",
    "geochange.painting",
    "geochange.pairs",
    "geochange.training.loops",
    "geochange.training.packed",
    "geochange.training.bank",
    "geochange.training.train",
    "geochange.training.__main__",
)
"""What the GPU machine runs: the model, the sampler, the events, the painter and pairs from
plain image and mask arrays, training from a pack."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it, as absolute dotted names."""
    found = set()
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else None
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = (package or module_name(path)).split(".")
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


GRAPH = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


FRONT_ENDS = ("geochange.cli", "geochange.__main__", "geochange.training.__main__")
"""Command lines: on top of everything, so no contract below binds them."""


CONTRACTS = [
    # (who, what they must not import, why)
    (
        ("geochange.events",),
        ("torch", "diffusers", "geochange.model", "geochange.sampling", "geochange.training"),
        "events edit class rasters; they know nothing of images or models",
    ),
    (
        ("geochange.model", "geochange.sampling"),
        (
            *GIS,
            "geochange.cli",
            "geochange.writing",
            "geochange.run",
            "geochange.inputs",
            "geochange.grid",
            "geochange.simulation",
            "geochange.synth",
            "geochange.dataset",
        ),
        "a model and a sampler take tensors, not files",
    ),
    (
        ("geochange.training",),
        (
            "geochange.cli",
            "geochange.run",
            "geochange.simulation",
            "geochange.synth",
            "geochange.painting",
            "geochange.dataset",
            "geochange.writing.geotiff",
            "geochange.writing.polygons",
            "geochange.writing.stac",
        ),
        "training reads crops; it does not run the pipelines",
    ),
    (
        ("geochange.writing",),
        (
            "torch",
            "geochange.model",
            "geochange.sampling",
            "geochange.run",
            "geochange.cli",
            "geochange.simulation",
            "geochange.synth",
            "geochange.dataset",
        ),
        "writers take arrays and write files",
    ),
    (
        ("geochange.run", "geochange.inputs"),
        (
            "torch",
            "geochange.model",
            "geochange.sampling",
            "geochange.painting",
            "geochange.cli",
            "geochange.simulation",
            "geochange.synth",
            "geochange.dataset",
        ),
        "the run's passes work on land cover; the image pass is handed to it",
    ),
    (
        ("geochange.simulation", "geochange.synth", "geochange.dataset"),
        ("geochange.cli",),
        "the pipelines are a library; the CLI is a front end on top",
    ),
    (
        ("geochange.simulation",),
        ("geochange.synth", "geochange.dataset", "geochange.painting"),
        "pipelines sit side by side",
    ),
    (
        ("geochange.synth",),
        ("geochange.simulation", "geochange.dataset"),
        "pipelines sit side by side",
    ),
    (
        ("geochange.dataset",),
        ("geochange.simulation", "geochange.synth", "geochange.run"),
        "pipelines sit side by side",
    ),
]


@pytest.mark.parametrize("who, forbidden, why", CONTRACTS, ids=[c[2] for c in CONTRACTS])
def test_import_contract(who: tuple[str, ...], forbidden: tuple[str, ...], why: str):
    broken = sorted(
        f"{module} imports {name}"
        for module, names in GRAPH.items()
        if within(module, who) and not within(module, FRONT_ENDS)
        for name in names
        if within(name, forbidden)
    )
    assert not broken, f"{why}:\n" + "\n".join(broken)


def test_only_the_cli_imports_the_cli():
    broken = sorted(
        f"{module} imports {name}"
        for module, names in GRAPH.items()
        if not within(module, FRONT_ENDS)
        for name in names
        if within(name, ("geochange.cli",))
    )
    assert not broken, "\n".join(broken)


def test_the_graph_is_read():
    """The contracts above would pass on an empty graph: check it holds known imports."""
    assert "geochange.run" in GRAPH["geochange.simulation"]
    assert "torch" in GRAPH["geochange.model.semantic_ldm"]
    assert within("geochange.events.base", ("geochange.events",))


def test_the_qgis_plugin_imports_neither_geochange_nor_its_stack():
    """The plugin runs the CLI in a subprocess; QGIS's Python has none of these."""
    plugin = {p: imports_of(p) for p in (ROOT / "qgis_plugin").rglob("*.py")}
    assert plugin, "no plugin sources found"
    broken = sorted(
        f"{path.name} imports {name}"
        for path, names in plugin.items()
        for name in names
        if within(name, ("geochange", "torch", "diffusers", "rasterio", "geopandas"))
    )
    assert not broken, "\n".join(broken)


BLOCK_GIS = f"""
import importlib, sys
for name in {GIS!r}:
    sys.modules[name] = None  # `import name` raises ImportError, as where it is not installed
failed = []
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except ImportError as error:
        failed.append(f"{{module}}: {{error}}")
print("\\n".join(failed))
"""


def lean_import(*modules: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_GIS, *modules], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_lean_core_imports_without_any_gis_package():
    assert lean_import(*LEAN_CORE) == ""


def test_blocking_the_gis_packages_is_felt():
    """The check above is not vacuous: the run's passes do need rasterio."""
    assert "geochange.run" in lean_import("geochange.run")


PUBLIC = {
    "open_inputs": 1,
    "simulate": 2,
    "synthesize": 2,
    "make_dataset": 2,
    "train": 3,
    "evaluate": 3,
    "write_example": 1,
}
"""The function behind each command and how many arguments it takes by position."""


@pytest.mark.parametrize("name, positional", PUBLIC.items())
def test_each_command_has_a_public_function_taking_options_by_keyword(name: str, positional: int):
    import inspect

    import geochange

    parameters = list(inspect.signature(getattr(geochange, name)).parameters.values())
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters[:positional])
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in parameters[positional:])


def test_import_geochange_loads_neither_torch_nor_rasterio():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import geochange, sys; print(sorted({'torch', 'rasterio'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


PAIR_WITHOUT_GIS = """
import numpy as np, torch
from geochange.acquisition import PRESETS
from geochange.events import parse_events
from geochange.model import SemanticLDM, preset
from geochange.painting import Painter, SamplingOptions
from geochange.pairs import PairJob, PairMaker, make_pair

torch.manual_seed(0)
options = SamplingOptions(steps=2, sampler="ddim", tile_size=64, overlap=0, batch_size=1, threads=1)
painter = Painter(SemanticLDM(preset("tiny")), options, 0, torch.device("cpu"))
t1 = np.full((64, 64), 4, np.uint8)  # tree
t1[:, :16] = 0  # bare land beside it, where clearings start
rgb = np.random.default_rng(0).integers(0, 256, (3, 64, 64), dtype=np.uint8)
job = PairJob(0, 0, 0, 0, rgb, np.ones((64, 64), bool), t1, (0.5, 0.5))
maker = PairMaker(tuple(parse_events("deforestation:fraction=0.5")), 0, painter, PRESETS["none"])
pair = make_pair(maker, job)
print(pair.image.shape, pair.image.dtype, int((pair.t2 != t1).sum()))
"""


def test_a_pair_is_made_from_arrays_without_any_gis_package():
    """Not only importable: the events and the painter make a pair where only the model's stack
    is installed (as on the GPU machine)."""
    code = BLOCK_GIS.replace("for module in sys.argv[1:]:", "for module in ():") + PAIR_WITHOUT_GIS
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    shape, rest = done.stdout.strip().splitlines()[-1].split(")")
    dtype, changed = rest.split()
    assert shape == "(3, 64, 64" and dtype == "uint8" and int(changed) > 0, done.stdout


def _random_pack(path: Path, crops: int) -> Path:
    """A pack of ``crops`` random 64² crops and masks."""
    from geochange.training.packed import IMAGE_FILTER, PACK_FORMAT, PACK_VERSION, encode_images

    rng = np.random.default_rng(0)
    metadata = {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "crop_px": 64,
        "image_filter": IMAGE_FILTER,
        "gsd_m": 0.5,
    }
    np.savez_compressed(
        path,
        images=encode_images(rng.integers(0, 256, (crops, 3, 64, 64), dtype=np.uint8)),
        masks=rng.integers(0, 8, (crops, 64, 64), dtype=np.uint8),
        source=np.zeros(crops, np.uint16),
        metadata=json.dumps(metadata),
    )
    return path


def _run_benchmark_without_gis(script: str, argv: list[str]) -> subprocess.CompletedProcess:
    """``python benchmarks/SCRIPT ARGV`` with every GIS package blocked."""
    run = f"import runpy, sys; sys.argv = {[script, *argv]!r}; "
    run += "sys.path.insert(0, 'benchmarks')  # as `python benchmarks/SCRIPT` does\n"
    run += f"runpy.run_path('benchmarks/{script}', run_name='__main__')"
    code = BLOCK_GIS.replace("for module in sys.argv[1:]:", "for module in ():") + run
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_the_gpu_pair_benchmark_runs_without_any_gis_package(model_dir: Path, tmp_path: Path):
    """``benchmarks/pairs.py``, the dataset benchmark for the GPU machine, reads a pack and
    makes pairs with the GIS packages blocked."""
    pack = _random_pack(tmp_path / "pack.npz", 3)
    argv = ["--pack", str(pack), "--pairs", "4", "--steps", "2"]
    argv += ["--device", "cpu", "--model", str(model_dir), "--batch-size", "2", "--compare", "2"]
    done = _run_benchmark_without_gis("pairs.py", argv)
    assert "4 pairs of 64² on cpu, 1 thread, 2 steps, this process, batches of 2:" in done.stdout
    assert " pairs/s, " in done.stdout
    differ = re.search(r"differ from one pair at a time: (\d+) of (\d+)", done.stdout)
    assert differ and int(differ[2]) == 2 * 3 * 64 * 64, done.stdout
    assert int(differ[1]) <= 0.01 * int(differ[2]), done.stdout


def test_the_mask_influence_benchmark_runs_without_any_gis_package(model_dir: Path, tmp_path: Path):
    """``benchmarks/mask_influence.py`` checks a model trained on the GPU machine there."""
    pack = _random_pack(tmp_path / "pack.npz", 4)
    done = _run_benchmark_without_gis(
        "mask_influence.py", [str(model_dir), "--pack", str(pack), "--crops", "3"]
    )
    row = done.stdout.strip().splitlines()[-1]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[0] == str(model_dir) and len(cells) == 2 + 5, done.stdout
    for cell in cells[2:]:
        own, other = re.fullmatch(r"([\d.]+) \(([\d.]+)\)", cell).groups()
        assert float(own) > 0 and float(other) > 0


def test_the_cli_lowers_openmp_spinning_before_torch_loads():
    """Set after torch had loaded, the spin count would do nothing (OpenMP reads it once)."""
    code = (
        "import os, sys; os.environ.pop('GOMP_SPINCOUNT', None); "
        "os.environ.pop('OMP_WAIT_POLICY', None); import geochange.cli; "
        "print(os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.split() == ["1000", "False"], done.stdout + done.stderr
