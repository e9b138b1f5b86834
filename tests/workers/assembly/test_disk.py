"""Raw disk structure: partition table, BIOS boot code, ESP, BOOT XFS and META, reproducible.
Booting it is in tests/workers/test_boot_assets.py."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from workers.assembly.disk import DISK_SIZE, disk_layout, make_disk
from workers.assembly.meta import read_meta_partition
from workers.assembly.qemu_img import check_disk, convert_disk
from workers.assembly.run import run_tool
from workers.assembly.vfat import list_vfat

pytestmark = pytest.mark.integration
HOST_BIOS = Path("/usr/lib/grub/i386-pc")
HOST_EFI = Path("/usr/lib/grub/x86_64-efi")
EPOCH = 1700000000


def _disk(tmp_path: Path, name: str) -> Path:
    work = tmp_path / f"{name}-work"
    work.mkdir()
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"kernel" * 1000)
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"initrd" * 1000)
    return make_disk(
        tmp_path / name,
        workdir=work,
        kernel=kernel,
        initramfs=initrd,
        cmdline="console=ttyS0",
        grub_bios_dir=HOST_BIOS,
        grub_efi_dir=HOST_EFI,
        meta={0x0A: "net", 0x0C: "two"},
        name="Image Factory v1.0.0",
        epoch=EPOCH,
    )


def _part(disk: Path, name: str, dest: Path) -> Path:
    placed = disk_layout().by_name(name)
    with disk.open("rb") as f:
        f.seek(placed.offset)
        dest.write_bytes(f.read(placed.size))
    return dest


def test_layout_and_contents(tmp_path: Path) -> None:
    disk = _disk(tmp_path, "disk.raw")
    assert disk.stat().st_size == DISK_SIZE
    assert disk.stat().st_blocks * 512 < DISK_SIZE // 4  # sparse
    table = json.loads(run_tool(["sfdisk", "--json", disk]))["partitiontable"]
    assert [p["name"] for p in table["partitions"]] == ["EFI", "BIOS", "BOOT", "META"]
    assert "No problems found" in run_tool(["sgdisk", "-v", disk]).decode()

    data = disk.read_bytes()
    boot_img = (HOST_BIOS / "boot.img").read_bytes()
    bios = disk_layout().by_name("BIOS")
    assert data[:0x5C] == boot_img[:0x5C]
    assert struct.unpack_from("<Q", data, 0x5C)[0] == bios.first_lba
    assert struct.unpack_from("<Q", data, bios.offset + 0x1F4)[0] == bios.first_lba + 1
    assert data[450] == 0xEE
    assert data[510:512] == b"\x55\xaa"

    esp = _part(disk, "EFI", tmp_path / "esp.img")
    run_tool(["fsck.vfat", "-n", esp])
    assert "EFI/BOOT/BOOTX64.EFI" in list_vfat(esp)

    boot = _part(disk, "BOOT", tmp_path / "boot.img")
    run_tool(["xfs_repair", "-n", boot])
    names = run_tool(["xfs_db", "-r", "-c", "blockget -n", "-c", "ncheck", boot]).decode()
    for path in ("grub/grub.cfg", "A/vmlinuz", "A/initramfs.xz"):
        assert path in names

    meta = _part(disk, "META", tmp_path / "meta.img").read_bytes()
    assert read_meta_partition(meta) == {0x0A: b"net", 0x0C: b"two"}


def test_qcow2_conversion_checks_clean(tmp_path: Path) -> None:
    disk = _disk(tmp_path, "disk.raw")
    qcow2 = convert_disk(disk, tmp_path / "disk.qcow2", "qcow2", "cluster_size=8k")
    result = check_disk(qcow2, "qcow2")
    assert result["check-errors"] == 0
    info = json.loads(run_tool(["qemu-img", "info", "--output=json", qcow2]))
    assert info["virtual-size"] == DISK_SIZE
    assert info["cluster-size"] == 8192


def test_reproducible(tmp_path: Path) -> None:
    one = _disk(tmp_path, "1.raw")
    time.sleep(1.1)
    two = _disk(tmp_path, "2.raw")
    assert one.read_bytes() == two.read_bytes()
