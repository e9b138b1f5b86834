"""The machine life cycle in QEMU, against a running factory's registry: install from the ISO,
boot the installed disk (OVMF and SeaBIOS), upgrade to another schematic, boot the previous
installation again.

Five QEMU runs, each a cold start (the guest's `reboot -f` ends a run: a warm reset under
OVMF once left virtio-blk without interrupts on a loaded host):
1. the ISO (SeaBIOS) with `factory.install=<factory>/installer/<S1>:v1.0.0` on an empty
   virtio disk: the reference OS pulls the installer image over HTTP, runs its installer and
   prints `factory: installed <ref>`;
2. that disk under OVMF with an upgrade request (fw_cfg `opt/factory/upgrade=<S2 ref>`): S1's
   lines, then `factory: upgraded to <ref>` and a reboot;
3. the disk under SeaBIOS: slot B, S2's lines;
4. the disk under SeaBIOS asking for slot A (fw_cfg `opt/factory/slot=A`): S2's lines,
   `factory: selected slot A`, a reboot;
5. the disk under SeaBIOS: S1's lines again, from the kept slot A.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.boot import assert_in_log, boot_and_capture
from tests.factory.live import QEMU_HOST, LiveFactory
from tests.workers.uefi_vm import cdrom_args, firmware_args, setup_mode_vars
from workers.assembly.run import run_tool

# Five boots of minutes each under TCG, after the reference release is built.
pytestmark = [pytest.mark.integration, pytest.mark.boot, pytest.mark.timeout(3600)]

VERSION = "v1.0.0"
META_VALUE = '{"externalIPs":["1.2.3.4"]}'
FIRST = f"""customization:
  extraKernelArgs: [factory.poweroff=1]
  meta:
    - key: 0xa
      value: '{META_VALUE}'
  systemExtensions:
    officialExtensions: [factory/hello]
  kernelModules: [zram]
""".encode()
SECOND = b"""customization:
  extraKernelArgs: [factory.poweroff=1]
  systemExtensions:
    officialExtensions: [factory/dummy-module]
"""
BOOT_TIMEOUT = 1200
NETWORK = ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"]


def _first_lines(sid: str) -> list[str]:
    return [
        "factory: extension hello 1.0.0",
        f"factory: extension schematic {sid}",
        "factory: module zram loaded",
        f"factory: schematic {sid}",
        f"factory: meta 0x0a={META_VALUE}",
        "factory: boot ok",
    ]


def _second_lines(sid: str) -> list[str]:
    return [
        "factory: extension dummy-module 1.0.0-v1.0.0",
        f"factory: extension schematic {sid}",
        f"factory: schematic {sid}",
        "factory: boot ok",
    ]


def _installer_ref(live: LiveFactory, sid: str) -> str:
    # Published on the host first, so the guest never waits on a cold build.
    live.get(f"/v2/installer/{sid}/manifests/{VERSION}")
    return f"{QEMU_HOST}:{live.port}/installer/{sid}:{VERSION}"


def _no_failure(log: str) -> None:
    """No `factory: boot failed`, `install failed`, `upgrade failed`, ... line."""
    failures = re.findall(r"factory: [^\n]*failed[^\n]*", log)
    assert not failures, failures


def test_install_upgrade_and_boot_the_previous_installation(
    live_factory: LiveFactory, tmp_path: Path
) -> None:
    first, second = live_factory.create_schematic(FIRST), live_factory.create_schematic(SECOND)
    first_ref, second_ref = (
        _installer_ref(live_factory, first),
        _installer_ref(live_factory, second),
    )
    install_args = f"factory.install={first_ref}, factory.install.disk=/dev/vda"
    installer_iso = live_factory.create_schematic(
        f"customization:\n  extraKernelArgs: [{install_args}, factory.poweroff=1]\n".encode()
    )
    iso = tmp_path / "install.iso"
    iso.write_bytes(live_factory.get(f"/image/{installer_iso}/{VERSION}/metal-amd64.iso"))
    disk = tmp_path / "disk.qcow2"
    run_tool(["qemu-img", "create", "-q", "-f", "qcow2", disk, "2G"])
    drive = f"file={disk},format=qcow2,if=virtio"

    log = boot_and_capture(
        drives=[drive], extra_args=[*cdrom_args(iso), *NETWORK], timeout=BOOT_TIMEOUT
    )
    assert_in_log(log, f"factory: installed {first_ref}", "factory: boot ok")
    _no_failure(log)

    log = boot_and_capture(
        drives=[drive],
        extra_args=[
            *firmware_args(setup_mode_vars(tmp_path / "vars.fd"), secure=False),
            *NETWORK,
            "-fw_cfg",
            f"name=opt/factory/upgrade,string={second_ref}",
        ],
        timeout=BOOT_TIMEOUT,
    )
    assert_in_log(log, *_first_lines(first), f"factory: upgraded to {second_ref}")
    _no_failure(log)

    log = boot_and_capture(drives=[drive], timeout=BOOT_TIMEOUT)
    assert_in_log(log, *_second_lines(second))
    assert f"schematic {first}" not in log
    _no_failure(log)

    log = boot_and_capture(
        drives=[drive],
        extra_args=[*NETWORK, "-fw_cfg", "name=opt/factory/slot,string=A"],
        timeout=BOOT_TIMEOUT,
    )
    assert_in_log(log, *_second_lines(second), "factory: selected slot A")
    _no_failure(log)

    log = boot_and_capture(drives=[drive], timeout=BOOT_TIMEOUT)
    assert_in_log(log, *_first_lines(first))
    assert f"schematic {second}" not in log
    _no_failure(log)
