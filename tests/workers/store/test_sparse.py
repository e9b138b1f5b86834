"""copy_sparse: same bytes and length as the source, holes kept as holes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from workers.store import LocalStore
from workers.store.sparse import copy_sparse

MIB = 1 << 20


def _sparse_disk(path: Path) -> bytes:
    """A 256 MiB file with data at its start, middle and end and holes in between; the
    bytes it reads as."""
    pieces = {0: os.urandom(MIB), 100 * MIB: b"middle" * 1000, 256 * MIB - 4096: b"\xff" * 4096}
    with path.open("wb") as out:
        out.truncate(256 * MIB)
        for offset, data in pieces.items():
            out.seek(offset)
            out.write(data)
    return path.read_bytes()


def _allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


def test_copy_keeps_bytes_length_and_holes(tmp_path: Path) -> None:
    src, dest = tmp_path / "disk.raw", tmp_path / "copy.raw"
    expected = _sparse_disk(src)

    copy_sparse(src, dest)

    assert dest.read_bytes() == expected
    assert _allocated(dest) < 8 * MIB  # the 250 MiB of holes stayed holes


def test_trailing_hole_and_empty_file(tmp_path: Path) -> None:
    src, dest = tmp_path / "tail.raw", tmp_path / "copy.raw"
    with src.open("wb") as out:
        out.write(b"head")
        out.truncate(64 * MIB)
    copy_sparse(src, dest)
    assert dest.stat().st_size == 64 * MIB
    assert dest.read_bytes()[:4] == b"head"
    assert _allocated(dest) < MIB

    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    dest.write_bytes(b"old contents are replaced")
    copy_sparse(empty, dest)
    assert dest.read_bytes() == b""


def test_falls_back_to_read_write_when_the_kernel_cannot_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    src, dest = tmp_path / "disk.raw", tmp_path / "copy.raw"
    expected = _sparse_disk(src)
    copy_sparse(src, dest)
    assert dest.read_bytes() == expected
    assert _allocated(dest) < 8 * MIB


def test_other_errors_are_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "copy_file_range", broken)
    src = tmp_path / "disk.raw"
    _sparse_disk(src)
    with pytest.raises(OSError, match="Input/output error"):
        copy_sparse(src, tmp_path / "copy.raw")


def test_local_store_keeps_disk_images_sparse(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    src = tmp_path / "disk.raw"
    expected = _sparse_disk(src)

    store.put_file("blobs/disk", src)
    store.download("blobs/disk", tmp_path / "back.raw")

    for copy in (store.path("blobs/disk"), tmp_path / "back.raw"):
        assert copy.read_bytes() == expected
        assert _allocated(copy) < 8 * MIB
