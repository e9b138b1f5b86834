"""The store interface every backend implements."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from workers.errors import Unavailable

_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
# Download names go into a quoted header parameter: keep them to a set needing no escaping.
_FILENAME = re.compile(r"^[A-Za-z0-9._+-]{1,255}$")


class ObjectNotFound(Exception):
    """No object under that key.

    Not a `KeyError`: an `except KeyError` meant for a dict lookup must not swallow a missing
    object, nor one meant for a missing object a bug in a dict lookup."""

    def __str__(self) -> str:
        return f"object not found: {self.args[0]}"


class StoreUnavailable(Unavailable):
    """The backend cannot be reached."""

    def __init__(
        self, detail: str, public: str = "the object store is unavailable; try again shortly"
    ) -> None:
        super().__init__(detail, public)


@dataclass(frozen=True)
class ObjectStat:
    """What identifies one stored version of an object: any rewrite changes `version`."""

    size: int
    version: str  # local: mtime and inode; S3: the ETag
    modified: float  # seconds since the epoch


def validate_key(key: str) -> str:
    """Refuse keys that could escape the store (`..`, absolute paths, odd characters)."""
    if not _KEY.match(key) or any(part in {".", ".."} for part in key.split("/")):
        raise ValueError(f"invalid store key: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """A list prefix is "" (everything) or a valid key, optionally ending in "/"."""
    if prefix:
        validate_key(prefix.removesuffix("/"))
    return prefix


def under_prefix(key: str, prefix: str) -> bool:
    """Whether `key` is `prefix` itself or lies below it, `/` separating whole segments."""
    stem = prefix.removesuffix("/")
    return not stem or key == stem or key.startswith(stem + "/")


def validate_range(start: int, end: int | None) -> None:
    """Byte ranges are [start, end) with 0 <= start <= end."""
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"invalid byte range: start={start}, end={end}")


def attachment_disposition(filename: str) -> str:
    """A `Content-Disposition` that makes browsers save the body as `filename`."""
    if not _FILENAME.match(filename) or filename in {".", ".."}:
        raise ValueError(f"invalid download file name: {filename!r}")
    return f'attachment; filename="{filename}"'


class Store(Protocol):
    """What the engine needs from object storage. Writes are atomic: all or nothing."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def stat(self, key: str) -> ObjectStat: ...

    def get_bytes(self, key: str) -> bytes: ...

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """A streaming reader over bytes [start, end) of the object (end=None: to the end);
        a range past the end is cut short, as a file read would be."""
        ...

    def download(self, key: str, dest: Path) -> None: ...

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None: ...

    def put_new(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> bool:
        """Write `data` under `key` only if no object is there yet: True if this call
        created it, False if one existed (left unchanged). Atomic against concurrent callers."""
        ...

    def put_file(
        self, key: str, src: Path, content_type: str = "application/octet-stream"
    ) -> None: ...

    def adopt_file(
        self, key: str, src: Path, content_type: str = "application/octet-stream"
    ) -> None:
        """`put_file` for a finished file the caller hands over: it never writes to `src`
        again, so a local store may hard-link it into place instead of copying its bytes."""
        ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str) -> Iterator[str]:
        """Keys equal to `prefix` or below it (whole `/` segments), sorted."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The object's file on this machine, for a server to send it with `sendfile`; None
        when the backend keeps no local file (S3). Does not check that the object exists."""
        ...

    def url_for(
        self, key: str, filename: str | None, ttl: int, disposition: str | None = None
    ) -> str | None:
        """A URL a client can GET the object from directly for `ttl` seconds, saved as
        `filename` when given (or answered with the ready-made `Content-Disposition`
        `disposition`); None when the backend cannot hand out such URLs (local).
        Does not check that the object exists."""
        ...

    def ping(self) -> None:
        """Raise `StoreUnavailable` unless the backend answers."""
        ...
