"""What an unfinished run has done, kept in its partial folder so ``--resume`` can go on.

A block counts as done only once its pixels are written, so a run killed at any moment (even
by SIGKILL) loses at most the blocks in flight. The manifest's key hashes everything a block's
pixels depend on (input files, parameters, seed, model), so a resumed run never mixes in blocks
made with other settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from geochange.errors import InputError
from geochange.plan import Block

MANIFEST = "manifest.json"
STATE = ".resume"
"""The folder, inside a run's partial folder, of everything a resumed run reuses."""


def run_key(parameters: dict) -> str:
    """sha256 of the parameters as canonical JSON."""
    text = json.dumps(parameters, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Manifest:
    """Finished blocks per pass, saved atomically after each one.

    It lives in ``STATE`` inside the partial folder, next to the scratch rasters that hold the
    finished blocks' pixels (``folder``); a resumed run removes everything else of the partial
    folder and rewrites it.
    """

    def __init__(self, partial: Path, key: str, resume: bool) -> None:
        self.folder = partial / STATE
        self.path = self.folder / MANIFEST
        self.key = key
        self.resumed = False
        self._done: dict[str, set[tuple[int, int]]] = {}
        for stale in partial.iterdir():
            if stale.name != STATE or not resume:
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        self.folder.mkdir(exist_ok=True)
        if resume and self.path.is_file():
            self.verify(partial, key)
            saved = json.loads(self.path.read_text())
            self._done = {
                name: {(row, col) for row, col in blocks} for name, blocks in saved["done"].items()
            }
            self.resumed = True
        self._save()

    @staticmethod
    def verify(partial: Path, key: str) -> None:
        """Refuse to resume ``partial`` with another key; call it before touching the folder."""
        path = partial / STATE / MANIFEST
        if path.is_file() and json.loads(path.read_text()).get("key") != key:
            raise InputError(
                f"the unfinished run in {partial} was made with other inputs, parameters or "
                "another model, so none of its blocks can be reused",
                "resume with exactly the same command, or add --overwrite instead of "
                "--resume to start over",
            )

    def done(self, name: str) -> set[tuple[int, int]]:
        """The (row, col) of the blocks finished in pass ``name``."""
        return set(self._done.get(name, ()))

    def mark(self, name: str, block: Block) -> None:
        self._done.setdefault(name, set()).add((block.row, block.col))
        self._save()

    def remove(self) -> None:
        """A finished run keeps no state: nothing is left to resume."""
        shutil.rmtree(self.folder)

    def _save(self) -> None:
        state = {
            "key": self.key,
            "done": {name: sorted(blocks) for name, blocks in self._done.items()},
        }
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(state))
        os.replace(partial, self.path)
