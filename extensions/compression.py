"""Sniffing and bounded decompression of untrusted archives.

The format is decided by magic bytes, never by file name. Decompression is streamed in small
chunks; every produced byte is charged to a `Budget`, and the ratio of produced to consumed
bytes is capped (past a floor), so a small bomb is rejected after a few megabytes of output
with bounded memory, whatever its headers claim. The ratio counts all compressed streams of
one `Budget` together, so many layers that each stay under the floor cannot add up to a bomb.
A stream must also end properly: a gzip member needs its CRC and size trailer, a zstd frame
its last block (`finish` reads up to that end).
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import BinaryIO, Protocol

import zstandard

from extensions.budget import Budget
from extensions.errors import ExtensionError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"
ZSTD_MAX_WINDOW = 1 << 27  # 128 MiB: zstd's own default limit, stated explicitly
CHUNK = 64 * 1024
# Compressed bytes handed to the zstd decoder at once: a zstd block expands at most ~32768:1,
# so one call never produces more than ~8 MiB, however hostile the input.
ZSTD_FEED = 256


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


class _ZstdFrames:
    """Decompressed bytes of a sequence of zstd frames; an error if the input ends inside
    one (the library's own readers return a short result quietly there)."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._frame = self._decompressor.decompressobj()
        self._in_frame = False  # bytes of the current frame were fed, its end not seen yet
        self._input = memoryview(b"")
        self._output = bytearray()

    def read(self, size: int = -1, /) -> bytes:
        wanted = size if size >= 0 else CHUNK
        # Small pieces of input go in (bounding each call's output); small outputs gather
        # up to `wanted` so incompressible data does not cost a call per few hundred bytes.
        while len(self._output) < wanted:
            if not self._input:
                self._input = memoryview(self._raw.read(CHUNK))
                if not self._input:
                    if self._in_frame:
                        raise zstandard.ZstdError("the stream ends inside a frame")
                    break
            piece, self._input = self._input[:ZSTD_FEED], self._input[ZSTD_FEED:]
            self._output += self._decode(bytes(piece))
        data = bytes(self._output[:wanted])
        del self._output[:wanted]
        return data

    def _decode(self, piece: bytes) -> bytes:
        out = []
        while piece:
            self._in_frame = True
            out.append(self._frame.decompress(piece))
            piece = b""
            if self._frame.eof:  # the frame ended; what follows starts the next one
                piece = self._frame.unused_data
                self._frame = self._decompressor.decompressobj()
                self._in_frame = False
        return b"".join(out)


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
            self._source = _ZstdFrames(self._counter)
        else:
            self._source = self._counter
        self.produced = 0
        self._charged = 0  # compressed bytes already charged to the budget
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
        if self.format != "plain":
            consumed = self._counter.consumed - self._charged
            self._charged = self._counter.consumed
            if not self._budget.take_expansion(consumed, len(data)):
                raise ExtensionError(
                    f"{self.label}: {self.format} data expands more than "
                    f"{self._budget.limits.max_ratio}:1 (decompression bomb?)"
                )
        return data

    def finish(self) -> None:
        """Read a compressed stream to its end, so a missing trailer or an unfinished frame
        is an error too (the bytes after the tar's end count like any others)."""
        if self.format != "plain":
            while self.read(CHUNK):
                pass
