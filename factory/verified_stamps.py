"""Whole bodies of local blobs that were hashed lately go out zero-copy, under a file stamp
no write can leave as it was (`workers.outputs.file_stamps` says why, and what it misses).

Issue 12: bytes changed at rest with size and mtime put back must never reach a client
complete. A whole-body download whose file shows a stamp the web process verified (a whole
hash that matched the build's sha256: the first check, `BlobVerifier`, or an earlier
download hashed on the wire, `factory.delivery`) is handed to the WSGI server as a file
(`GuardedFile`: gunicorn `sendfile`s it, `factory.commands.serve._ZeroCopySocket`); the
stamp is looked at again once the last chunk has been read and before it goes out, and a
change cuts the connection (`BlobChanged`). Any other whole body is hashed as it streams;
when it matched, its stamp is remembered (`file_stamps.OpenedBlob.remember_if_matched`).

A metadata change during a zero-copy send (chmod, a hard link made or removed, the budget
evicting the blob) moves ctime too and cuts that download: the client tries again and gets
a hashed one.
"""

from __future__ import annotations

import logging
import os

from factory.file_views import FileView
from workers.outputs.file_stamps import OpenedBlob, stamp_of

log = logging.getLogger(__name__)


class BlobChanged(Exception):
    """A file sent under a verified stamp changed while it was being sent."""


class GuardedFile(FileView):
    """A whole blob sent under a verified stamp. `fileno`, `seek` and `tell` are the file's
    own: a WSGI server `sendfile`s all but the last chunk from them and takes that one from
    `read_last` (`_ZeroCopySocket`). Read instead, the read that reaches the end is checked
    before it is returned. Either way the last bytes leave only after the stamp was found
    unchanged once they were read, so every byte sent was read before any write."""

    def __init__(self, opened: OpenedBlob) -> None:
        self._opened = opened
        self._file = opened.file

    def check_unchanged(self) -> None:
        """Raise `BlobChanged` when the file no longer shows the stamp it was sent under."""
        if stamp_of(os.fstat(self._file.fileno())) != self._opened.stamp:
            log.error("%s changed while it was sent: connection cut", self._opened.path)
            raise BlobChanged(f"{self._opened.path.name} changed while it was sent")

    def read_last(self, offset: int, count: int) -> bytes:
        """`count` bytes at `offset` (the last chunk), once the stamp is found unchanged."""
        data = os.pread(self._file.fileno(), count, offset)
        self.check_unchanged()
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._file.read(len(buffer))
        if len(data) < len(buffer) or self._file.tell() >= self._opened.stamp.size:
            self.check_unchanged()
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()
