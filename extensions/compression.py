"""Sniffing and bounded decompression of untrusted archives.

The format is decided by magic bytes, never by file name. Decompression is streamed in small
chunks; every produced byte is charged to a `Budget`, and the ratio of produced to consumed
bytes is capped (past a floor), so a small bomb is rejected after a few megabytes of output
with bounded memory, whatever its headers claim.
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import IO, BinaryIO, Protocol, cast

import zstandard

from extensions.budget import Budget
from extensions.errors import ExtensionError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"
ZSTD_MAX_WINDOW = 1 << 27  # 128 MiB: zstd's own default limit, stated explicitly
CHUNK = 64 * 1024


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def sniff(head: bytes) -> str:
    """ "gzip", "zstd" or "plain" (a tar, or garbage the tar reader will name)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        raise ExtensionError("xz-compressed archives are not supported: use tar, gzip or zstd")
    if head.startswith(BZIP2_MAGIC) and len(head) > 3 and head[3:4].isdigit():
        raise ExtensionError("bzip2-compressed archives are not supported: use tar, gzip or zstd")
    return "plain"


class _CountingReader(io.RawIOBase):
    """Counts the compressed bytes consumed from the underlying file."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.consumed += n
        return n


class BoundedStream:
    """Decompressed bytes of one archive, charged to a budget and ratio-checked."""

    def __init__(self, raw: BinaryIO, label: str, budget: Budget) -> None:
        self.label = label
        self._budget = budget
        self._counter = _CountingReader(raw)
        self.format = sniff(raw.read(8))
        raw.seek(0)
        self._source: Readable
        if self.format == "gzip":
            self._source = gzip.GzipFile(fileobj=self._counter, mode="rb")
        elif self.format == "zstd":
            decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
            self._source = decompressor.stream_reader(
                cast(IO[bytes], self._counter), read_size=CHUNK, read_across_frames=True
            )
        else:
            self._source = self._counter
        self.produced = 0
        self._raw = raw
        # An uncompressed archive file: member data can be skipped by seeking and read later
        # in place (`position` is then an offset into the file).
        self.seekable = self.format == "plain" and raw.seekable()
        self._size = raw.seek(0, io.SEEK_END) if self.seekable else 0
        raw.seek(0)

    @property
    def position(self) -> int:
        """Bytes produced so far: for a seekable stream, the offset in the file."""
        return self.produced

    def skip(self, size: int) -> int:
        """Pass over `size` bytes (fewer at the end of the stream); the count skipped."""
        if not self.seekable:
            skipped = 0
            while skipped < size and (chunk := self.read(min(size - skipped, CHUNK))):
                skipped += len(chunk)
            return skipped
        skipped = max(0, min(size, self._size - self.produced))
        self._budget.take_bytes(skipped)
        self.produced += skipped
        self._raw.seek(self.produced)
        return skipped

    def read(self, size: int) -> bytes:
        """Up to `size` (≤ CHUNK) bytes; b"" at the end of the stream."""
        try:
            data = self._source.read(min(size, CHUNK))
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
            raise ExtensionError(f"{self.label}: corrupt {self.format} data ({exc})") from None
        self.produced += len(data)
        self._budget.take_bytes(len(data))
        limits = self._budget.limits
        if (
            self.format != "plain"
            and self.produced > limits.ratio_floor_bytes
            and self.produced > limits.max_ratio * max(self._counter.consumed, 1)
        ):
            raise ExtensionError(
                f"{self.label}: {self.format} data expands more than {limits.max_ratio}:1 "
                "(decompression bomb?)"
            )
        return data
