"""A store in a local directory; writes go to a temp file and are renamed into place."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from workers.errors import InsufficientStorage
from workers.store.base import (
    ObjectNotFound,
    ObjectStat,
    StoreUnavailable,
    attachment_disposition,
    validate_key,
    validate_prefix,
    validate_range,
)
from workers.store.sparse import copy_sparse

_TMP = ".tmp"
# Not world-readable (whatever the umask): built assets are served by the app, not the OS.
FILE_MODE = 0o640
DIR_MODE = 0o750


def _make_dirs(path: Path) -> None:
    """`path` and any missing parents, each created with DIR_MODE (`mkdir(parents=True)`
    leaves the parents to the umask)."""
    if path.is_dir():
        return
    _make_dirs(path.parent)
    try:
        path.mkdir()
    except FileExistsError:  # made meanwhile by another writer
        return
    os.chmod(path, DIR_MODE)


class _RangeReader(io.RawIOBase):
    """Reads at most `remaining` bytes from an open file, then EOF."""

    def __init__(self, f: BinaryIO, remaining: int | None) -> None:
        self._f = f
        self._remaining = remaining

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        if self._remaining is not None:
            want = min(want, self._remaining)
        if want <= 0:
            return 0
        data = self._f.read(want)
        n = len(data)
        buffer[:n] = data
        if self._remaining is not None:
            self._remaining -= n
        return n

    def fileno(self) -> int:
        return self._f.fileno()

    def close(self) -> None:
        self._f.close()
        super().close()


class LocalStore:
    """Objects as files under `root`; `root/.tmp` holds writes in progress."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        _make_dirs(self.root / _TMP)

    def path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        path = self.path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        try:
            return path.stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def stat(self, key: str) -> ObjectStat:
        try:
            found = self.path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        version = f"{found.st_mtime_ns}-{found.st_ino}-{found.st_size}"
        return ObjectStat(found.st_size, version, found.st_mtime)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(key) from None

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        validate_range(start, end)
        try:
            f = self.path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(key) from None
        if start:
            f.seek(start)
        if end is None:
            return f
        return io.BufferedReader(_RangeReader(f, max(0, end - start)))

    def download(self, key: str, dest: Path) -> None:
        src = self.path(key)
        if not src.is_file():
            raise ObjectNotFound(key)
        copy_sparse(src, dest)

    @contextlib.contextmanager
    def _atomic(self, key: str) -> Iterator[Path]:
        final = self.path(key)
        _make_dirs(final.parent)
        fd, tmp_name = tempfile.mkstemp(dir=self.root / _TMP)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            yield tmp
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, final)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            # The temp file goes (below); nothing half-written is ever under `key`.
            raise InsufficientStorage(f"the store is full: cannot write {key}") from error
        finally:
            tmp.unlink(missing_ok=True)

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        with self._atomic(key) as tmp:
            tmp.write_bytes(data)

    def put_new(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> bool:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.root / _TMP)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            # link(2) fails when the name exists: the whole object appears, or nothing.
            os.link(tmp, final)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def put_file(self, key: str, src: Path, content_type: str = "application/octet-stream") -> None:
        with self._atomic(key) as tmp:
            copy_sparse(src, tmp)

    def adopt_file(
        self, key: str, src: Path, content_type: str = "application/octet-stream"
    ) -> None:
        with self._atomic(key) as tmp:
            if not _linked_over(src, tmp):
                copy_sparse(src, tmp)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[str]:
        validate_prefix(prefix)
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return iter(())
        keys = []
        for p in base.rglob("*") if base.is_dir() else [base]:
            rel = p.relative_to(self.root).as_posix()
            if p.is_file() and not rel.startswith(_TMP + "/"):
                keys.append(rel)
        return iter(sorted(keys))

    def local_path(self, key: str) -> Path | None:
        return self.path(key)

    def url_for(
        self, key: str, filename: str | None, ttl: int, disposition: str | None = None
    ) -> str | None:
        """Files have no URL of their own: the web app streams them."""
        validate_key(key)
        if filename is not None:
            attachment_disposition(filename)  # refuse the same names S3 would
        return None

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StoreUnavailable(f"data directory {self.root} is not writable")


def _linked_over(src: Path, tmp: Path) -> bool:
    """Whether the empty temp file `tmp` could be replaced by a hard link to `src` (the
    object then shares its blocks); when not (another file system, links not allowed),
    `tmp` is left as it was."""
    link = tmp.with_name(tmp.name + ".link")
    try:
        os.link(src, link)
    except OSError:
        return False
    try:
        os.replace(link, tmp)
    finally:
        link.unlink(missing_ok=True)
    return True
