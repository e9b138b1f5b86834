"""Helpers for UEFI boot tests: OVMF with and without Secure Boot, keys enrolled offline with
`virt-fw-vars` (PyPI virt-firmware, next to the test interpreter), an ESP-only disk for
booting a bare EFI binary, and the lines the reference OS prints for the test schematic.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

from tests.workers.assets import META_VALUE
from workers.assembly.gpt import ESP_TYPE, MIB, Partition, plan_layout, write_gpt
from workers.assembly.run import run_tool
from workers.assembly.vfat import make_vfat

OVMF = Path("/usr/share/OVMF")
OVMF_CODE = OVMF / "OVMF_CODE_4M.fd"
OVMF_CODE_SECBOOT = OVMF / "OVMF_CODE_4M.secboot.fd"
OVMF_VARS = OVMF / "OVMF_VARS_4M.fd"
VIRT_FW_VARS = Path(sys.executable).parent / "virt-fw-vars"
EPOCH = 1700000000
# What OVMF prints when its image verification refuses a binary.
DENIED = "Access Denied"
SECURE_BOOT_ON = "EFI stub: UEFI Secure Boot is enabled."


def schematic_lines(schematic_id: str) -> list[str]:
    """Every `factory:` line the test schematic (tests/workers/assets.py) must produce."""
    return [
        "factory: extension hello 1.0.0",
        "factory: extension dummy-module 1.0.0-v1.0.0",
        f"factory: extension schematic {schematic_id}",
        "factory: extension modules.dep ",
        "factory: module zram loaded",
        f"factory: schematic {schematic_id}",
        f"factory: meta 0x0a={META_VALUE}",
        "factory: boot ok",
    ]


def enrolled_vars(
    cert_pem: Path, dest: Path, template: Path = OVMF_VARS, *, replacing: bool = False
) -> Path:
    """A copy of OVMF's (or another edk2 `template`'s) variable store with `cert_pem` as PK,
    KEK and db, Secure Boot on; `replacing`: the template's own PK, KEK and db are deleted
    first (AAVMF's only initialised store is the `.ms` one, with Microsoft's keys)."""
    owner = str(uuid.UUID(int=0x1234))
    deletes = ["--delete", "PK", "--delete", "KEK", "--delete", "db"] if replacing else []
    run_tool(
        [
            VIRT_FW_VARS,
            "--input",
            template,
            "--output",
            dest,
            *deletes,
            "--set-pk",
            owner,
            cert_pem,
            "--add-kek",
            owner,
            cert_pem,
            "--add-db",
            owner,
            cert_pem,
            "--no-microsoft",
            "--secure-boot",
        ]
    )
    return dest


def setup_mode_vars(dest: Path) -> Path:
    """OVMF's empty variable store: no PK, so the firmware is in setup mode."""
    shutil.copyfile(OVMF_VARS, dest)
    return dest


def firmware_args(variables: Path, *, secure: bool) -> list[str]:
    """QEMU arguments for OVMF (`secure`: the SMM build that enforces Secure Boot)."""
    code = OVMF_CODE_SECBOOT if secure else OVMF_CODE
    args = [
        "-drive",
        f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
        "-drive",
        f"if=pflash,format=raw,unit=1,file={variables}",
    ]
    if secure:
        args += [
            "-machine",
            "q35,smm=on",
            "-global",
            "driver=cfi.pflash01,property=secure,value=on",
        ]
    return args


def cdrom_args(iso: Path) -> list[str]:
    """The ISO as a SATA CD-ROM (works on q35 and pc), first in the boot order."""
    return [
        "-drive",
        f"file={iso},format=raw,media=cdrom,if=none,id=cd0,snapshot=on",
        "-device",
        "ide-cd,drive=cd0,bootindex=0",
    ]


def esp_disk(efi: Path, dest: Path, boot_name: str = "BOOTX64.EFI") -> Path:
    """A GPT disk whose only partition is an ESP with `efi` as EFI/BOOT/`boot_name`
    (BOOTAA64.EFI for arm64)."""
    tree = dest.with_name(dest.name + "-tree")
    (tree / "EFI" / "BOOT").mkdir(parents=True)
    shutil.copyfile(efi, tree / "EFI" / "BOOT" / boot_name)
    size = (efi.stat().st_size // MIB + 16) * MIB
    layout = plan_layout([Partition("EFI", ESP_TYPE, size)], disk_size=size + 2 * MIB)
    esp = make_vfat(
        dest.with_name(dest.name + ".esp"),
        size,
        src=tree,
        label="EFI",
        volume_id=0x45465933,
        epoch=EPOCH,
    )
    with dest.open("wb") as disk, esp.open("rb") as part:
        disk.truncate(layout.disk_size)
        write_gpt(disk, layout)
        disk.seek(layout.by_name("EFI").offset)
        shutil.copyfileobj(part, disk, MIB)
    esp.unlink()
    return dest
