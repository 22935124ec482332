"""What an unfinished run has done, kept in its partial folder so ``--resume`` can go on.

A block counts as done only once its pixels are written and flushed to disk, so a run killed at
any moment (even by SIGKILL or a power cut) loses at most the blocks in flight. The manifest's
key hashes everything a block's pixels depend on (input files, parameters, seed, model), so a
resumed run never mixes in blocks made with other settings; and it holds a checksum of each done
block's pixels in every scratch raster, so a resumed run redoes a block whose pixels were lost or
damaged since (a deleted scratch file would otherwise come back as black blocks).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from geochange.errors import InputError
from geochange.plan import Block, Plan
from geochange.scratch import window_digest

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

    def __init__(self, partial: Path, key: str, resume: bool, plan: Plan) -> None:
        """``plan`` cuts the run's grid, that of every scratch raster, into blocks."""
        self.folder = partial / STATE
        self.path = self.folder / MANIFEST
        self.key = key
        self.plan = plan
        self.resumed = False
        self.redone = 0
        """Blocks a resumed run found done but whose pixels no longer match: done again."""
        self._done: dict[str, dict[tuple[int, int], dict[str, str]]] = {}
        for stale in partial.iterdir():
            if stale.name != STATE or not resume:
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        self.folder.mkdir(exist_ok=True)
        if resume and self.path.is_file():
            self.verify(partial, key)
            saved = json.loads(self.path.read_text())
            for name, blocks in saved["done"].items():
                intact = {}
                for entry in blocks:
                    row, col = entry["block"]
                    if self._digests(row, col, entry["sha256"]) == entry["sha256"]:
                        intact[(row, col)] = entry["sha256"]
                self.redone += len(blocks) - len(intact)
                self._done[name] = intact
            self.resumed = True
        self._save()

    @staticmethod
    def verify(partial: Path, key: str) -> None:
        """Refuse to resume ``partial`` with another key; call it before touching the folder."""
        path = partial / STATE / MANIFEST
        if not path.is_file():
            return
        try:
            saved = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(
                f"the unfinished run in {partial} has a damaged {STATE}/{MANIFEST}, so what it "
                "finished is unknown",
                "add --overwrite instead of --resume to start over",
            ) from None
        if saved.get("key") != key:
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
        """Record ``block`` as done once the scratch rasters holding its pixels are on disk."""
        for raster in self._scratch():
            fd = os.open(raster, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        where = (block.row, block.col)
        self._done.setdefault(name, {})[where] = self._digests(*where)
        self._save()

    def remove(self) -> None:
        """A finished run keeps no state: nothing is left to resume."""
        shutil.rmtree(self.folder)

    def _scratch(self) -> list[Path]:
        return sorted(self.folder.glob("*.raw"))

    def _digests(self, row: int, col: int, names: Iterable[str] = ()) -> dict[str, str | None]:
        """Checksums of block (row, col)'s core in every scratch raster (and in ``names``)."""
        core = self.plan.block(row, col).core
        grid = self.plan.grid
        files = sorted({p.name for p in self._scratch()} | set(names))
        return {n: window_digest(self.folder / n, grid.height, grid.width, core) for n in files}

    def _save(self) -> None:
        state = {
            "key": self.key,
            "done": {
                name: [{"block": list(b), "sha256": d} for b, d in sorted(blocks.items())]
                for name, blocks in self._done.items()
            },
        }
        partial = self.path.with_suffix(".tmp")
        with open(partial, "w") as stream:
            stream.write(json.dumps(state))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(partial, self.path)
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
