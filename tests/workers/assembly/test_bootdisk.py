"""Disk layouts per bootloader and sector size, and the bundled test overlay on a disk:
partition tables (sfdisk / fdisk -b 4096), ESP files (mdir), the raw bytes at the overlay's
offset, the moved GPT entry array, META, reproducibility. Booting: test_boot_disks.py."""

from __future__ import annotations

import hashlib
import json
import struct
import time
from pathlib import Path

import pytest

from extensions.bundled import CATALOG_DIR
from extensions.overlay import PreparedOverlay, pack_overlay, prepare_overlay
from workers.assembly.bootdisk import (
    UKI_EFI_SIZE,
    GrubBoot,
    RawBlob,
    boot_disk_layout,
    make_boot_disk,
)
from workers.assembly.meta_partition import read_meta_partition
from workers.assembly.qemu_img import check_disk, convert_disk
from workers.assembly.run import run_tool
from workers.assembly.sdboot import write_sdboot_tree
from workers.assembly.vfat import list_vfat
from workers.errors import InvalidRequest

pytestmark = pytest.mark.integration
HOST_BIOS = Path("/usr/lib/grub/i386-pc")
HOST_EFI = Path("/usr/lib/grub/x86_64-efi")
SD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
EPOCH = 1700000000
TESTBOARD = CATALOG_DIR / "overlays" / "testboard"


def _overlay(tmp_path: Path) -> PreparedOverlay:
    packed = pack_overlay(TESTBOARD, tmp_path / "overlay.tar", epoch=EPOCH)
    return prepare_overlay(
        packed.tar.path, {"configTxtAppend": "extra=1"}, tmp_path / "overlay-prepared"
    )


def _disk(
    tmp_path: Path,
    name: str,
    bootloader: str,
    sector_size: int = 512,
    overlay: PreparedOverlay | None = None,
    disk_size: int = 0,
) -> Path:
    work = tmp_path / f"{name}-work"
    work.mkdir()
    kernel, initrd, uki = tmp_path / "vmlinuz", tmp_path / "initrd", tmp_path / "uki.efi"
    kernel.write_bytes(b"kernel" * 1000)
    initrd.write_bytes(b"initrd" * 1000)
    uki.write_bytes(b"uki" * 1000)
    grub = GrubBoot(kernel, initrd, "console=ttyS0", HOST_BIOS, HOST_EFI, "Factory")
    tree = None
    if bootloader != "grub":
        tree = work / "sdboot"
        tree.mkdir()
        write_sdboot_tree(tree, sd_boot=SD_BOOT, uki=uki, uki_name="factory-v1.0.0.efi")
    return make_boot_disk(
        tmp_path / name,
        workdir=work,
        bootloader=bootloader,
        epoch=EPOCH,
        meta={0x0A: "net"},
        grub=grub if bootloader != "sd-boot" else None,
        sdboot_tree=tree,
        esp_extra=overlay.esp_dir if overlay else None,
        raw_blob=RawBlob(overlay.raw_file, overlay.raw_offset)
        if overlay and overlay.raw_file
        else None,
        skip_lbas=overlay.partition_offset if overlay else 0,
        sector_size=sector_size,
        disk_size=disk_size,
    )


def _partition(disk: Path, layout_args: tuple[str, int, int], name: str, dest: Path) -> Path:
    placed = boot_disk_layout(*layout_args).by_name(name)
    with disk.open("rb") as f:
        f.seek(placed.offset)
        dest.write_bytes(f.read(placed.size))
    return dest


@pytest.mark.parametrize(
    ("bootloader", "names", "esp_files"),
    [
        ("grub", ["EFI", "BIOS", "BOOT", "META"], ["EFI/BOOT/BOOTX64.EFI"]),
        ("sd-boot", ["EFI", "META"], ["EFI/BOOT/BOOTX64.EFI", "EFI/Linux/factory-v1.0.0.efi"]),
        (
            "dual-boot",
            ["EFI", "BIOS", "BOOT", "META"],
            ["EFI/BOOT/BOOTX64.EFI", "EFI/Linux/factory-v1.0.0.efi", "loader/loader.conf"],
        ),
    ],
)
def test_layouts(tmp_path: Path, bootloader: str, names: list[str], esp_files: list[str]) -> None:
    disk = _disk(tmp_path, "disk.raw", bootloader)
    table = json.loads(run_tool(["sfdisk", "--json", disk]))["partitiontable"]
    assert table["label"] == "gpt"
    assert [p["name"] for p in table["partitions"]] == names
    assert "No problems found" in run_tool(["sgdisk", "-v", disk]).decode()
    esp = _partition(disk, (bootloader, 512, 0), "EFI", tmp_path / "esp.img")
    run_tool(["fsck.vfat", "-n", esp])
    files = list_vfat(esp)
    for path in esp_files:
        assert path in files
    if bootloader != "grub":
        assert table["partitions"][0]["size"] * 512 == UKI_EFI_SIZE
    meta = _partition(disk, (bootloader, 512, 0), "META", tmp_path / "meta.img").read_bytes()
    expected = {0x0A: b"net"} | ({0x11: b"dual-boot"} if bootloader == "dual-boot" else {})
    assert read_meta_partition(meta) == expected


def test_4096_byte_sectors(tmp_path: Path) -> None:
    disk = _disk(tmp_path, "disk.raw", "sd-boot", sector_size=4096)
    listing = run_tool(["fdisk", "-b", "4096", "-l", disk]).decode()
    assert "Sector size (logical/physical): 4096 bytes / 4096 bytes" in listing
    assert "Disklabel type: gpt" in listing
    data = disk.read_bytes()[: 3 * 4096]
    assert data[4096 : 4096 + 8] == b"EFI PART"
    assert struct.unpack_from("<Q", data, 4096 + 72)[0] == 2  # entry array LBA (4 KiB units)
    layout = boot_disk_layout("sd-boot", 4096)
    assert layout.by_name("EFI").first_lba == 256  # 1 MiB
    esp = _partition(disk, ("sd-boot", 4096, 0), "EFI", tmp_path / "esp.img")
    assert struct.unpack_from("<H", esp.read_bytes(), 11)[0] == 4096  # FAT bytes per sector
    run_tool(["fsck.vfat", "-n", esp])


def test_overlay_files_raw_bytes_and_moved_entry_array(tmp_path: Path) -> None:
    overlay = _overlay(tmp_path)
    assert overlay.raw_file is not None
    disk = _disk(tmp_path, "disk.raw", "grub", overlay=overlay)
    run_tool(["sgdisk", "-v", disk])
    raw = overlay.raw_file.read_bytes()
    with disk.open("rb") as f:
        f.seek(overlay.raw_offset)
        assert f.read(len(raw)) == raw
        f.seek(512)
        header = f.read(92)
    assert raw.startswith(b"IMAGE-FACTORY-TESTBOARD-RAW-MARKER")
    assert struct.unpack_from("<Q", header, 72)[0] == 2 + overlay.partition_offset
    esp = _partition(disk, ("grub", 512, overlay.partition_offset), "EFI", tmp_path / "esp.img")
    files = list_vfat(esp)
    assert "testboard/README.txt" in files
    assert "config.txt" in files
    config = run_tool(["mtype", "-i", esp, "::/config.txt"], env={"MTOOLS_SKIP_CHECK": "1"})
    assert config.decode().endswith("board=testboard\nconsole=serial0\nextra=1\n")


def test_overlay_raw_write_must_miss_the_4k_gpt(tmp_path: Path) -> None:
    overlay = _overlay(tmp_path)
    # With 4 KiB sectors, LBA 2 (8 KiB) is where the entry array starts without a skip.
    assert overlay.raw_file is not None
    moved = PreparedOverlay(
        overlay.manifest, overlay.esp_dir, overlay.raw_file, 2 * 4096, 0, overlay.kernel_args
    )
    with pytest.raises(InvalidRequest, match="4096-byte-sector disk"):
        _disk(tmp_path, "disk.raw", "sd-boot", sector_size=4096, overlay=moved)


def test_bigger_disk_stays_sparse_with_the_backup_table_at_the_end(tmp_path: Path) -> None:
    size = 8 * 1024 * 1024 * 1024
    disk = _disk(tmp_path, "disk.raw", "sd-boot", disk_size=size)
    assert disk.stat().st_size == size
    assert disk.stat().st_blocks * 512 < 64 * 1024 * 1024
    with disk.open("rb") as f:
        f.seek(size - 512)
        assert f.read(8) == b"EFI PART"
    assert "No problems found" in run_tool(["sgdisk", "-v", disk]).decode()
    with pytest.raises(ValueError, match="needs at least"):
        boot_disk_layout("sd-boot", disk_size=100 * 1024 * 1024)


def test_reproducible(tmp_path: Path) -> None:
    overlay = _overlay(tmp_path)
    one = _disk(tmp_path, "1.raw", "dual-boot", overlay=overlay)
    time.sleep(1.1)
    two = _disk(tmp_path, "2.raw", "dual-boot", overlay=overlay)
    assert _sha256(one) == _sha256(two)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_qcow2_conversion_checks_clean(tmp_path: Path) -> None:
    disk = _disk(tmp_path, "disk.raw", "grub")
    qcow2 = convert_disk(disk, tmp_path / "disk.qcow2", "qcow2", "cluster_size=8k")
    assert check_disk(qcow2, "qcow2")["check-errors"] == 0
    info = json.loads(run_tool(["qemu-img", "info", "--output=json", qcow2]))
    assert info["virtual-size"] == disk.stat().st_size
    assert info["cluster-size"] == 8192
