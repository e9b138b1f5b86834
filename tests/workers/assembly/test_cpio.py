"""newc archives: order, owner, dates, reproducibility, and reading a member back."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.assembly.cpio import extract_newc_file, list_cpio, make_cpio
from workers.assembly.run import run_tool

pytestmark = pytest.mark.integration
EPOCH = 1700000000


def _tree(root: Path) -> Path:
    (root / "b").mkdir(parents=True)
    (root / "b/z.txt").write_text("z")
    (root / "a.sqsh").write_bytes(b"layer" * 100)
    (root / "B.txt").write_text("upper case sorts first")
    (root / "b.dir").mkdir()
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o750)
    return root


def test_depth_first_byte_order_without_the_root(tmp_path: Path) -> None:
    archive = make_cpio(_tree(tmp_path / "t"), tmp_path / "x.cpio", epoch=EPOCH)
    assert list_cpio(archive) == ["B.txt", "a.sqsh", "b", "b/z.txt", "b.dir", "run.sh"]


def test_owner_mode_and_time_are_fixed(tmp_path: Path) -> None:
    archive = make_cpio(_tree(tmp_path / "t"), tmp_path / "x.cpio", epoch=EPOCH)
    with archive.open("rb") as f:
        listing = run_tool(["cpio", "-tv", "--quiet"], stdin=f).decode().splitlines()
    assert all(" root     root " in line for line in listing), listing
    assert all("Nov 14  2023" in line for line in listing), listing
    modes = {line.split()[-1]: line.split()[0] for line in listing}
    assert modes == {
        "B.txt": "-rw-r--r--",
        "a.sqsh": "-rw-r--r--",
        "b": "drwxr-xr-x",
        "b/z.txt": "-rw-r--r--",
        "b.dir": "drwxr-xr-x",
        "run.sh": "-rwxr-xr-x",
    }


def test_reproducible_across_directories_and_umask(tmp_path: Path) -> None:
    one = make_cpio(_tree(tmp_path / "one"), tmp_path / "1.cpio", epoch=EPOCH)
    other = _tree(tmp_path / "deeper" / "two")
    (other / "b/z.txt").chmod(0o600)
    two = make_cpio(other, tmp_path / "2.cpio", epoch=EPOCH)
    assert one.read_bytes() == two.read_bytes()


def test_extract_a_file_from_concatenated_archives(tmp_path: Path) -> None:
    first = make_cpio(_tree(tmp_path / "one"), tmp_path / "1.cpio", epoch=EPOCH)
    (tmp_path / "second").mkdir()
    (tmp_path / "second/rootfs.sqsh").write_bytes(b"R" * 1234)
    second = make_cpio(tmp_path / "second", tmp_path / "2.cpio", epoch=EPOCH)
    joined = tmp_path / "joined.cpio"
    joined.write_bytes(first.read_bytes() + bytes(512) + second.read_bytes())
    out = extract_newc_file(joined, "rootfs.sqsh", tmp_path / "out")
    assert out.read_bytes() == b"R" * 1234
    assert extract_newc_file(joined, "/a.sqsh", tmp_path / "a").read_bytes() == b"layer" * 100
    with pytest.raises(KeyError):
        extract_newc_file(joined, "missing", tmp_path / "missing")
