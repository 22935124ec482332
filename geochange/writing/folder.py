"""An output folder that appears only when complete, and never at the cost of the user's files.

Everything is written into a hidden sibling folder, which is renamed to the requested name once
the run has finished, so a folder with the requested name is always a finished one. A run that
fails or is interrupted (Ctrl-C, SIGTERM) removes its hidden folder, unless what it holds is
finished work (``keep_unfinished``: the pairs of ``dataset``); one that is killed outright leaves
it behind, and ``resume`` continues it.

One output folder, one run: a lock beside it is taken before anything else is looked at, so
two runs cannot both find the folder free. Replacing a folder is refused unless geochange wrote
it (it holds ``MARKER``), and when it holds an input or the current folder, so a mistyped
``-o .`` cannot delete the user's data. Outputs are flushed to disk before the final rename, so
after a power cut a folder with the requested name is still a complete one.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from geochange.errors import InputError

MARKER = ".geochange"
"""The file every finished output folder holds; only folders with it may be replaced."""
MARKER_TEXT = "This folder was written by geochange; a run with --overwrite may replace it.\n"


NAME_MAX = 240
"""Bytes of an output folder's name: its hidden siblings (``.NAME.partial``, ``.NAME.old-PID``)
must still fit the usual 255-byte limit of a file name."""


def output_path(path: str | Path) -> Path:
    """The absolute path of an output folder, with ``..`` resolved; an empty name is refused."""
    if not str(path).strip():
        raise InputError("the output folder name is empty", "name a folder, e.g. -o out")
    absolute = Path(os.path.abspath(path))
    size = len(os.fsencode(absolute.name))
    if size > NAME_MAX:
        raise InputError(
            f"the output folder name is {size} bytes long, more than the {NAME_MAX} it may have",
            "choose a shorter name",
        )
    return absolute


def check_replaceable(
    path: Path, inputs: Iterable[str | Path] = (), written_by: tuple[str, ...] = (MARKER,)
) -> None:
    """Refuse to replace folder ``path`` when that would delete something besides an old output:
    the current folder or one above it, a folder holding an input, a folder geochange did not
    write (holding none of the files named in ``written_by``, unless empty)."""
    real = path.resolve()
    here = Path.cwd().resolve()
    if real == here or real in here.parents:
        raise InputError(
            f"refusing to replace {path}: it is the current folder or holds it",
            "name a new output folder (e.g. -o out); replacing only ever deletes old outputs",
        )
    for source in inputs:
        if Path(source).resolve().is_relative_to(real):
            raise InputError(
                f"refusing to replace {path}: it holds the input {source}",
                "write to another output folder, or move the input out of it first",
            )
    if not any((path / name).is_file() for name in written_by) and any(path.iterdir()):
        raise InputError(
            f"refusing to replace {path}: geochange did not write it (it has no "
            f"{' or '.join(written_by)} file)",
            "choose another output folder, or delete this one yourself if nothing in it is needed",
        )


class FolderLock:
    """An exclusive ``flock`` on ``.NAME.lock`` beside output ``path``, holding the owner's PID."""

    def __init__(self, path: Path) -> None:
        self.output = path
        self.path = path.parent / f".{path.name}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or say which run holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                pid = f" (PID {owner})" if owner.isdigit() else ""
                raise InputError(
                    f"another geochange run{pid} is writing {self.output} right now",
                    "wait for it to finish, or choose another output folder",
                ) from None
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
            # the owner removed the file between our open and flock: lock the new one
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


def sync_tree(folder: Path) -> None:
    """fsync every file and folder below ``folder`` (and it), so what is renamed is on disk."""
    for root, _, files in os.walk(folder):
        for name in files:
            _fsync(Path(root) / name)
        _fsync(Path(root))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(partial: Path, path: Path) -> None:
    """Rename the finished ``partial`` folder to ``path``, replacing an old output there; the
    old one is deleted only once the new one is in place."""
    (partial / MARKER).write_text(MARKER_TEXT)
    sync_tree(partial)
    if path.exists() and _exchange(partial, path):
        shutil.rmtree(partial)  # now the old output
    elif path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        path.rename(old)
        partial.rename(path)
        shutil.rmtree(old)
    else:
        partial.rename(path)
    _fsync(path.parent)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step, so no moment lacks either (Linux ``renameat2`` with
    ``RENAME_EXCHANGE``); False where the system or the file system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_cwd, exchange = -100, 2
    return renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0


def partial_path(path: Path) -> Path:
    """Where an unfinished run of output folder ``path`` keeps its work."""
    return path.parent / f".{path.name}.partial"


def check_options(overwrite: bool, resume: bool) -> None:
    """``--overwrite`` starts over, ``--resume`` goes on: never both."""
    if overwrite and resume:
        raise InputError(
            "--overwrite and --resume exclude each other",
            "--resume goes on with an unfinished run, --overwrite starts over",
        )


def check_output(
    path: str | Path, overwrite: bool, resume: bool, inputs: Iterable[str | Path] = ()
) -> None:
    """Refuse to write output folder ``path`` when it exists (unless ``overwrite``, or
    ``resume`` with an unfinished run) or an unfinished run of it waits (unless ``resume``
    or ``overwrite``). A command that starts something slow first (a Dask cluster) asks
    before; ``OutputFolder`` asks again under its lock."""
    check_options(overwrite, resume)
    path = output_path(path)
    unfinished = partial_path(path).is_dir()
    if path.exists() and not path.is_dir():
        raise InputError(f"output {path} exists and is not a folder")
    if path.exists() and not overwrite and not (resume and unfinished):
        finished = " and is finished: there is nothing to resume" if resume else ""
        raise InputError(
            f"output folder {path} already exists{finished}",
            "choose another -o/--output or add --overwrite to replace it",
        )
    if path.exists():
        check_replaceable(path, list(inputs))
    if unfinished and not (resume or overwrite):
        raise InputError(
            f"an unfinished run of {path} is in {partial_path(path)} (it was stopped)",
            "add --resume to continue it, or --overwrite to start over",
        )


class OutputFolder:
    """Context manager yielding the temporary folder to write into.

    The lock is taken on construction; a caller that fails before entering calls
    ``release``. ``inputs`` are the files the run reads, which an overwrite must not delete.
    ``keep_unfinished`` keeps the partial folder of a run that fails or is interrupted, for
    ``resume`` (``dataset``: every pair in it is finished work); otherwise only a run killed
    outright leaves one.
    """

    def __init__(
        self,
        path: str | Path,
        overwrite: bool = False,
        resume: bool = False,
        inputs: Iterable[str | Path] = (),
        keep_unfinished: bool = False,
    ) -> None:
        check_options(overwrite, resume)
        self.path = output_path(path)
        self.overwrite = overwrite
        self.resume = resume
        self.keep_unfinished = keep_unfinished
        self.partial = partial_path(self.path)
        parent = self.path.parent
        existing = next(p for p in (parent, *parent.parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise InputError(
                f"cannot write output folder {self.path}: {existing} is not a writable folder",
                "choose an -o/--output in a folder you can write to",
            )
        self._existing = existing
        self._created = [p for p in (parent, *parent.parents) if not p.exists()]
        parent.mkdir(parents=True, exist_ok=True)
        self._lock = FolderLock(self.path)
        try:
            self._lock.acquire()
            self._check(list(inputs))
        except BaseException:
            self.release()
            raise

    def _check(self, inputs: list[str | Path]) -> None:
        """Decided again under the lock, so no other run can change it meanwhile."""
        check_output(self.path, self.overwrite, self.resume, inputs)

    def require_space(self, needed_bytes: int) -> None:
        """Fail early, before writing anything, when the disk cannot hold the run."""
        free = shutil.disk_usage(self._existing).free
        if free < needed_bytes:
            raise InputError(
                f"not enough disk space in {self.path.parent}: about {needed_bytes / 1e9:.2f} GB "
                f"needed, {free / 1e9:.2f} GB free",
                "free some space or choose an -o/--output on another disk",
            )

    def release(self) -> None:
        """Give up the lock, and the parent folders made for a run that did not happen."""
        self._lock.release()
        for folder in self._created:
            try:
                folder.rmdir()
            except OSError:
                break

    def __enter__(self) -> Path:
        if not (self.resume and self.partial.is_dir()):
            shutil.rmtree(self.partial, ignore_errors=True)
            self.partial.mkdir()
        return self.partial

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                publish(self.partial, self.path)
                return
            if not self.keep_unfinished:
                shutil.rmtree(self.partial, ignore_errors=True)
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise InputError(
                    f"the disk holding {self.path.parent} is full; nothing was written",
                    "free some space or choose an -o/--output on another disk",
                ) from exc
        finally:
            self.release()
