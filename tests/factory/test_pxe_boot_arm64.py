"""The arm64 network boot through the PXE route: `qemu-system-aarch64 -M virt` (TCG) with AAVMF
PXE-boots (TFTP, QEMU's user network) Debian's arm64 GRUB, which runs the factory's
`/pxe/<id>/v1.0.0/metal-arm64` iPXE script unchanged (tests/factory/grub_netboot.py says why
GRUB and not iPXE) and so fetches the kernel and initramfs it names over HTTP from a running
factory; the reference OS reports on the serial console what it booted."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.boot import assert_in_log, boot_and_capture
from tests.factory.grub_netboot import BOOT_FILE, grub_netboot_dir
from tests.factory.live import QEMU_HOST, LiveFactory
from tests.workers.aavmf import QEMU_AARCH64, virt_args
from tests.workers.assets import SCHEMATIC
from tests.workers.uefi_vm import schematic_lines

pytestmark = [pytest.mark.integration, pytest.mark.boot]

# The reference OS prints its report on the last console: the PL011 on `virt`.
ARM64_SCHEMATIC = SCHEMATIC.replace(b"console=ttyS0", b"console=ttyAMA0")


def test_aavmf_network_boots_the_arm64_pxe_script(
    two_arch_factory: LiveFactory, tmp_path: Path
) -> None:
    live = two_arch_factory
    sid = live.create_schematic(ARM64_SCHEMATIC)
    script_path = f"/pxe/{sid}/v1.0.0/metal-arm64"
    image_base = f"{live.guest_url}/image/{sid}/v1.0.0"

    cmdline = live.get(f"/image/{sid}/v1.0.0/cmdline-metal-arm64").decode()
    assert live.get(script_path).decode() == (
        f"#!ipxe\n\nimgfree\nkernel {image_base}/kernel-arm64 {cmdline}\n"
        f"initrd {image_base}/initramfs-arm64.xz\nboot\n"
    )
    # Build what the script boots first, so the guest never waits on a build.
    for path in ("kernel-arm64", "initramfs-arm64.xz"):
        live.get(f"/image/{sid}/v1.0.0/{path}")
    tftp = grub_netboot_dir(f"{live.guest_url}{script_path}", QEMU_HOST, tmp_path / "tftp")

    started = time.monotonic()
    log = boot_and_capture(
        extra_args=[
            *virt_args(tmp_path),
            "-netdev",
            f"user,id=n0,tftp={tftp},bootfile={BOOT_FILE}",
            # `romfile=`: QEMU's default NIC ROM is x86 iPXE, of no use to arm64 firmware.
            "-device",
            "virtio-net-pci,netdev=n0,bootindex=0,romfile=",
        ],
        qemu=QEMU_AARCH64,
    )
    print(f"arm64 PXE boot took {time.monotonic() - started:.0f} s")  # the closing note's numbers

    assert_in_log(log, "Start PXE over IPv4", *schematic_lines(sid))
    assert "factory: boot failed" not in log
    # The guest itself fetched all three over the network (GRUB's user agent in the log).
    served = live.log_path.read_text()
    for path in (script_path, f"/image/{sid}/v1.0.0/kernel-arm64", "/initramfs-arm64.xz"):
        assert re.search(rf'"GET [^"]*{re.escape(path)} HTTP/1\.1" 200 .*GRUB', served), path
