"""Whole bodies of local blobs that were hashed on the wire lately go out zero-copy, under a
file stamp no write can leave as it was.

Issue 12: bytes changed at rest with size and mtime put back must never reach a client
complete. A whole-body download is hashed as it streams (`factory.delivery`); when it
matched, the stamp of the file it read — `(st_dev, st_ino, st_size, st_mtime_ns,
st_ctime_ns)` from `fstat`, the same at the end as at the start — is remembered with that
sha256 (`VerifiedStamps`: per web process, least recently used first out, `TRUST_SECONDS` at
most). A later whole-body download whose opened file shows the same stamp, for a build with
the same sha256, is handed to the WSGI server as a file (`GuardedFile`: gunicorn `sendfile`s
it, `factory.commands.serve._ZeroCopySocket`); the stamp is looked at again before the last
chunk goes out, and a change cuts the connection (`BlobChanged`).

Why this is as good as hashing for that attack: every write to a file (write, truncate, a
write through a shared mapping when it dirties a page) sets the file's ctime to the current
time, and no system call sets ctime to a chosen value: `utime` restores mtime, not ctime,
and itself moves ctime. An unchanged stamp therefore means no write since the bytes were
hashed. Two details keep it so:
- file times come from a coarse clock (one tick is a few milliseconds): a write within the
  tick of the last change could leave ctime as it was (git's "racily clean" index entries).
  A stamp is only remembered when its ctime is `SETTLE_NS` older than the moment its file
  was opened for the hashed read, so any later write shows a later ctime;
- a stamp vouches for one digest only: it is asked with the build's sha256 and size.

What it does not catch: changes below the file system (a failing disk, writes to the block
device, debugfs), root setting the clock back to forge a ctime, and writes through a shared
writable mapping whose page was already dirty before the hashed read (no new fault, so no
new ctime). Hashing again would rarely catch those either (both ways read the page cache),
but it is cheap now and then, so a stamp is trusted for `TRUST_SECONDS` and the next download
after that is hashed again. A metadata change during a zero-copy send (chmod, a hard link
made or removed, the budget evicting the blob) moves ctime too and cuts that download: the
client tries again and gets a hashed one.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Stamps remembered per web process (each about 200 bytes).
CAPACITY = 4096
# A stamp vouches for its bytes this long after they were hashed; then they are hashed again.
TRUST_SECONDS = 600.0
# Far more than a file system clock tick (1-10 ms): a ctime this old cannot be repeated by
# a later write.
SETTLE_NS = 1_000_000_000


class BlobChanged(Exception):
    """A file sent under a verified stamp changed while it was being sent."""


@dataclass(frozen=True, slots=True)
class FileStamp:
    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


def stamp_of(result: os.stat_result) -> FileStamp:
    return FileStamp(
        result.st_dev, result.st_ino, result.st_size, result.st_mtime_ns, result.st_ctime_ns
    )


class VerifiedStamps:
    """File stamps whose bytes were hashed and matched a digest: a bounded LRU."""

    def __init__(
        self,
        capacity: int = CAPACITY,
        trust_seconds: float = TRUST_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capacity = capacity
        self._trust_seconds = trust_seconds
        self._clock = clock
        # stamp -> (sha256 its bytes had, when they were hashed)
        self._stamps: OrderedDict[FileStamp, tuple[str, float]] = OrderedDict()
        self._guard = threading.Lock()

    def remember(self, stamp: FileStamp, sha256: str, opened_ns: int) -> bool:
        """Note that the file with `stamp`, opened at `opened_ns` (`time.time_ns()`), was read
        whole and hashed to `sha256`; False (nothing noted) while its ctime is too recent to
        tell a later write apart."""
        if opened_ns - stamp.ctime_ns < SETTLE_NS:
            return False
        with self._guard:
            self._stamps[stamp] = (sha256, self._clock())
            self._stamps.move_to_end(stamp)
            while len(self._stamps) > self._capacity:
                self._stamps.popitem(last=False)
        return True

    def vouches(self, stamp: FileStamp, sha256: str) -> bool:
        """Whether a file showing `stamp` was hashed to `sha256` within `TRUST_SECONDS`."""
        with self._guard:
            found = self._stamps.get(stamp)
            if found is None:
                return False
            if self._clock() - found[1] >= self._trust_seconds:
                del self._stamps[stamp]
                return False
            self._stamps.move_to_end(stamp)
        return found[0] == sha256

    def __len__(self) -> int:
        return len(self._stamps)


# The web process's own: gunicorn forks before the app is made, each process fills its own.
STAMPS = VerifiedStamps()


@dataclass
class OpenedBlob:
    """A local blob opened for a whole-body download, with its stamp at that moment."""

    path: Path
    file: io.BufferedReader
    stamp: FileStamp
    opened_ns: int

    @classmethod
    def open(cls, path: Path) -> OpenedBlob:
        """Raises FileNotFoundError when the blob is gone."""
        opened_ns = time.time_ns()
        file = path.open("rb")
        return cls(path, file, stamp_of(os.fstat(file.fileno())), opened_ns)

    def remember_if_matched(self, stamps: VerifiedStamps, sha256: str) -> None:
        """After the whole file was read and hashed to `sha256` (the build's): remember its
        stamp, if the file at `path` still shows it (same inode, no write since it was opened)."""
        try:
            now = stamp_of(os.stat(self.path))
        except FileNotFoundError:
            return
        if now == self.stamp:
            stamps.remember(self.stamp, sha256, self.opened_ns)


class GuardedFile(io.RawIOBase):
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

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._file.fileno()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

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
