"""The store interface every backend implements."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from workers.errors import Unavailable

_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


class ObjectNotFound(KeyError):
    """No object under that key."""

    def __str__(self) -> str:
        return f"object not found: {self.args[0]}"


class StoreUnavailable(Unavailable):
    """The backend cannot be reached."""


def validate_key(key: str) -> str:
    """Refuse keys that could escape the store (`..`, absolute paths, odd characters)."""
    if not _KEY.match(key) or any(part in {".", ".."} for part in key.split("/")):
        raise ValueError(f"invalid store key: {key!r}")
    return key


class Store(Protocol):
    """What the engine needs from object storage. Writes are atomic: all or nothing."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def get_bytes(self, key: str) -> bytes: ...

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """A reader over bytes [start, end) of the object (end=None: to the end)."""
        ...

    def download(self, key: str, dest: Path) -> None: ...

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None: ...

    def put_file(
        self, key: str, src: Path, content_type: str = "application/octet-stream"
    ) -> None: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under `prefix`, sorted."""
        ...

    def ping(self) -> None:
        """Raise `StoreUnavailable` unless the backend answers."""
        ...
