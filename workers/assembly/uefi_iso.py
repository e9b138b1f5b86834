"""UEFI-only ISO images (the SecureBoot and sd-boot ISOs, talos-formats §4.8), reproducible.

The ESP tree (systemd-boot, UKI, loader.conf, enrollment keys) goes into a FAT image made with
mkfs.vfat + mtools (`efi.img`, the only file of the ISO 9660 tree), which xorriso makes the
El Torito EFI boot image and also exposes as a GPT partition, so the same file boots as a CD
and as a USB disk. Nothing boots it under BIOS. Dates and the FAT serial are fixed, as in the
hybrid GRUB ISO.
"""

from __future__ import annotations

from pathlib import Path

from workers.assembly.iso import iso_uuid, volume_id
from workers.assembly.run import run_tool
from workers.assembly.vfat import make_vfat

EFI_IMAGE_PATH = "efi.img"
EFI_VOLUME_ID = 0x45464932  # fixed FAT serial of the ESP image ("EFI2")
MIB = 1024 * 1024
# Room for FAT tables, directories and cluster rounding on top of the files.
ESP_SLACK = 4 * MIB


def tree_size(tree: Path) -> int:
    return sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())


def make_esp_image(tree: Path, dest: Path, *, label: str, volume: int, epoch: int) -> Path:
    """A FAT image just big enough for `tree` (rounded up to MiB)."""
    size = -(-(tree_size(tree) + ESP_SLACK) // MIB) * MIB
    return make_vfat(dest, size, src=tree, label=label, volume_id=volume, epoch=epoch)


def xorriso_dates(epoch: int) -> list[str]:
    """Fixed volume and file dates (xorriso's native commands, after `--`)."""
    stamp, _ = iso_uuid(epoch)
    dates = []
    for kind, value in (("uuid", stamp), ("c", stamp), ("m", stamp), ("x", "default")):
        dates += ["-volume_date", kind, value]
    return [*dates, "-volume_date", "f", "default", "-volume_date", "all_file_dates", f"={epoch}"]


def make_uefi_iso(dest: Path, *, workdir: Path, esp_tree: Path, name: str, epoch: int) -> Path:
    """Build the UEFI-only ISO `dest` whose ESP holds the files of `esp_tree`."""
    root = workdir / "iso"
    root.mkdir()
    make_esp_image(esp_tree, root / EFI_IMAGE_PATH, label="EFI", volume=EFI_VOLUME_ID, epoch=epoch)
    run_tool(
        [
            "xorriso",
            "-as",
            "mkisofs",
            "-graft-points",
            "-volid",
            volume_id(name),
            "--efi-boot",
            EFI_IMAGE_PATH,
            "-no-emul-boot",
            "-efi-boot-part",
            "--efi-boot-image",
            "--protective-msdos-label",
            "-o",
            dest,
            "-r",
            root,
            "--",
            *xorriso_dates(epoch),
        ],
        source_date_epoch=epoch,
    )
    return dest
