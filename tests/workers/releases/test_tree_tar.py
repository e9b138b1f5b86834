from __future__ import annotations

import os
import tarfile
from pathlib import Path

from workers.releases.tree_tar import write_tree_tar


def _tree(root: Path) -> Path:
    (root / "b/sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "b/sub/z.ko").write_bytes(b"\x7fELF")
    (root / "b/sub/z.ko").chmod(0o600)
    (root / "B").write_text("upper case sorts first in byte order")
    (root / "link").symlink_to("a.txt")
    return root


def test_tar_is_sorted_owned_by_root_and_clamped_to_the_epoch(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    dest = write_tree_tar(src, tmp_path / "t.tar", "usr/lib/modules/k", 1234)

    with tarfile.open(dest) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == [
        "usr",
        "usr/lib",
        "usr/lib/modules",
        "usr/lib/modules/k",
        "usr/lib/modules/k/B",
        "usr/lib/modules/k/a.txt",
        "usr/lib/modules/k/b",
        "usr/lib/modules/k/b/sub",
        "usr/lib/modules/k/b/sub/z.ko",
        "usr/lib/modules/k/link",
    ]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 1234)}
    assert members[8].mode == 0o644  # normalised: the 0600 on disk does not leak in
    assert members[9].issym()
    assert members[9].linkname == "a.txt"
    assert not any(m.pax_headers for m in members)


def test_same_tree_gives_same_bytes_whatever_the_file_times(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    first = write_tree_tar(src, tmp_path / "1.tar", "", 99).read_bytes()
    os.utime(src / "a.txt", (5, 5))
    second = write_tree_tar(src, tmp_path / "2.tar", "", 99).read_bytes()
    assert first == second
    with tarfile.open(tmp_path / "1.tar") as tar:
        assert tar.getnames()[0] == "B"


def test_umask_does_not_change_the_bytes(tmp_path: Path) -> None:
    open_tree = _tree(tmp_path / "open")
    old = os.umask(0o077)
    try:
        tight_tree = _tree(tmp_path / "tight")
        (tight_tree / "run.sh").write_text("#!/bin/sh\n")
        (tight_tree / "run.sh").chmod(0o700)
    finally:
        os.umask(old)
    (open_tree / "run.sh").write_text("#!/bin/sh\n")
    (open_tree / "run.sh").chmod(0o755)
    first = write_tree_tar(open_tree, tmp_path / "1.tar", "", 7).read_bytes()
    second = write_tree_tar(tight_tree, tmp_path / "2.tar", "", 7).read_bytes()
    assert first == second
    with tarfile.open(tmp_path / "1.tar") as tar:
        assert tar.getmember("run.sh").mode == 0o755
