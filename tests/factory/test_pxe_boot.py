"""A real network boot: QEMU's built-in iPXE ROM (ipxe-qemu, `-boot n`) fetches the PXE
script from a running factory over HTTP, then the kernel and initramfs it names, and the
reference OS reports on the serial console what it booted."""

from __future__ import annotations

import re

import pytest

from tests.boot import assert_in_log, boot_and_capture
from tests.factory.live import LiveFactory

pytestmark = [pytest.mark.integration, pytest.mark.boot]


META_VALUE = '{"externalIPs":["1.2.3.4"]}'
SCHEMATIC = f"""customization:
  extraKernelArgs: [console=ttyS0, factory.poweroff=1]
  meta:
    - key: 0xa
      value: '{META_VALUE}'
  systemExtensions:
    officialExtensions: [factory/hello, factory/dummy-module]
  kernelModules: [zram]
""".encode()


def test_ipxe_boots_the_schematic_from_the_factory(live_factory: LiveFactory) -> None:
    sid = live_factory.create_schematic(SCHEMATIC)
    script_path = f"/pxe/{sid}/v1.0.0/metal-amd64"
    image_base = f"{live_factory.guest_url}/image/{sid}/v1.0.0"

    script = live_factory.get(script_path).decode()
    cmdline = live_factory.get(f"/image/{sid}/v1.0.0/cmdline-metal-amd64").decode()
    assert script == (
        f"#!ipxe\n\nimgfree\nkernel {image_base}/kernel-amd64 {cmdline}\n"
        f"initrd {image_base}/initramfs-amd64.xz\nboot\n"
    )
    # Build what the script boots first, so the guest never waits on a build.
    for path in ("kernel-amd64", "initramfs-amd64.xz"):
        live_factory.get(f"/image/{sid}/v1.0.0/{path}")

    log = boot_and_capture(
        extra_args=[
            "-boot",
            "n",
            "-netdev",
            f"user,id=n0,bootfile={live_factory.guest_url}{script_path}",
            "-device",
            "virtio-net-pci,netdev=n0",
        ]
    )

    assert_in_log(
        log,
        "factory: extension hello 1.0.0",
        "factory: extension dummy-module 1.0.0-v1.0.0",
        f"factory: extension schematic {sid}",
        "factory: extension modules.dep ",
        "factory: module zram loaded",
        f"factory: schematic {sid}",
        f"factory: meta 0x0a={META_VALUE}",
        "factory: boot ok",
    )
    assert "factory: boot failed" not in log
    # The guest itself fetched all three over the network (iPXE's user agent in the log).
    served = live_factory.log_path.read_text()
    for path in (script_path, f"/image/{sid}/v1.0.0/kernel-amd64", "/initramfs-amd64.xz"):
        assert re.search(rf'"GET [^"]*{re.escape(path)} HTTP/1\.1" 200 .*iPXE', served), path
