"""Reading a base initramfs: sniff its compression, walk its newc cpio, pull files out.

Talos names the file `initramfs.xz` whatever the compression (zstd since 1.8), so the
magic decides: `FD 37 7A 58` xz, `28 B5 2F FD` zstd (talos-formats §2.1). Only the first
compressed member is read: a base initramfs is one member holding `init` and `rootfs.sqsh`.
"""

from __future__ import annotations

import lzma
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import zstandard

from extensions.compression import XZ_MAGIC, ZSTD_MAGIC

# Read here as well as in workers.assembly.cpio: web processes load this module, never assembly.
NEWC_MAGIC = b"070701"
_HEADER_LEN = 110
_TRAILER = "TRAILER!!!"


class InitramfsError(ValueError):
    """Not a readable base initramfs."""


def compression_of(path: Path) -> str:
    """ "xz" or "zstd" from the file's magic bytes."""
    with path.open("rb") as f:
        head = f.read(6)
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    raise InitramfsError(f"{path.name} is neither xz nor zstd compressed (magic {head[:4].hex()})")


@contextmanager
def _decompressed(path: Path) -> Iterator[BinaryIO]:
    kind = compression_of(path)
    with path.open("rb") as raw:
        if kind == "xz":
            with lzma.open(raw, "rb") as xz:
                yield xz  # type: ignore[misc]
        else:
            with zstandard.ZstdDecompressor().stream_reader(raw) as zst:
                yield zst


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    while len(data) < n:
        more = f.read(n - len(data))
        if not more:
            raise InitramfsError(f"truncated cpio archive while reading {what}")
        data += more
    return data


def _skip(f: BinaryIO, n: int, what: str) -> None:
    while n > 0:
        chunk = f.read(min(n, 1 << 20))
        if not chunk:
            raise InitramfsError(f"truncated cpio archive while reading {what}")
        n -= len(chunk)


def extract_members(path: Path, wanted: set[str], dest: Path) -> dict[str, Path]:
    """Copy the regular files named in `wanted` (e.g. {"init", "rootfs.sqsh"}) into `dest`;
    return name → path for those found. Raises InitramfsError for a corrupt archive."""
    found: dict[str, Path] = {}
    try:
        with _decompressed(path) as f:
            while True:
                header = _read_exact(f, _HEADER_LEN, "a header")
                if header[:6] != NEWC_MAGIC:
                    raise InitramfsError("not a newc cpio archive")
                fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
                mode, size, name_size = fields[1], fields[6], fields[11]
                name_bytes = _read_exact(f, name_size, "a file name")
                _skip(f, (-(_HEADER_LEN + name_size)) % 4, "padding")
                name = name_bytes.rstrip(b"\0").decode("utf-8", "replace").removeprefix("./")
                if name == _TRAILER:
                    return found
                is_regular = mode & 0o170000 == 0o100000
                if is_regular and name in wanted and name not in found:
                    out = dest / name.replace("/", "_")
                    with out.open("wb") as w:
                        _copy_exact(f, w, size, name)
                    found[name] = out
                else:
                    _skip(f, size, name)
                _skip(f, (-size) % 4, "padding")
    except InitramfsError:
        raise
    except (lzma.LZMAError, zstandard.ZstdError, EOFError, ValueError) as exc:
        raise InitramfsError(f"{path.name} cannot be decompressed: {exc}") from exc


def _copy_exact(f: BinaryIO, out: BinaryIO, n: int, what: str) -> None:
    while n > 0:
        chunk = f.read(min(n, 1 << 20))
        if not chunk:
            raise InitramfsError(f"truncated cpio archive while reading {what}")
        out.write(chunk)
        n -= len(chunk)
