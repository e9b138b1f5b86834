"""QEMU `virt` (arm64, TCG) with Debian's AAVMF UEFI firmware, for the arm64 boot tests.

AAVMF_CODE.fd enforces Secure Boot once a variable store has it on (Debian's `.ms` and
`.snakeoil` code files are links to it; only their variable stores differ). `virt` has no SMM,
so nothing protects the store from the guest; the firmware's image verification is the same.
"""

from __future__ import annotations

import shutil
from pathlib import Path

QEMU_AARCH64 = "qemu-system-aarch64"
AAVMF = Path("/usr/share/AAVMF")
AAVMF_CODE = AAVMF / "AAVMF_CODE.fd"
AAVMF_VARS = AAVMF / "AAVMF_VARS.fd"
# The one store with its variables initialised (the plain one is formatted on first boot), so
# the one virt-fw-vars can edit: Microsoft's keys enrolled, Secure Boot on.
AAVMF_VARS_MS = AAVMF / "AAVMF_VARS.ms.fd"
# cortex-a57: `max` emulates pointer authentication under TCG, several times slower to boot.
CPU = "cortex-a57"


def virt_args(vars_dir: Path, variables: Path | None = None) -> list[str]:
    """Machine, CPU and firmware: the writable variable store `variables` (e.g. with keys
    enrolled), else a fresh copy of AAVMF's empty one in `vars_dir`."""
    if variables is None:
        variables = vars_dir / "AAVMF_VARS.fd"
        shutil.copyfile(AAVMF_VARS, variables)
    return [
        "-machine",
        "virt",
        "-cpu",
        CPU,
        "-drive",
        f"if=pflash,format=raw,unit=0,readonly=on,file={AAVMF_CODE}",
        "-drive",
        f"if=pflash,format=raw,unit=1,file={variables}",
    ]


def virtio_cdrom_args(iso: Path) -> list[str]:
    """The ISO as a SCSI CD-ROM on virtio-scsi (`virt` has no IDE/SATA), booted first."""
    return [
        "-device",
        "virtio-scsi-pci",
        "-drive",
        f"file={iso},format=raw,media=cdrom,if=none,id=cd0,readonly=on",
        "-device",
        "scsi-cd,drive=cd0,bootindex=0",
    ]
