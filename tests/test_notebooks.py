"""The notebooks in ``notebooks/`` run top to bottom (so the documentation cannot rot), print what
their runs measured, and are stored without outputs.

Each runs with nbclient in a temporary working directory, on a kernel that is this interpreter
(a kernelspec written for ``sys.executable``), with the shipped default model.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from geochange.analysis import change_statistics

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT_S = 300


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``python3`` kernelspec that launches this interpreter, found first on JUPYTER_PATH (a
    user's own ``python3`` kernel may point at another Python without geochange)."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel_json = {"argv": argv, "display_name": "Python 3", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel_json))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torch in the kernel on one thread, as in tests
    return "python3"


def execute(name: str, workdir: Path, kernel: str) -> nbformat.NotebookNode:
    """Run ``notebooks/NAME`` in ``workdir``; a failing cell raises with its traceback."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name=kernel,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    return notebook


def text(cell: nbformat.NotebookNode) -> str:
    """What a code cell printed or displayed as plain text."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream" and output["name"] == "stdout":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


def figures(notebook: nbformat.NotebookNode) -> int:
    """Number of PNG images the notebook displayed."""
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def test_quickstart_runs_and_reports_the_areas_of_its_run(tmp_path: Path, kernel: str):
    notebook = execute("01_quickstart.ipynb", tmp_path, kernel)
    run = tmp_path / "build" / "quickstart" / "run"
    summary = json.loads((run / "run.json").read_text())
    assert summary["model"]["preset"] == "cpu"  # the shipped default model painted it
    assert {"t1.tif", "t2.tif", "change.tif"} <= {p.name for p in run.iterdir()}
    printed = text(notebook.cells[-1])
    changes = summary["changes"]
    for event, area in changes["area_m2_by_event"].items():
        assert f"{event}: {area:,.1f} m² ({area / 1e4:.3f} ha)" in printed
        assert f"{changes['pixels_by_event'][event]:,} px" in printed
    assert figures(notebook) == 2  # the run, and its central window


def test_change_analysis_compares_the_areas_of_two_seeds(tmp_path: Path, kernel: str):
    notebook = execute("02_change_analysis.ipynb", tmp_path, kernel)
    areas = {
        seed: change_statistics(tmp_path / "build" / "analysis" / f"seed{seed}")[
            "by_event"
        ].set_index("event")["area_m2"]
        for seed in (1, 2)
    }
    rows = {}
    for line in text(notebook.cells[-1]).splitlines():
        event, *numbers = line.split()
        if len(numbers) == 3 and not event.startswith("seed"):
            rows[event] = [float(n) for n in numbers]
    assert set(rows) == set(areas[1].index) | set(areas[2].index)
    for event, (seed1, seed2, difference) in rows.items():
        assert seed1 == pytest.approx(areas[1].get(event, 0.0), abs=0.05)
        assert seed2 == pytest.approx(areas[2].get(event, 0.0), abs=0.05)
        assert difference == pytest.approx(seed2 - seed1, abs=0.15)
    assert areas[1].to_dict() != areas[2].to_dict()  # the seeds placed the events differently
    assert figures(notebook) == 4  # statistics, the run, the seeds' areas, the seeds side by side


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_stored_without_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
        assert not re.search(r"/work/|/home/|/tmp/", cell.source), "no machine-specific paths"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_and_their_readme_name_the_same_output_folder(path: Path):
    """Jupyter runs a notebook in its own folder, so its ``build/X`` is ``notebooks/build/X``."""
    notebook = nbformat.read(path, as_version=4)
    work = re.search(r'work = Path\("(build/[^"]+)"\)', notebook.cells[1].source).group(1)
    readme = " ".join((NOTEBOOKS / "README.md").read_text().split())
    assert f"`notebooks/{work}/`" in readme
    assert f"`notebooks/{work}/`" in " ".join(notebook.cells[0].source.split())
