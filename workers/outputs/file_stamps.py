"""File stamps whose bytes were hashed whole and matched a digest, remembered per process.

A stamp is what `fstat` says of a file: `(st_dev, st_ino, st_size, st_mtime_ns,
st_ctime_ns)`. Every write to a file (write, truncate, a write through a shared mapping when
it dirties a page) sets its ctime to the current time, and no system call sets ctime to a
chosen value: `utime` restores mtime, not ctime, and itself moves ctime. So a file showing
the stamp it had while its bytes were hashed (the same at the end of the read as at the
start) still has those bytes: issue 12's "size and mtime put back" changes the stamp. Web
processes send such files zero-copy (`factory.verified_stamps`). Two details keep it so:
- file times come from a coarse clock (one tick is a few milliseconds): a write within the
  tick of the last change could leave ctime as it was (git's "racily clean" index entries).
  A stamp is only remembered when its ctime is `SETTLE_NS` older than the moment its file
  was opened for the hashed read, so any later write shows a later ctime;
- a stamp vouches for one digest only: it is asked with the build's sha256.

What it does not catch: changes below the file system (a failing disk, writes to the block
device, debugfs), root setting the clock back to forge a ctime, and writes through a shared
writable mapping whose page was already dirty before the hashed read (no new fault, so no
new ctime). Hashing again would rarely catch those either (both ways read the page cache),
but it is cheap now and then, so a stamp is trusted for `TRUST_SECONDS`; after that the
next download hashes the bytes again.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Stamps remembered per process (each about 200 bytes).
CAPACITY = 4096
# A stamp vouches for its bytes this long after they were hashed; then they are hashed again.
TRUST_SECONDS = 600.0
# Far more than a file system clock tick (1-10 ms): a ctime this old cannot be repeated by
# a later write.
SETTLE_NS = 1_000_000_000


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


def unchanged_since(path: Path, stamp: FileStamp) -> bool:
    """Whether the file at `path` still shows `stamp` (same inode, no write since)."""
    try:
        return stamp_of(os.stat(path)) == stamp
    except FileNotFoundError:
        return False


@dataclass
class OpenedBlob:
    """A local blob opened to be read whole (hashed, or sent), with its stamp at that moment."""

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
        if unchanged_since(self.path, self.stamp):
            stamps.remember(self.stamp, sha256, self.opened_ns)
