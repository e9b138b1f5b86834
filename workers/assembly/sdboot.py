"""The systemd-boot ESP tree of sd-boot disks and UEFI ISOs (talos-formats §4.3, §4.8, §6.5).

    EFI/BOOT/BOOTX64.EFI          systemd-boot (signed for SecureBoot); BOOTAA64.EFI on arm64
    EFI/Linux/<uki name>          the UKI (signed for SecureBoot); systemd-boot lists it itself
    loader/loader.conf            timeout, and `secure-boot-enroll <mode>` when keys ship
    loader/keys/auto/PK.auth      \
    loader/keys/auto/KEK.auth      } SecureBoot with enrollKeys other than `off`
    loader/keys/auto/db.auth      /
    EFI/keys/uki-signing-cert.der  SecureBoot ISOs: the certificate, for manual enrolment

`timeout 0` boots the (only) entry at once, like this factory's GRUB configs; holding a key
still shows the menu. Talos waits 10 s; nothing here needs the pause.

`enrollKeys` modes: `if-safe` (the default: enroll only inside a VM), `manual` (offer a menu
entry), `force` (enroll whenever the firmware is in setup mode), `off` (no keys, no line).
systemd-boot before 253 knows only `manual`, `force` and `off`, and stalls with a parse error
on anything else; for such a systemd-boot `if-safe` is written as `manual`, the choice that
never enrolls on hardware it cannot tell from a VM.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from workers.errors import InvalidRequest

ENROLL_MODES = ("if-safe", "manual", "force", "off")
DEFAULT_ENROLL_MODE = "if-safe"
# The removable-media path UEFI firmware boots, per architecture (UEFI spec §3.5.1.1).
SD_BOOT_PATHS = {"amd64": "EFI/BOOT/BOOTX64.EFI", "arm64": "EFI/BOOT/BOOTAA64.EFI"}
UKI_DIR = "EFI/Linux"
LOADER_CONF = "loader/loader.conf"
KEYS_DIR = "loader/keys/auto"
CERT_DER_PATH = "EFI/keys/uki-signing-cert.der"
IF_SAFE_SINCE = 253
_VERSION = re.compile(rb"#### LoaderInfo: systemd-boot (\d+)")
# The UTF-16 banner in the code itself: the aa64 build keeps its LoaderInfo marker after the
# last section, which normalising the binary (`append_sections`) drops.
_VERSION_UTF16 = re.compile("systemd-boot ".encode("utf-16-le") + rb"((?:\d\0)+)")


def enroll_mode(value: str) -> str:
    """The schematic's `secureboot.enrollKeys` ("" = the default); 400 for anything else."""
    mode = value or DEFAULT_ENROLL_MODE
    if mode not in ENROLL_MODES:
        raise InvalidRequest(
            f'customization.secureboot.enrollKeys: unknown value "{value}" '
            f"(one of {', '.join(ENROLL_MODES)})"
        )
    return mode


def sd_boot_version(sd_boot: Path) -> int:
    """The systemd version of a systemd-boot binary (from its LoaderInfo string or banner)."""
    data = sd_boot.read_bytes()
    found = _VERSION.search(data)
    if found is not None:
        return int(found[1])
    banner = _VERSION_UTF16.search(data)
    if banner is None:
        raise ValueError(f"{sd_boot}: no systemd-boot version string")
    return int(banner[1].decode("utf-16-le"))


def loader_conf(mode: str | None, sd_boot_major: int) -> str:
    """`loader.conf`; `mode` None or "off" writes no enrollment line."""
    text = "# systemd-boot configuration\ntimeout 0\n"
    if mode is None or mode == "off":
        return text
    if mode == "if-safe" and sd_boot_major < IF_SAFE_SINCE:
        mode = "manual"
    return text + f"secure-boot-enroll {mode}\n"


def uki_file_name(version: str) -> str:
    """The UKI's name under EFI/Linux (Talos: `Talos-<version>.efi`)."""
    return f"factory-{version}.efi"


def write_sdboot_tree(
    tree: Path,
    *,
    sd_boot: Path,
    uki: Path,
    uki_name: str,
    enroll: str | None = None,
    auth_files: Mapping[str, bytes] | None = None,
    cert_der: bytes | None = None,
    arch: str = "amd64",
) -> Path:
    """Lay out the ESP files in the existing directory `tree` (see the module docstring).

    `enroll` and `auth_files` go together (SecureBoot); `cert_der` is added for ISOs.
    """
    sd_boot_path = tree / SD_BOOT_PATHS[arch]
    sd_boot_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sd_boot, sd_boot_path)
    (tree / UKI_DIR).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(uki, tree / UKI_DIR / uki_name)
    (tree / LOADER_CONF).parent.mkdir(parents=True, exist_ok=True)
    with_keys = enroll is not None and enroll != "off" and auth_files
    (tree / LOADER_CONF).write_text(
        loader_conf(enroll if with_keys else None, sd_boot_version(sd_boot))
    )
    if with_keys and auth_files:
        (tree / KEYS_DIR).mkdir(parents=True)
        for name, data in sorted(auth_files.items()):
            (tree / KEYS_DIR / name).write_bytes(data)
    if cert_der is not None:
        (tree / CERT_DER_PATH).parent.mkdir(parents=True, exist_ok=True)
        (tree / CERT_DER_PATH).write_bytes(cert_der)
    return tree
