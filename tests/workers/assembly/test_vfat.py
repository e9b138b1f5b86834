"""FAT images: fsck-clean, the files in place, byte-identical from two builds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from workers.assembly.run import run_tool
from workers.assembly.vfat import list_vfat, make_vfat

pytestmark = pytest.mark.integration
EPOCH = 1700000000


def _tree(root: Path) -> Path:
    (root / "EFI/BOOT").mkdir(parents=True)
    (root / "EFI/BOOT/BOOTX64.EFI").write_bytes(b"MZ" + bytes(5000))
    (root / "loader").mkdir()
    (root / "loader/loader.conf").write_text("timeout 10\n")
    return root


def _image(tmp_path: Path, name: str, src: Path) -> Path:
    return make_vfat(
        tmp_path / name, 64 * 1024 * 1024, src=src, label="EFI", volume_id=0x1234ABCD, epoch=EPOCH
    )


def test_contents_and_fsck(tmp_path: Path) -> None:
    image = _image(tmp_path, "esp.img", _tree(tmp_path / "src"))
    assert list_vfat(image) == [
        "EFI",
        "EFI/BOOT",
        "EFI/BOOT/BOOTX64.EFI",
        "loader",
        "loader/loader.conf",
    ]
    fsck = run_tool(["fsck.vfat", "-n", image]).decode()
    assert "5 files" in fsck or "files" in fsck
    info = run_tool(["minfo", "-i", image, "::"], env={"MTOOLS_SKIP_CHECK": "1"}).decode()
    assert "serial number: 1234ABCD" in info


def test_reproducible(tmp_path: Path) -> None:
    one = _image(tmp_path, "1.img", _tree(tmp_path / "one"))
    time.sleep(1.1)
    src = _tree(tmp_path / "deeper/two")
    os.utime(src / "loader/loader.conf", (5, 5))
    two = _image(tmp_path, "2.img", src)
    assert one.read_bytes() == two.read_bytes()
