"""Streamed, multi-threaded compression whose output does not depend on the CPU count.

Measured with zstd 1.5.4, xz 5.4.1 and pigz 2.6: `zstd -T0`, `xz -T0` (always the
multi-threaded block format, also on one CPU; plain `-T1` would switch to a different
single-threaded format) and `pigz -p N` give the same bytes for any N.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from workers.assembly.run import run_tool


class Codec(StrEnum):
    ZSTD = "zstd"
    XZ = "xz"
    GZIP = "gzip"


# Levels as the Talos imager uses them: initramfs/layers zstd -18; disk images xz -0 / pigz -6.
DEFAULT_LEVELS = {Codec.ZSTD: 18, Codec.XZ: 0, Codec.GZIP: 6}
# What the factory compresses for each extension it adds (the SquashFS blocks of its layer, its
# firmware member) is compressed at a lower level than Talos' -18: that is the time a cold
# build waits for. On the benchmark's 120 MiB extension (bench/RESULTS.md, issue 21), zstd -18
# took 86 s and -9 4.8 s for 3 % more bytes; tar2sqfs took 8.1 s and 1.4 s for 3.6 % more.
EXTENSION_ZSTD_LEVEL = 9


def compress_argv(codec: Codec, level: int | None = None) -> list[str]:
    """The command that compresses stdin to stdout with `codec`."""
    level = DEFAULT_LEVELS[codec] if level is None else level
    if codec is Codec.ZSTD:
        return ["zstd", "-q", f"-{level}", "-T0", "-c"]
    if codec is Codec.XZ:
        # The kernel's XZ decoder only knows CRC32 (or no) checks.
        return ["xz", "-q", f"-{level}", "--check=crc32", "-T0", "-c"]
    return ["pigz", "-q", f"-{level}", "--no-time", "--no-name", "-c"]


def compress_file(src: Path, dest: Path, codec: Codec, *, level: int | None = None) -> Path:
    """Compress `src` into `dest`, streaming through the tool (nothing is held in memory)."""
    with src.open("rb") as reader, dest.open("wb") as writer:
        run_tool(compress_argv(codec, level), stdin=reader, stdout=writer)
    return dest


_MAGICS = {
    b"\x28\xb5\x2f\xfd": ["zstd", "-q", "-d", "-c"],
    b"\xfd7zXZ": ["xz", "-q", "-d", "-c"],
    b"\x1f\x8b": ["pigz", "-q", "-d", "-c"],
}


def decompress_file(src: Path, dest: Path) -> Path:
    """Decompress `src` (zstd, xz or gzip, told apart by magic) into `dest`; an uncompressed
    file is copied. Readers must sniff: Talos names zstd initramfs files `initramfs.xz`."""
    with src.open("rb") as sniff:
        head = sniff.read(6)
    argv = next((a for magic, a in _MAGICS.items() if head.startswith(magic)), ["cat"])
    with src.open("rb") as reader, dest.open("wb") as writer:
        run_tool(argv, stdin=reader, stdout=writer)
    return dest
