"""GRUB images: built from a given GRUB directory, the BIOS boot patch, grub.cfg escaping.

Tests use the host's GRUB directories as stand-ins for a release's (the build path always
gets them from the release)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from workers.assembly.grub import (
    BIOS_MODULES,
    EFI_MODULES,
    escape_cmdline,
    grub_config,
    make_grub_image,
    patch_bios_boot,
)

HOST_BIOS = Path("/usr/lib/grub/i386-pc")
HOST_EFI = Path("/usr/lib/grub/x86_64-efi")


def test_patch_bios_boot_offsets() -> None:
    boot_img = bytes(range(256)) * 2
    core_img = bytes(1024)
    code, core = patch_bios_boot(boot_img, core_img, 206848)
    assert len(code) == 440
    assert struct.unpack_from("<Q", code, 0x5C)[0] == 206848
    assert code[0x66:0x68] == b"\x90\x90"
    assert code[:0x5C] == boot_img[:0x5C]
    assert struct.unpack_from("<Q", core, 0x1F4)[0] == 206849
    assert len(core) == len(core_img)


def test_grub_cfg_escapes_the_command_line() -> None:
    assert escape_cmdline('a=$x;b="c" {d}|e&f<g>h\\') == (
        'a=\\$x\\;b=\\"c\\" \\{d\\}\\|e\\&f\\<g\\>h\\\\'
    )
    cfg = grub_config(title="T", kernel="/A/vmlinuz", initrd="/A/initramfs.xz", cmdline="x=$1")
    assert "  linux /A/vmlinuz x=\\$1\n" in cfg
    assert "  initrd /A/initramfs.xz\n" in cfg
    assert "set timeout=0\n" in cfg
    assert "serial --unit=0 --speed=115200\n" in cfg


@pytest.mark.integration
def test_images_are_reproducible_and_of_the_right_kind(tmp_path: Path) -> None:
    built = {}
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        efi = make_grub_image(
            HOST_EFI,
            tmp_path / run / "BOOTX64.EFI",
            image_format="x86_64-efi",
            prefix="(hd0,gpt3)/grub",
            modules=EFI_MODULES,
        )
        core = make_grub_image(
            HOST_BIOS,
            tmp_path / run / "core.img",
            image_format="i386-pc",
            prefix="(hd0,gpt3)/grub",
            modules=BIOS_MODULES,
        )
        built[run] = (efi.read_bytes(), core.read_bytes())
    assert built["a"] == built["b"]
    efi_bytes, core_bytes = built["a"]
    assert efi_bytes[:2] == b"MZ"
    # diskboot's first blocklist entry already counts the sectors after the first one.
    _start, sectors = struct.unpack_from("<QH", core_bytes, 0x1F4)
    assert sectors == -(-(len(core_bytes) - 512) // 512)
