"""GPT disk images for every bootloader layout, sector size and board overlay, in a plain file.

Layouts (talos-formats §4.2-4.3), sizes scaled down:

| # | grub                       | sd-boot                        | dual-boot                      |
|---|----------------------------|--------------------------------|--------------------------------|
| 1 | EFI 100 MiB: GRUB EFI      | EFI 401 MiB: sd-boot + UKI     | EFI 401 MiB: sd-boot + UKI     |
| 2 | BIOS 1 MiB: GRUB core.img  | META 1 MiB                     | BIOS 1 MiB: GRUB core.img      |
| 3 | BOOT 300 MiB XFS: grub.cfg,|                                | BOOT 300 MiB XFS (as grub)     |
|   | A/vmlinuz, A/initramfs.xz  |                                |                                |
| 4 | META 1 MiB                 |                                | META 1 MiB                     |

Talos makes BOOT 2000 MiB to hold two kernel/initramfs generations for A/B upgrades; an image
from this factory boots one generation, and 300 MiB is the smallest XFS that xfsprogs makes.
Both GRUBs have the prefix `(hd0,gpt3)/grub`, as Talos builds them, so BOOT must stay
partition 3. The BIOS path needs no grub-install: the MBR gets `boot.img` patched to load
`core.img` from the BIOS partition.

The systemd-boot ESP is EFI + BIOS + BOOT (Talos: 100 + 1 + BootSize), the room two UKIs need.
Dual-boot starts GRUB under BIOS and systemd-boot under UEFI, and writes META key 0x11
(DiskImageBootloader) = `dual-boot` as Talos does for amd64 images.

Sector size 512 or 4096: every LBA of the GPT is that size, the FAT gets `-S <size>` (and FAT32
only when it keeps FAT32's minimum cluster count, otherwise mkfs.vfat picks a smaller FAT, as
a FAT type follows from the cluster count), the XFS gets `-s size=<size>`.

Board overlay: its ESP files (rendered templates included) are added to the ESP; its raw blob
is written at its byte offset after the table, with the partition entry array moved
`partition_offset` LBAs further (GPT skip LBAs) so the two never overlap (checked again here
for the actual sector size). Writing is streamed and sparse: an 8 GiB image never passes
through memory, and all-zero chunks stay holes.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from extensions.errors import ExtensionError
from extensions.overlay import check_raw_layout
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
from workers.assembly.hardlink import link_or_copy
from workers.assembly.meta_partition import make_meta_partition
from workers.assembly.vfat import make_vfat
from workers.assembly.xfs import make_xfs
from workers.errors import InvalidRequest

EFI_SIZE = 100 * MIB
BIOS_SIZE = MIB
BOOT_SIZE = 300 * MIB
META_SIZE = MIB
GRUB_PREFIX = "(hd0,gpt3)/grub"
KERNEL_PATH = "/A/vmlinuz"
INITRD_PATH = "/A/initramfs.xz"
GRUB, SD_BOOT, DUAL_BOOT = "grub", "sd-boot", "dual-boot"
BOOTLOADERS = (GRUB, SD_BOOT, DUAL_BOOT)
UKI_EFI_SIZE = EFI_SIZE + BIOS_SIZE + BOOT_SIZE
META_DISK_IMAGE_BOOTLOADER = 0x11
FAT32_MIN_CLUSTERS = 65525
_CHUNK = MIB


@dataclass(frozen=True)
class GrubBoot:
    """What GRUB boots (grub and dual-boot layouts)."""

    kernel: Path
    initramfs: Path
    cmdline: str
    bios_dir: Path  # the release's i386-pc GRUB files
    efi_dir: Path  # the release's x86_64-efi GRUB files
    title: str


@dataclass(frozen=True)
class RawBlob:
    """Bytes an overlay writes at a fixed disk offset (e.g. a board's u-boot)."""

    path: Path
    offset: int


def boot_disk_layout(
    bootloader: str, sector_size: int = 512, skip_lbas: int = 0, disk_size: int = 0
) -> Layout:
    """The partition layout; `disk_size` 0 = just big enough, else that many bytes (the rest
    stays unpartitioned, for the OS to grow into, as in Talos images)."""
    if bootloader == GRUB:
        parts = [
            Partition("EFI", ESP_TYPE, EFI_SIZE),
            Partition("BIOS", BIOS_BOOT_TYPE, BIOS_SIZE, attributes=LEGACY_BIOS_BOOTABLE),
            Partition("BOOT", LINUX_DATA_TYPE, BOOT_SIZE),
        ]
    elif bootloader == SD_BOOT:
        parts = [Partition("EFI", ESP_TYPE, UKI_EFI_SIZE)]
    elif bootloader == DUAL_BOOT:
        parts = [
            Partition("EFI", ESP_TYPE, UKI_EFI_SIZE),
            Partition("BIOS", BIOS_BOOT_TYPE, BIOS_SIZE, attributes=LEGACY_BIOS_BOOTABLE),
            Partition("BOOT", LINUX_DATA_TYPE, BOOT_SIZE),
        ]
    else:
        raise ValueError(f"unknown bootloader {bootloader!r}")
    parts.append(Partition("META", LINUX_DATA_TYPE, META_SIZE))
    minimum = MIB + sum(p.size for p in parts) + MIB
    if disk_size and disk_size < minimum:
        raise ValueError(f"a {bootloader} disk needs at least {minimum} bytes, not {disk_size}")
    disk_size = disk_size or minimum
    return plan_layout(parts, disk_size=disk_size, sector_size=sector_size, skip_lbas=skip_lbas)


def make_boot_disk(
    dest: Path,
    *,
    workdir: Path,
    bootloader: str,
    epoch: int,
    meta: Mapping[int, str],
    grub: GrubBoot | None = None,
    sdboot_tree: Path | None = None,
    esp_extra: Path | None = None,
    raw_blob: RawBlob | None = None,
    skip_lbas: int = 0,
    sector_size: int = 512,
    disk_size: int = 0,
) -> Path:
    """Build the raw disk `dest` (`disk_size` bytes, 0 = the layout's minimum).

    `grub` is needed for grub and dual-boot, `sdboot_tree` (the ESP files of
    `workers.assembly.sdboot.write_sdboot_tree`) for sd-boot and dual-boot; `esp_extra` is a
    directory merged onto the ESP (overlay files), `raw_blob` + `skip_lbas` the overlay's raw
    write and GPT skip.
    """
    uses_grub = bootloader in (GRUB, DUAL_BOOT)
    uses_sdboot = bootloader in (SD_BOOT, DUAL_BOOT)
    if (grub is None) == uses_grub or (sdboot_tree is None) == uses_sdboot:
        raise ValueError(f"the {bootloader} layout needs exactly its bootloader's inputs")
    layout = boot_disk_layout(bootloader, sector_size, skip_lbas, disk_size)
    if raw_blob is not None:
        try:
            check_raw_layout(raw_blob.offset, raw_blob.path.stat().st_size, skip_lbas, sector_size)
        except ExtensionError as exc:
            raise InvalidRequest(
                f"overlay raw write on a {sector_size}-byte-sector disk: {exc}"
            ) from None
    esp_tree = workdir / "esp-tree"
    esp_tree.mkdir()
    if sdboot_tree is not None:
        shutil.copytree(sdboot_tree, esp_tree, dirs_exist_ok=True)
    elif grub is not None:
        (esp_tree / "EFI" / "BOOT").mkdir(parents=True)
        make_grub_image(
            grub.efi_dir,
            esp_tree / "EFI" / "BOOT" / "BOOTX64.EFI",
            image_format="x86_64-efi",
            prefix=GRUB_PREFIX,
            modules=EFI_MODULES,
        )
    if esp_extra is not None:
        merge_new_files(esp_extra, esp_tree)
    efi = layout.by_name("EFI")
    esp = make_vfat(
        workdir / "esp.img",
        efi.size,
        src=esp_tree,
        label="EFI",
        volume_id=int.from_bytes(guid_from_label("EFI").bytes[:4], "big"),
        epoch=epoch,
        fat_bits=32 if efi.size // sector_size >= FAT32_MIN_CLUSTERS + 2048 else None,
        sector_size=sector_size,
    )
    shutil.rmtree(esp_tree)
    meta_values = dict(meta)
    if bootloader == DUAL_BOOT:
        meta_values[META_DISK_IMAGE_BOOTLOADER] = DUAL_BOOT
    with dest.open("wb") as disk:
        disk.truncate(layout.disk_size)
        write_gpt(disk, layout)
        copy_sparse(esp, disk, efi.offset)
        esp.unlink()
        if grub is not None:
            _write_grub(disk, layout, grub, workdir, epoch)
        disk.seek(layout.by_name("META").offset)
        disk.write(make_meta_partition(meta_values))
        if raw_blob is not None:
            copy_sparse(raw_blob.path, disk, raw_blob.offset)
    return dest


def merge_new_files(src: Path, dest: Path) -> None:
    """Copy the tree `src` into `dest`; a file that already exists there is an error."""
    for path in sorted(src.rglob("*")):
        target = dest / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif target.exists():
            raise InvalidRequest(f"overlay file {path.relative_to(src)} would replace an ESP file")
        else:
            shutil.copyfile(path, target)


def _write_grub(disk: BinaryIO, layout: Layout, grub: GrubBoot, workdir: Path, epoch: int) -> None:
    """BOOT (XFS with grub.cfg, kernel, initramfs), BIOS core.img and the MBR boot code."""
    tree = workdir / "boot-tree"
    (tree / "grub").mkdir(parents=True)
    (tree / "A").mkdir()
    # mkfs.xfs only reads them (its protofile gives modes, owners and link counts).
    link_or_copy(grub.kernel, tree / KERNEL_PATH.lstrip("/"))
    link_or_copy(grub.initramfs, tree / INITRD_PATH.lstrip("/"))
    (tree / "grub" / "grub.cfg").write_text(
        grub_config(title=grub.title, kernel=KERNEL_PATH, initrd=INITRD_PATH, cmdline=grub.cmdline)
    )
    boot = layout.by_name("BOOT")
    image = make_xfs(
        workdir / "boot.img",
        boot.size,
        src=tree,
        label="BOOT",
        fs_uuid=str(guid_from_label("BOOT")),
        epoch=epoch,
        sector_size=layout.sector_size,
    )
    shutil.rmtree(tree)
    copy_sparse(image, disk, boot.offset)
    image.unlink()
    core = make_grub_image(
        grub.bios_dir,
        workdir / "core.img",
        image_format="i386-pc",
        prefix=GRUB_PREFIX,
        modules=BIOS_MODULES,
    )
    bios = layout.by_name("BIOS")
    if core.stat().st_size > bios.size:
        raise ValueError(f"GRUB core.img ({core.stat().st_size} bytes) exceeds the BIOS partition")
    mbr_code, core_img = patch_bios_boot(
        (grub.bios_dir / "boot.img").read_bytes(), core.read_bytes(), bios.first_lba
    )
    disk.seek(0)
    disk.write(mbr_code)
    disk.seek(bios.offset)
    disk.write(core_img)


def copy_sparse(src: Path, disk: BinaryIO, offset: int) -> None:
    """Copy `src` into `disk` at `offset` in 1 MiB chunks; all-zero chunks stay holes."""
    zeros = bytes(_CHUNK)
    with src.open("rb") as f:
        position = offset
        while chunk := f.read(_CHUNK):
            if chunk != zeros[: len(chunk)]:
                disk.seek(position)
                disk.write(chunk)
            position += len(chunk)
