"""The systemd-boot ESP tree: files, loader.conf per enrollKeys mode and sd-boot version."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.assembly.sdboot import (
    enroll_mode,
    loader_conf,
    sd_boot_version,
    uki_file_name,
    write_sdboot_tree,
)
from workers.errors import InvalidRequest

SD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")


def test_enroll_mode_default_and_unknown() -> None:
    assert enroll_mode("") == "if-safe"
    assert enroll_mode("force") == "force"
    with pytest.raises(InvalidRequest, match='enrollKeys: unknown value "always"'):
        enroll_mode("always")


def test_loader_conf_per_mode() -> None:
    assert loader_conf(None, 257) == "# systemd-boot configuration\ntimeout 0\n"
    assert "secure-boot-enroll" not in loader_conf("off", 257)
    assert loader_conf("force", 252).endswith("secure-boot-enroll force\n")
    assert loader_conf("if-safe", 257).endswith("secure-boot-enroll if-safe\n")
    # systemd-boot 252 does not know if-safe: the safe reading is manual.
    assert loader_conf("if-safe", 252).endswith("secure-boot-enroll manual\n")


def test_version_of_debian_sd_boot() -> None:
    assert sd_boot_version(SD_BOOT) == 252


def test_tree_with_and_without_keys(tmp_path: Path) -> None:
    uki = tmp_path / "uki.efi"
    uki.write_bytes(b"uki")
    plain = write_sdboot_tree(
        _new(tmp_path / "plain"), sd_boot=SD_BOOT, uki=uki, uki_name=uki_file_name("v1.0.0")
    )
    assert _files(plain) == [
        "EFI/BOOT/BOOTX64.EFI",
        "EFI/Linux/factory-v1.0.0.efi",
        "loader/loader.conf",
    ]
    auth = {"PK.auth": b"pk", "KEK.auth": b"kek", "db.auth": b"db"}
    secure = write_sdboot_tree(
        _new(tmp_path / "sb"),
        sd_boot=SD_BOOT,
        uki=uki,
        uki_name="x.efi",
        enroll="force",
        auth_files=auth,
        cert_der=b"der",
    )
    assert _files(secure) == [
        "EFI/BOOT/BOOTX64.EFI",
        "EFI/Linux/x.efi",
        "EFI/keys/uki-signing-cert.der",
        "loader/keys/auto/KEK.auth",
        "loader/keys/auto/PK.auth",
        "loader/keys/auto/db.auth",
        "loader/loader.conf",
    ]
    assert (secure / "loader/loader.conf").read_text().endswith("secure-boot-enroll force\n")
    off = write_sdboot_tree(
        _new(tmp_path / "off"), sd_boot=SD_BOOT, uki=uki, uki_name="x.efi", enroll="off",
        auth_files=auth,
    )  # fmt: skip
    assert not (off / "loader/keys").exists()
    assert "secure-boot-enroll" not in (off / "loader/loader.conf").read_text()


def _new(path: Path) -> Path:
    path.mkdir()
    return path


def _files(tree: Path) -> list[str]:
    return sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())


def test_version_from_the_utf16_banner_when_the_marker_was_cut(tmp_path: Path) -> None:
    # The aa64 build keeps its LoaderInfo marker past the last section; normalising drops it.
    banner = "systemd-boot 252.39-1~deb12u2 (aa64)".encode("utf-16-le")
    binary = tmp_path / "systemd-bootaa64.efi"
    binary.write_bytes(b"MZ" + bytes(100) + banner + bytes(10))
    assert sd_boot_version(binary) == 252
    binary.write_bytes(b"MZ" + bytes(100))
    with pytest.raises(ValueError, match="no systemd-boot version string"):
        sd_boot_version(binary)


def test_arm64_tree_uses_the_aa64_removable_path(tmp_path: Path) -> None:
    uki = tmp_path / "uki.efi"
    uki.write_bytes(b"MZ uki")
    tree = tmp_path / "tree"
    tree.mkdir()
    write_sdboot_tree(tree, sd_boot=SD_BOOT, uki=uki, uki_name="factory-v1.0.0.efi", arch="arm64")
    assert (tree / "EFI/BOOT/BOOTAA64.EFI").read_bytes() == SD_BOOT.read_bytes()
    assert not (tree / "EFI/BOOT/BOOTX64.EFI").exists()
