"""An output folder that appears only when complete.

Everything is written into a hidden sibling folder, which is renamed to the requested name once
the run has finished, so a folder with the requested name is always a finished one. A run that
fails or is interrupted (Ctrl-C, SIGTERM) removes its hidden folder; one that is killed outright
leaves it behind, and ``resume`` continues it. A lock keeps two runs out of one folder.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from pathlib import Path
from types import TracebackType

from geochange.errors import InputError


class OutputFolder:
    """Context manager yielding the temporary folder to write into."""

    def __init__(self, path: str | Path, overwrite: bool = False, resume: bool = False) -> None:
        self.path = Path(path).absolute()
        self.overwrite = overwrite
        self.resume = resume
        self.partial = self.path.parent / f".{self.path.name}.partial"
        unfinished = self.partial.is_dir()
        if self.path.exists() and not overwrite and not (resume and unfinished):
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
        self._lock: int | None = None
        if unfinished and not (resume or overwrite):
            raise InputError(
                f"an unfinished run of {self.path} is in {self.partial} (it was killed)",
                "add --resume to continue it, or --overwrite to start over",
            )

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
        lock_path = self.path.parent / f".{self.path.name}.lock"
        self._lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            self._lock = None
            raise InputError(
                f"another geochange run is writing {self.path} right now",
                "wait for it to finish, or choose another -o/--output",
            ) from None
        if not (self.resume and self.partial.is_dir()):
            shutil.rmtree(self.partial, ignore_errors=True)
            self.partial.mkdir()
        return self.partial

    def _unlock(self) -> None:
        if self._lock is not None:
            (self.path.parent / f".{self.path.name}.lock").unlink(missing_ok=True)
            os.close(self._lock)
            self._lock = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            shutil.rmtree(self.partial, ignore_errors=True)
            self._unlock()
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
        self._unlock()
