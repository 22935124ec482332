"""The README works from a fresh clone: its Python example runs as written, and every link and
path it gives outside the developer section stays inside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    """The text of the ``## `` or ``### `` section with this title, up to the next heading."""
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", README, re.S | re.M)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return "#" + text.replace(" ", "-")


def test_python_example_runs_as_written(tmp_path):
    """In an empty folder, with nothing but the installed package: a fresh clone's situation."""
    (code,) = re.findall(r"```python\n(.*?)```", section("From Python"), re.S)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    count = int(re.search(r"^(\d+) change polygons$", done.stdout, re.M).group(1))
    assert count > 0
    assert "building_add" in done.stdout and "flood" in done.stdout
    assert (tmp_path / "build/demo-py/t2.tif").is_file()


def test_links_stay_in_the_repository():
    headings = {anchor(h) for h in re.findall(r"^#+ (.*)$", README, re.M)}
    for target in re.findall(r"\]\(([^)\s]+)\)", README):
        if target.startswith(("http://", "https://")):
            continue
        if target.startswith("#"):
            assert target in headings, target
            continue
        path = (ROOT / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), target


def test_only_the_developer_section_uses_the_development_data():
    outside = README.replace(section("Development"), "")
    assert "../shared" not in outside
    assert "../shared" in section("Development")
