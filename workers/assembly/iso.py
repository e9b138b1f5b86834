"""Hybrid ISO images: BIOS and UEFI, as CD and as USB disk, built with xorriso directly.

grub-mkrescue takes one GRUB directory for all platforms and calls mformat without a serial,
so the pieces are made here from the release's GRUB files and handed to xorriso with the same
flags grub-mkrescue uses: an `i386-pc-eltorito` El Torito image plus `boot_hybrid.img` as MBR
(BIOS, CD and disk), and a FAT `efi.img` as second El Torito entry and GPT partition (UEFI).
Both GRUB cores find the ISO by its UUID, which xorriso derives from a fixed volume date.
Every file and volume date is the epoch, so two builds are byte-identical.
The initramfs may be a sparse placeholder whose bytes are written into the image afterwards
(`workers.assembly.iso_fill`): the image is the same.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from workers.assembly.grub import BIOS_MODULES, EFI_MODULES, grub_config, make_grub_image
from workers.assembly.hardlink import link_or_copy
from workers.assembly.sparse_output import run_tool_into_sparse_file
from workers.assembly.vfat import make_vfat

ELTORITO_PATH = "boot/grub/i386-pc/eltorito.img"
EFI_IMAGE_PATH = "efi.img"
EFI_VOLUME_ID = 0x45464931  # fixed FAT serial of efi.img ("EFI1")
KERNEL_PATH = "/boot/vmlinuz"
INITRD_PATH = "/boot/initramfs.xz"


def volume_id(name: str) -> str:
    """An ISO volume ID like Talos': upper case, `-` and `.` as `_`, at most 32 characters."""
    return re.sub(r"[-.]", "_", name.upper())[:32]


def iso_uuid(epoch: int) -> tuple[str, str]:
    """(xorriso `-volume_date uuid` value, the UUID GRUB reports for that volume)."""
    digits = time.strftime("%Y%m%d%H%M%S", time.gmtime(epoch)) + "00"
    grub = "-".join([digits[0:4], *(digits[i : i + 2] for i in range(4, 16, 2))])
    return digits, grub


def make_iso(
    dest: Path,
    *,
    workdir: Path,
    kernel: Path,
    initramfs: Path,
    cmdline: str,
    grub_bios_dir: Path,
    grub_efi_dir: Path,
    name: str,
    epoch: int,
    uefi_tree: Path | None = None,
) -> Path:
    """Build the hybrid ISO `dest` booting `kernel` + `initramfs` with `cmdline`.

    `uefi_tree` (dual-boot): the files of efi.img for UEFI, e.g. systemd-boot + a UKI, instead
    of GRUB; BIOS still boots GRUB.
    """
    xorriso_date, grub_uuid = iso_uuid(epoch)
    tree = workdir / "iso"
    (tree / "boot" / "grub" / "i386-pc").mkdir(parents=True)
    # xorriso only reads them, and records its own link counts and dates.
    link_or_copy(kernel, tree / KERNEL_PATH.lstrip("/"))
    link_or_copy(initramfs, tree / INITRD_PATH.lstrip("/"))
    (tree / "boot" / "grub" / "grub.cfg").write_text(
        grub_config(title=name, kernel=KERNEL_PATH, initrd=INITRD_PATH, cmdline=cmdline)
    )
    early = workdir / "early.cfg"
    early.write_text(
        f"search --no-floppy --fs-uuid --set=root {grub_uuid}\n"
        "set prefix=($root)/boot/grub\n"
        "configfile $prefix/grub.cfg\n"
    )
    make_grub_image(
        grub_bios_dir,
        tree / ELTORITO_PATH,
        image_format="i386-pc-eltorito",
        prefix="/boot/grub",
        modules=BIOS_MODULES,
        early_config=early,
    )
    efi_tree = uefi_tree or workdir / "efi"
    if uefi_tree is None:
        (efi_tree / "EFI" / "BOOT").mkdir(parents=True)
        make_grub_image(
            grub_efi_dir,
            efi_tree / "EFI" / "BOOT" / "BOOTX64.EFI",
            image_format="x86_64-efi",
            prefix="/boot/grub",
            modules=EFI_MODULES,
            early_config=early,
        )
    efi_size = sum(p.stat().st_size for p in efi_tree.rglob("*") if p.is_file())
    make_vfat(
        tree / EFI_IMAGE_PATH,
        _round_up(efi_size + 512 * 1024, 1024 * 1024),
        src=efi_tree,
        label="EFIBOOT",
        volume_id=EFI_VOLUME_ID,
        epoch=epoch,
    )
    # Written as flag/value pairs, one option a line; the options after `--` are xorriso's own.
    # fmt: off
    argv: list[str | Path] = [
        "xorriso",
        "-as", "mkisofs",
        "-graft-points",
        "-volid", volume_id(name),
        # BIOS: GRUB's El Torito image, patched with its boot info, and its MBR for USB disks.
        "-b", ELTORITO_PATH,
        "-no-emul-boot",
        "-boot-load-size", "4",
        "-boot-info-table",
        "--grub2-boot-info",
        "--grub2-mbr", grub_bios_dir / "boot_hybrid.img",
        # UEFI: efi.img as the second El Torito entry and as a GPT partition.
        "--efi-boot", EFI_IMAGE_PATH,
        "-efi-boot-part", "--efi-boot-image",
        "--protective-msdos-label",
        # No -o: the image goes to standard output, which `run_tool_into_sparse_file` writes
        # to `dest` with its zeros as holes. No -md5 either (`workers.assembly.iso_fill`).
        "-r", tree,
        "--sort-weight", "0", "/",
        "--sort-weight", "1", "/boot",
        "--",
        # Fixed dates: the volume UUID GRUB searches for, and byte-identical rebuilds.
        "-volume_date", "uuid", xorriso_date,
        "-volume_date", "c", xorriso_date,
        "-volume_date", "m", xorriso_date,
        "-volume_date", "x", "default",
        "-volume_date", "f", "default",
        "-volume_date", "all_file_dates", f"={epoch}",
    ]
    # fmt: on
    return run_tool_into_sparse_file(argv, dest, source_date_epoch=epoch)


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit
