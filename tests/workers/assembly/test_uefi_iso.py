"""UEFI-only ISO structure (booting it is in tests/workers/pipeline/test_boot_secureboot.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from workers.assembly.run import run_tool
from workers.assembly.sdboot import write_sdboot_tree
from workers.assembly.uefi_iso import make_uefi_iso
from workers.assembly.vfat import list_vfat

pytestmark = pytest.mark.integration
SD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
EPOCH = 1700000000


def _iso(tmp_path: Path, name: str) -> Path:
    work = tmp_path / f"{name}-work"
    (work / "esp").mkdir(parents=True)
    uki = tmp_path / "uki.efi"
    uki.write_bytes(b"uki" * 100000)
    write_sdboot_tree(
        work / "esp",
        sd_boot=SD_BOOT,
        uki=uki,
        uki_name="factory-v1.0.0.efi",
        enroll="if-safe",
        auth_files={"PK.auth": b"1", "KEK.auth": b"2", "db.auth": b"3"},
        cert_der=b"cert",
    )
    return make_uefi_iso(
        tmp_path / name, workdir=work, esp_tree=work / "esp", name="Factory v1.0.0", epoch=EPOCH
    )


def test_uefi_el_torito_and_gpt_esp_only(tmp_path: Path) -> None:
    iso = _iso(tmp_path, "a.iso")
    report = run_tool(["xorriso", "-indev", iso, "-report_el_torito", "plain"]).decode()
    assert "El Torito boot img :   1  UEFI" in report
    assert "BIOS" not in report
    system_area = run_tool(["xorriso", "-indev", iso, "-report_system_area", "plain"]).decode()
    assert "GPT partition path :   2  /efi.img" in system_area
    esp = tmp_path / "efi.img"
    run_tool(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/efi.img", esp])
    run_tool(["fsck.vfat", "-n", esp])
    files = list_vfat(esp)
    for path in (
        "EFI/BOOT/BOOTX64.EFI",
        "EFI/Linux/factory-v1.0.0.efi",
        "EFI/keys/uki-signing-cert.der",
        "loader/keys/auto/PK.auth",
        "loader/keys/auto/KEK.auth",
        "loader/keys/auto/db.auth",
        "loader/loader.conf",
    ):
        assert path in files


def test_reproducible(tmp_path: Path) -> None:
    one = _iso(tmp_path, "1.iso")
    time.sleep(1.1)
    two = _iso(tmp_path, "2.iso")
    assert one.read_bytes() == two.read_bytes()
