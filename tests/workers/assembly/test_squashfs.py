"""SquashFS layers: content, ownership, and the same bytes from another temp dir and clock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workers.assembly.run import run_tool
from workers.assembly.squashfs import extract_squashfs, list_squashfs, make_squashfs

pytestmark = pytest.mark.integration
EPOCH = 1700000000


def _tree(root: Path) -> Path:
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "usr/local/bin/hello").write_text("#!/bin/sh\necho hello\n")
    (root / "usr/local/bin/hello").chmod(0o755)
    (root / "usr/lib/firmware").mkdir(parents=True)
    (root / "usr/lib/firmware/blob.bin").write_bytes(b"\x00\x01" * 1000)
    (root / "usr/local/bin/link").symlink_to("hello")
    return root


def test_lists_every_entry_owned_by_root(tmp_path: Path) -> None:
    image = make_squashfs(_tree(tmp_path / "src"), tmp_path / "a.sqsh", epoch=EPOCH)
    assert list_squashfs(image) == [
        ".",
        "usr",
        "usr/lib",
        "usr/lib/firmware",
        "usr/lib/firmware/blob.bin",
        "usr/local",
        "usr/local/bin",
        "usr/local/bin/hello",
        "usr/local/bin/link",
    ]
    long_listing = run_tool(["unsquashfs", "-lls", image]).decode()
    owners = {line.split()[1] for line in long_listing.splitlines() if line[:1] in "-dl"}
    assert owners == {"root/root"}
    assert "2023-11-14 22:13" in long_listing


def test_same_bytes_from_other_dirs_times_and_timezones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_squashfs(_tree(tmp_path / "one"), tmp_path / "1.sqsh", epoch=EPOCH)
    second_src = _tree(tmp_path / "elsewhere" / "two")
    os.utime(second_src / "usr/local/bin/hello", (1, 1))
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    second = make_squashfs(second_src, tmp_path / "2.sqsh", epoch=EPOCH)
    assert first.read_bytes() == second.read_bytes()


def test_extract_selected_paths(tmp_path: Path) -> None:
    image = make_squashfs(_tree(tmp_path / "src"), tmp_path / "a.sqsh", epoch=EPOCH)
    out = extract_squashfs(image, tmp_path / "out", "usr/lib/firmware")
    assert (out / "usr/lib/firmware/blob.bin").read_bytes() == b"\x00\x01" * 1000
    assert not (out / "usr/local").exists()
