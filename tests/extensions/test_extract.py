from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from extensions.errors import ExtensionError
from extensions.limits import DEFAULT_LIMITS
from extensions.package import extract_extension, pack_extension, unpack_tar
from extensions.sources import stage_archive
from tests.extensions.builders import (
    Member,
    directory,
    file,
    gz,
    hardlink,
    hello_members,
    symlink,
    tar_bytes,
    write,
)


def test_extracts_canonical_tar_with_normalised_modes(tmp_path: Path) -> None:
    members = hello_members(
        [symlink("rootfs/usr/local/bin/hi", "hello"), file("rootfs/usr/local/data", b"d", 0o600)]
    )
    source = write(tmp_path / "src.tar", tar_bytes(members))
    pack_extension(source, tmp_path / "ext.tar", epoch=1)
    manifest = extract_extension(tmp_path / "ext.tar", tmp_path / "out")
    assert manifest.name == "hello"
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.yaml", "rootfs"]
    hello = out / "rootfs/usr/local/bin/hello"
    assert hello.read_bytes() == b"#!/bin/sh\necho hello\n"
    assert stat.S_IMODE(hello.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "rootfs/usr/local/data").stat().st_mode) == 0o644
    assert os.readlink(out / "rootfs/usr/local/bin/hi") == "hello"


def test_refuses_hostile_tar_and_leaves_nothing(tmp_path: Path) -> None:
    bad = write(
        tmp_path / "bad.tar",
        tar_bytes(hello_members([symlink("rootfs/usr/local/x", "../../../../../tmp")])),
    )
    with pytest.raises(ExtensionError, match="rootfs/usr/local/x: symlink"):
        extract_extension(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_existing_destination(tmp_path: Path) -> None:
    pack_extension(
        write(tmp_path / "src.tar", tar_bytes(hello_members())), tmp_path / "e.tar", epoch=1
    )
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("mine")
    with pytest.raises(FileExistsError):
        extract_extension(tmp_path / "e.tar", tmp_path / "out")
    assert (tmp_path / "out" / "keep").read_text() == "mine"


def _payload_members() -> list[Member]:
    return hello_members(
        [
            file("rootfs/usr/local/lib/a.bin", bytes(range(256)) * 5000),
            file("rootfs/usr/local/lib/empty", b""),
            hardlink("rootfs/usr/local/lib/b.bin", "rootfs/usr/local/lib/a.bin"),
        ]
    )


def test_plain_tar_contents_are_read_in_place(tmp_path: Path) -> None:
    tar = write(tmp_path / "ext.tar", tar_bytes(_payload_members()))
    spool = tmp_path / "spool"
    tree = stage_archive(tar, "ext.tar", spool, DEFAULT_LIMITS, in_place=True)
    assert not spool.exists()  # nothing copied: the spool was not even made
    for name in ("a.bin", "b.bin"):
        entry = tree.entries[f"rootfs/usr/local/lib/{name}"]
        assert entry.blob == tar
        assert entry.read_bytes() == bytes(range(256)) * 5000
    assert tree.entries["rootfs/usr/local/lib/empty"].read_bytes() == b""

    extract_extension(tar, tmp_path / "out")
    lib = tmp_path / "out/rootfs/usr/local/lib"
    assert (lib / "a.bin").read_bytes() == (lib / "b.bin").read_bytes()
    assert (lib / "a.bin").stat().st_ino != (lib / "b.bin").stat().st_ino  # copies, not links
    assert (lib / "a.bin").read_bytes() == bytes(range(256)) * 5000


def test_compressed_tar_is_still_spooled(tmp_path: Path) -> None:
    tar = write(tmp_path / "ext.tar.gz", gz(tar_bytes(_payload_members())))
    spool = tmp_path / "spool"
    tree = stage_archive(tar, "ext.tar.gz", spool, DEFAULT_LIMITS, in_place=True)
    entry = tree.entries["rootfs/usr/local/lib/a.bin"]
    assert entry.blob is not None
    assert entry.blob.parent == spool
    assert entry.offset is None
    assert entry.read_bytes() == bytes(range(256)) * 5000


@pytest.mark.parametrize("into_data", [1, 100_000, 1_279_999, 1_280_100])
def test_truncated_plain_tar_is_refused_in_place(tmp_path: Path, into_data: int) -> None:
    """Cut inside a.bin's data (1,280,000 bytes), or inside its padding."""
    whole = write(tmp_path / "whole.tar", tar_bytes(_payload_members()))
    staged = stage_archive(whole, "whole.tar", tmp_path / "spool", DEFAULT_LIMITS, in_place=True)
    offset = staged.entries["rootfs/usr/local/lib/a.bin"].offset
    assert offset is not None
    tar = write(tmp_path / "cut.tar", whole.read_bytes()[: offset + into_data])
    with pytest.raises(ExtensionError, match="truncated tar archive"):
        extract_extension(tar, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_archive_shrinking_after_staging_is_an_error(tmp_path: Path) -> None:
    tar = write(tmp_path / "ext.tar", tar_bytes(_payload_members()))
    tree = stage_archive(tar, "ext.tar", tmp_path / "spool", DEFAULT_LIMITS, in_place=True)
    entry = tree.entries["rootfs/usr/local/lib/a.bin"]
    assert entry.offset is not None
    with tar.open("r+b") as f:
        f.truncate(entry.offset + 10)
    with pytest.raises(ExtensionError, match="shrank"):
        entry.read_bytes()


def test_unpack_tar_keeps_links_as_links_and_names_beneath_dest(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    members = [
        file("a/f", b"data", 0o600),
        symlink("a/abs", str(outside)),
        symlink("a/up", "../../.."),
        directory("a/d"),
    ]
    out = tmp_path / "out"
    out.mkdir()
    unpack_tar(write(tmp_path / "t.tar", tar_bytes(members)), out)
    assert (out / "a/f").read_bytes() == b"data"
    assert os.readlink(out / "a/abs") == str(outside)
    assert os.readlink(out / "a/up") == "../../.."
    assert stat.S_ISDIR((out / "a/d").lstat().st_mode)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    "members",
    [
        [file("../escape", b"x")],
        [file("/abs", b"x")],
        [symlink("link", "/"), file("link/through", b"x")],
    ],
    ids=["dotdot", "absolute", "through-a-link"],
)
def test_unpack_tar_refuses_names_leaving_dest(tmp_path: Path, members: list[Member]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExtensionError):
        unpack_tar(write(tmp_path / "t.tar", tar_bytes(members)), out)
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "t.tar"]


def test_unpack_tar_writes_only_the_picked_paths(tmp_path: Path) -> None:
    members = [file("keep", b"k"), file("drop", b"d"), file("sub/x", b"x")]
    out = tmp_path / "out"
    out.mkdir()
    unpack_tar(write(tmp_path / "t.tar", tar_bytes(members)), out, lambda tree: ["keep"])
    assert [p.name for p in out.iterdir()] == ["keep"]
