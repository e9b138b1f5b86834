"""What the reference release takes from Debian for each architecture.

amd64 boots with GRUB (BIOS and UEFI) or systemd-boot; arm64 with systemd-boot only (UEFI,
as upstream's arm64 ISO), so its release has no GRUB files. The console is the PC UART
(`ttyS0`) on amd64 and the PL011 (`ttyAMA0`) of arm64 servers and QEMU's `virt` machine; the
last `console=` becomes /dev/console, where stage 2 prints its report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.releases.manifest import GRUB_BIOS_TAR, GRUB_EFI_TAR, SYSTEMD_BOOT, SYSTEMD_STUB

_SD_EFI = "usr/lib/systemd/boot/efi"


@dataclass(frozen=True)
class ArchRecipe:
    kernel_args: tuple[str, ...]
    # release file name → (Debian package, directory packed into it)
    grub: dict[str, tuple[str, str]] = field(default_factory=dict)
    # release file name → path in systemd-boot-efi
    systemd_efi: dict[str, str] = field(default_factory=dict)

    @property
    def packages(self) -> tuple[str, ...]:
        """The support packages besides the kernel, in fetch order."""
        return (
            "busybox-static",
            *(package for package, _ in self.grub.values()),
            "systemd-boot-efi",
        )


RECIPES = {
    "amd64": ArchRecipe(
        kernel_args=("console=tty0", "console=ttyS0,115200"),
        grub={
            GRUB_BIOS_TAR: ("grub-pc-bin", "usr/lib/grub/i386-pc"),
            GRUB_EFI_TAR: ("grub-efi-amd64-bin", "usr/lib/grub/x86_64-efi"),
        },
        systemd_efi={
            SYSTEMD_BOOT: f"{_SD_EFI}/systemd-bootx64.efi",
            SYSTEMD_STUB: f"{_SD_EFI}/linuxx64.efi.stub",
        },
    ),
    "arm64": ArchRecipe(
        kernel_args=("console=tty0", "console=ttyAMA0,115200"),
        systemd_efi={
            SYSTEMD_BOOT: f"{_SD_EFI}/systemd-bootaa64.efi",
            SYSTEMD_STUB: f"{_SD_EFI}/linuxaa64.efi.stub",
        },
    ),
}
