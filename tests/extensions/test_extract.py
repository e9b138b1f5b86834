from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from extensions.errors import ExtensionError
from extensions.package import extract_extension, pack_extension
from tests.extensions.builders import file, hello_members, symlink, tar_bytes, write


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
