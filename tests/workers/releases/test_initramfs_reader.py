from __future__ import annotations

import io
import lzma
from pathlib import Path

import pytest
import zstandard

from workers.releases.initramfs_reader import InitramfsError, compression_of, extract_members


def _newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")]):
        encoded = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        out.write(header + encoded)
        out.write(b"\0" * (-(len(header) + len(encoded)) % 4))
        out.write(data + b"\0" * (-len(data) % 4))
    return out.getvalue()


ARCHIVE = _newc(
    [("bin", 0o40755, b""), ("init", 0o100755, b"#!/bin/sh\n"), ("rootfs.sqsh", 0o100644, b"hsqs!")]
)


@pytest.mark.parametrize(
    ("kind", "compress"),
    [("zstd", zstandard.ZstdCompressor().compress), ("xz", lzma.compress)],
)
def test_members_are_extracted_whatever_the_compression(
    tmp_path: Path, kind: str, compress: object
) -> None:
    path = tmp_path / "initramfs.xz"
    path.write_bytes(compress(ARCHIVE))  # type: ignore[operator]
    assert compression_of(path) == kind

    found = extract_members(path, {"init", "rootfs.sqsh", "missing"}, tmp_path)
    assert sorted(found) == ["init", "rootfs.sqsh"]
    assert found["rootfs.sqsh"].read_bytes() == b"hsqs!"


def test_uncompressed_or_garbage_input_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "initramfs.xz"
    path.write_bytes(ARCHIVE)
    with pytest.raises(InitramfsError, match="neither xz nor zstd"):
        extract_members(path, {"init"}, tmp_path)


def test_corrupt_compressed_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "initramfs.xz"
    path.write_bytes(zstandard.ZstdCompressor().compress(ARCHIVE)[:40])
    with pytest.raises(InitramfsError):
        extract_members(path, {"init"}, tmp_path)


def test_compressed_non_cpio_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "initramfs.xz"
    path.write_bytes(zstandard.ZstdCompressor().compress(b"x" * 500))
    with pytest.raises(InitramfsError, match="not a newc cpio"):
        extract_members(path, {"init"}, tmp_path)
