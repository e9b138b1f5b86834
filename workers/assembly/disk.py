"""Raw GPT disk images booting with GRUB under BIOS and UEFI, assembled in a plain file.

Layout (Talos "grub" layout, talos-formats §4.2-4.3), sizes scaled down:

| # | name | type       | size    | contents                                             |
|---|------|------------|---------|------------------------------------------------------|
| 1 | EFI  | ESP        | 100 MiB | FAT32: `EFI/BOOT/BOOTX64.EFI` (GRUB, x86_64-efi)     |
| 2 | BIOS | BIOS boot  | 1 MiB   | GRUB `core.img` (i386-pc); GPT attribute bit 2 set   |
| 3 | BOOT | Linux data | 300 MiB | XFS: `grub/grub.cfg`, `A/vmlinuz`, `A/initramfs.xz`  |
| 4 | META | Linux data | 1 MiB   | Talos ADV with the schematic's META values (twice)   |

Talos makes BOOT 2000 MiB to hold two kernel/initramfs generations for A/B upgrades; an image
from this factory boots one generation, and 300 MiB is the smallest XFS that xfsprogs makes.
The disk is 404 MiB (1 MiB for the primary GPT, the partitions, 1 MiB for the backup GPT).
Both GRUBs have the prefix `(hd0,gpt3)/grub`, as Talos builds them, so BOOT must stay
partition 3. The BIOS path needs no grub-install: the MBR gets `boot.img` patched to load
`core.img` from the BIOS partition. Everything is written with seek + write into a sparse
file; partition GUIDs are derived from their names, so the same inputs give the same bytes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

from workers.assembly.gpt import (
    BIOS_BOOT_TYPE,
    ESP_TYPE,
    LEGACY_BIOS_BOOTABLE,
    LINUX_DATA_TYPE,
    MIB,
    Layout,
    Partition,
    guid_from_label,
    plan_layout,
    write_gpt,
)
from workers.assembly.grub import (
    BIOS_MODULES,
    EFI_MODULES,
    grub_config,
    make_grub_image,
    patch_bios_boot,
)
from workers.assembly.meta import make_meta_partition
from workers.assembly.vfat import make_vfat
from workers.assembly.xfs import make_xfs

EFI_SIZE = 100 * MIB
BIOS_SIZE = MIB
BOOT_SIZE = 300 * MIB
META_SIZE = MIB
DISK_SIZE = MIB + EFI_SIZE + BIOS_SIZE + BOOT_SIZE + META_SIZE + MIB
GRUB_PREFIX = "(hd0,gpt3)/grub"
KERNEL_PATH = "/A/vmlinuz"
INITRD_PATH = "/A/initramfs.xz"
_CHUNK = MIB


def disk_layout() -> Layout:
    return plan_layout(
        [
            Partition("EFI", ESP_TYPE, EFI_SIZE),
            Partition("BIOS", BIOS_BOOT_TYPE, BIOS_SIZE, attributes=LEGACY_BIOS_BOOTABLE),
            Partition("BOOT", LINUX_DATA_TYPE, BOOT_SIZE),
            Partition("META", LINUX_DATA_TYPE, META_SIZE),
        ],
        disk_size=DISK_SIZE,
    )


def make_disk(
    dest: Path,
    *,
    workdir: Path,
    kernel: Path,
    initramfs: Path,
    cmdline: str,
    grub_bios_dir: Path,
    grub_efi_dir: Path,
    meta: dict[int, str],
    name: str,
    epoch: int,
) -> Path:
    """Build the raw disk image `dest` booting `kernel` + `initramfs` with `cmdline`."""
    layout = disk_layout()
    boot = _boot_partition(workdir, kernel, initramfs, cmdline, name, epoch)
    esp = _esp_partition(workdir, grub_efi_dir, epoch)
    core = make_grub_image(
        grub_bios_dir,
        workdir / "core.img",
        image_format="i386-pc",
        prefix=GRUB_PREFIX,
        modules=BIOS_MODULES,
    )
    bios = layout.by_name("BIOS")
    if core.stat().st_size > bios.size:
        raise ValueError(f"GRUB core.img ({core.stat().st_size} bytes) exceeds the BIOS partition")
    mbr_code, core_img = patch_bios_boot(
        (grub_bios_dir / "boot.img").read_bytes(), core.read_bytes(), bios.first_lba
    )
    with dest.open("wb") as disk:
        disk.truncate(layout.disk_size)
        write_gpt(disk, layout)
        disk.seek(0)
        disk.write(mbr_code)
        disk.seek(bios.offset)
        disk.write(core_img)
        _copy_sparse(esp, disk, layout.by_name("EFI").offset)
        _copy_sparse(boot, disk, layout.by_name("BOOT").offset)
        disk.seek(layout.by_name("META").offset)
        disk.write(make_meta_partition(meta))
    return dest


def _boot_partition(
    workdir: Path, kernel: Path, initramfs: Path, cmdline: str, name: str, epoch: int
) -> Path:
    tree = workdir / "boot-tree"
    (tree / "grub").mkdir(parents=True)
    (tree / "A").mkdir()
    shutil.copyfile(kernel, tree / KERNEL_PATH.lstrip("/"))
    shutil.copyfile(initramfs, tree / INITRD_PATH.lstrip("/"))
    (tree / "grub" / "grub.cfg").write_text(
        grub_config(title=name, kernel=KERNEL_PATH, initrd=INITRD_PATH, cmdline=cmdline)
    )
    return make_xfs(
        workdir / "boot.img",
        BOOT_SIZE,
        src=tree,
        label="BOOT",
        fs_uuid=str(guid_from_label("BOOT")),
        epoch=epoch,
    )


def _esp_partition(workdir: Path, grub_efi_dir: Path, epoch: int) -> Path:
    tree = workdir / "esp-tree"
    (tree / "EFI" / "BOOT").mkdir(parents=True)
    make_grub_image(
        grub_efi_dir,
        tree / "EFI" / "BOOT" / "BOOTX64.EFI",
        image_format="x86_64-efi",
        prefix=GRUB_PREFIX,
        modules=EFI_MODULES,
    )
    return make_vfat(
        workdir / "esp.img",
        EFI_SIZE,
        src=tree,
        label="EFI",
        volume_id=int.from_bytes(guid_from_label("EFI").bytes[:4], "big"),
        epoch=epoch,
        fat_bits=32,
    )


def _copy_sparse(src: Path, disk: BinaryIO, offset: int) -> None:
    """Copy `src` into `disk` at `offset`, skipping all-zero chunks (they stay holes)."""
    zeros = bytes(_CHUNK)
    with src.open("rb") as f:
        position = offset
        while chunk := f.read(_CHUNK):
            if chunk != zeros[: len(chunk)]:
                disk.seek(position)
                disk.write(chunk)
            position += len(chunk)
