"""Which release files an SBOM names for each kind and bootloader, and DSSE's PAE."""

from __future__ import annotations

import pytest

from workers.evidence.inputs import release_files_used
from workers.evidence.provenance import pae
from workers.planning.plans import Plan
from workers.planning.profiles import parse_profile

GRUB = {"grub-i386-pc.tar", "grub-x86_64-efi.tar"}
SD_BOOT = {"systemd-boot.efi", "systemd-stub.efi"}
BASE = {"vmlinuz", "initramfs.xz"}


def _plan(path: str, bootloader: str = "", modules: tuple[str, ...] = ()) -> Plan:
    return Plan(
        profile=parse_profile(path),
        version="v1.0.0",
        release_digest="0" * 64,
        bootloader=bootloader,
        kernel_modules=modules,
    )


@pytest.mark.parametrize(
    ("path", "bootloader", "expected"),
    [
        ("kernel-amd64", "", {"vmlinuz"}),
        ("cmdline-metal-amd64", "", set()),
        ("initramfs-amd64.xz", "", {"initramfs.xz"}),
        ("metal-amd64-uki.efi", "", BASE | {"systemd-stub.efi"}),
        ("metal-amd64.iso", "grub", BASE | GRUB),
        ("metal-amd64.iso", "sd-boot", BASE | SD_BOOT),
        ("metal-amd64.raw", "dual-boot", BASE | GRUB | SD_BOOT),
        ("installer-amd64.tar", "", BASE),
        ("installer-amd64-secureboot.tar", "", BASE | SD_BOOT),
    ],
)
def test_release_files_follow_the_kind_and_bootloader(
    path: str, bootloader: str, expected: set[str]
) -> None:
    assert set(release_files_used(_plan(path, bootloader))) == expected


def test_requested_modules_add_the_module_tree() -> None:
    files = release_files_used(_plan("extensions-amd64.sqsh", modules=("zram",)))
    assert set(files) == {"initramfs.xz", "modules.tar"}


def test_pae_is_dsse_v1() -> None:
    # The DSSE protocol's own example.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
