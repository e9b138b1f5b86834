"""XFS from a protofile: clean per xfs_repair, files in place, pinned times, same bytes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from workers.assembly.run import run_tool
from workers.assembly.xfs import MIN_SIZE, make_xfs, write_protofile

pytestmark = pytest.mark.integration
EPOCH = 1700000000
FS_UUID = "24c73076-4092-85dd-9d98-686a2dbf6d81"


def _tree(root: Path) -> Path:
    (root / "grub").mkdir(parents=True)
    (root / "grub/grub.cfg").write_text("set timeout=0\n")
    (root / "A").mkdir()
    (root / "A/vmlinuz").write_bytes(b"\x7fELF" * 75_000)
    (root / "A/initramfs.xz").write_bytes(b"\x28\xb5\x2f\xfd" + bytes(70_000))
    return root


def _image(tmp_path: Path, name: str, src: Path) -> Path:
    return make_xfs(tmp_path / name, MIN_SIZE, src=src, label="BOOT", fs_uuid=FS_UUID, epoch=EPOCH)


def test_protofile_lists_files_before_directories(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    (src / "top.txt").write_text("x")
    text = write_protofile(src, tmp_path / "proto").read_text().splitlines()
    assert text[:4] == ["/dev/null", "0 0", "d--755 0 0", f" top.txt ---644 0 0 {src / 'top.txt'}"]
    assert " A d--755 0 0" in text
    assert text[-1] == "$"


def test_image_is_consistent_and_dated_at_the_epoch(tmp_path: Path) -> None:
    image = _image(tmp_path, "boot.img", _tree(tmp_path / "src"))
    run_tool(["xfs_repair", "-n", image])
    listing = run_tool(["xfs_db", "-r", "-c", "blockget -n", "-c", "ncheck", image]).decode()
    assert sorted(line.split()[1] for line in listing.splitlines()) == [
        "A/.",
        "A/initramfs.xz",
        "A/vmlinuz",
        "grub/.",
        "grub/grub.cfg",
    ]
    root = run_tool(["xfs_db", "-r", "-c", "inode 128", "-c", "print", image]).decode()
    assert "core.mtime.sec = Tue Nov 14 22:13:20 2023" in root
    assert "v3.crtime.sec = Tue Nov 14 22:13:20 2023" in root
    assert "v3.crc = " in root
    assert "(correct)" in root
    label = run_tool(["xfs_db", "-r", "-c", "label", "-c", "uuid", image]).decode()
    assert 'label = "BOOT"' in label
    assert FS_UUID in label


def test_reproducible(tmp_path: Path) -> None:
    one = _image(tmp_path, "1.img", _tree(tmp_path / "one"))
    time.sleep(1.1)
    two = _image(tmp_path, "2.img", _tree(tmp_path / "deeper/two"))
    assert one.read_bytes() == two.read_bytes()


def test_too_small_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least"):
        make_xfs(
            tmp_path / "x", MIN_SIZE - 1, src=tmp_path, label="B", fs_uuid=FS_UUID, epoch=EPOCH
        )
