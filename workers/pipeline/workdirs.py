"""Work directories of builds (`<data dir>/tmp/build-*`), and removing those of dead builds.

A build holds an exclusive `flock` on its work directory for as long as it runs; the kernel
drops it when the process dies, however it dies. So a directory nobody holds belongs to a
dead build (a worker killed mid-build) and can go, even while other workers on the same data
directory build: theirs are held. Creating a directory and locking it happen under a shared
lock on the parent, and removal under an exclusive one, so a directory is never removed in
the moment between its creation and its lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from workers.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "build-"


def _open_dir(directory: Path) -> int:
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


def work_root(settings: Settings) -> Path:
    """Where builds make their work directories: under the data directory, on this machine."""
    return settings.data_dir / "tmp"


@contextlib.contextmanager
def _locked(directory: Path, operation: int) -> Iterator[None]:
    fd = _open_dir(directory)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)


def _held(directory: Path) -> bool:
    """Whether a live build holds `directory`'s lock."""
    fd = _open_dir(directory)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _make_writable(function: Callable[..., Any], path: str, excinfo: Any) -> None:
    """rmtree's error hook: a tool may leave read-only directories; open them and retry."""
    if not isinstance(excinfo[1], PermissionError):
        raise excinfo[1]
    os.chmod(os.path.dirname(path), 0o700)
    function(path)


def remove_tree(path: Path) -> None:
    """Remove `path` and everything in it (links are removed, never followed)."""
    shutil.rmtree(path, onerror=_make_writable)


@contextlib.contextmanager
def build_workdir(work_root: Path) -> Iterator[Path]:
    """A new, locked `build-*` directory under `work_root`, removed afterwards."""
    work_root.mkdir(parents=True, exist_ok=True)
    with _locked(work_root, fcntl.LOCK_SH):
        path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=work_root))
        fd = _open_dir(path)
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield path
    finally:
        try:
            remove_tree(path)
        finally:
            os.close(fd)


def remove_dead_workdirs(work_root: Path) -> list[Path]:
    """Remove the `build-*` directories under `work_root` that no live build holds; the
    removed ones."""
    if not work_root.is_dir():
        return []
    removed = []
    with _locked(work_root, fcntl.LOCK_EX):
        for path in sorted(work_root.glob(PREFIX + "*")):
            if path.is_symlink() or not path.is_dir() or _held(path):
                continue
            # Nobody can take it now: a new build's directory is created and locked under
            # the parent's lock, which this holds.
            remove_tree(path)
            removed.append(path)
    if removed:
        log.info("removed %d work directories of dead builds under %s", len(removed), work_root)
    return removed


def fresh_dir(path: Path) -> Path:
    """Create `path` (and its parents); it must not exist yet."""
    path.mkdir(parents=True)
    return path
