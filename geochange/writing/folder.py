"""An output folder that appears only when complete.

Everything is written into a hidden sibling folder, which is renamed to the requested name once
the run has finished. A failed or interrupted run removes its hidden folder, so a folder with
the requested name is always a finished one.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from types import TracebackType

from geochange.errors import InputError


class OutputFolder:
    """Context manager yielding the temporary folder to write into."""

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path).absolute()
        self.overwrite = overwrite
        if self.path.exists() and not overwrite:
            raise InputError(
                f"output folder {self.path} already exists",
                "choose another -o/--output or add --overwrite to replace it",
            )
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"output {self.path} exists and is not a folder")
        parent = self.path.parent
        existing = next(p for p in (parent, *parent.parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise InputError(
                f"cannot write output folder {self.path}: {existing} is not a writable folder",
                "choose an -o/--output in a folder you can write to",
            )
        self._existing = existing
        self.partial = parent / f".{self.path.name}.partial-{os.getpid()}"

    def require_space(self, needed_bytes: int) -> None:
        """Fail early, before writing anything, when the disk cannot hold the run."""
        free = shutil.disk_usage(self._existing).free
        if free < needed_bytes:
            raise InputError(
                f"not enough disk space in {self.path.parent}: about {needed_bytes / 1e9:.2f} GB "
                f"needed, {free / 1e9:.2f} GB free",
                "free some space or choose an -o/--output on another disk",
            )

    def __enter__(self) -> Path:
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir()
        return self.partial

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            shutil.rmtree(self.partial, ignore_errors=True)
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise InputError(
                    f"the disk holding {self.path.parent} is full; nothing was written",
                    "free some space or choose an -o/--output on another disk",
                ) from exc
            return
        if self.path.exists():
            old = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
            self.path.rename(old)
            self.partial.rename(self.path)
            shutil.rmtree(old)
        else:
            self.partial.rename(self.path)
