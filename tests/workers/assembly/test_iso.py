"""Hybrid ISO structure (booting it is in tests/workers/test_boot_assets.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from workers.assembly.iso import iso_uuid, make_iso, volume_id
from workers.assembly.run import run_tool

HOST_BIOS = Path("/usr/lib/grub/i386-pc")
HOST_EFI = Path("/usr/lib/grub/x86_64-efi")
EPOCH = 1700000000


def test_volume_id_and_uuid() -> None:
    assert volume_id("Image Factory v1.0.0-rc.1") == "IMAGE FACTORY V1_0_0_RC_1"
    assert len(volume_id("x" * 40)) == 32
    assert iso_uuid(EPOCH) == ("2023111422132000", "2023-11-14-22-13-20-00")


def _iso(tmp_path: Path, name: str) -> Path:
    work = tmp_path / f"{name}-work"
    work.mkdir()
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"kernel" * 1000)
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"initrd" * 1000)
    return make_iso(
        tmp_path / name,
        workdir=work,
        kernel=kernel,
        initramfs=initrd,
        cmdline="console=ttyS0 a=$b",
        grub_bios_dir=HOST_BIOS,
        grub_efi_dir=HOST_EFI,
        name="Image Factory v1.0.0",
        epoch=EPOCH,
    )


@pytest.mark.integration
def test_el_torito_bios_and_uefi_plus_hybrid_tables(tmp_path: Path) -> None:
    iso = _iso(tmp_path, "a.iso")
    report = run_tool(["xorriso", "-indev", iso, "-report_el_torito", "plain"]).decode()
    assert "El Torito boot img :   1  BIOS" in report
    assert "El Torito boot img :   2  UEFI" in report
    assert "/boot/grub/i386-pc/eltorito.img" in report
    system_area = run_tool(["xorriso", "-indev", iso, "-report_system_area", "plain"]).decode()
    assert "GPT" in system_area
    assert "MBR" in system_area
    files = run_tool(["xorriso", "-indev", iso, "-find", "/", "-type", "f"]).decode()
    for path in ("'/boot/vmlinuz'", "'/boot/initramfs.xz'", "'/boot/grub/grub.cfg'", "'/efi.img'"):
        assert path in files
    extracted = tmp_path / "grub.cfg"
    run_tool(
        ["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/boot/grub/grub.cfg", extracted]
    )
    assert "linux /boot/vmlinuz console=ttyS0 a=\\$b" in extracted.read_text()


@pytest.mark.integration
def test_reproducible(tmp_path: Path) -> None:
    one = _iso(tmp_path, "1.iso")
    time.sleep(1.1)
    two = _iso(tmp_path, "2.iso")
    assert one.read_bytes() == two.read_bytes()
