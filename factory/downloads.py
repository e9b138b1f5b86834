"""What the final page of the web form offers for a schematic: every asset that applies to
the chosen hardware, as upstream's wizard lists them (image-factory-api §3.2, §6).

- bare metal: ISO, disk image (`.raw.zst` and `.qcow2`), PXE script, UKI, kernel, command
  line and initramfs (with Secure Boot: only the Secure Boot UKI among the extra assets);
- a cloud platform: its default disk image, ISO and PXE script when it boots that way;
- a board: `metal-<arch>.raw.xz` (the overlay is part of the schematic);
- always: the installer image reference `<host>/<platform>-installer[-secureboot]/<id>:<v>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.planning.profiles import PLATFORMS

# Linked beside each download: checksums, signature, SBOM and signed provenance.
DIGEST_SUFFIXES = (".sha256", ".sha512", ".sigstore.json", ".spdx.json", ".intoto.jsonl")


@dataclass(frozen=True)
class Asset:
    """One downloadable file under `/image/<id>/<version>/<path>`."""

    section: str
    label: str
    path: str


@dataclass(frozen=True)
class Offer:
    """Everything the final page lists for one set of choices."""

    assets: tuple[Asset, ...]
    pxe_path: str  # `<platform>-<arch>[-secureboot]` under /pxe/..., "" when it does not boot so
    installer_repository: str  # `<platform>-installer[-secureboot]`
    installer_path: str  # the installer tar asset of the chosen arch


def offer(target: str, platform: str, arch: str, secureboot: bool) -> Offer:
    """The assets for `target` (`metal`, `cloud`, `sbc`) on `platform` and `arch`."""
    sb = "-secureboot" if secureboot else ""
    name = f"{platform}-{arch}{sb}"
    boot = "Boot media"
    assets: list[Asset] = []
    pxe = ""
    if target == "sbc":
        assets.append(Asset(boot, "Disk image (raw, xz)", f"{name}.raw.xz"))
    elif target == "metal":
        assets += [
            Asset(boot, "ISO", f"{name}.iso"),
            Asset(boot, "Disk image (raw, zstd)", f"{name}.raw.zst"),
            Asset(boot, "Disk image (qcow2)", f"{name}.qcow2"),
        ]
        pxe = name
        extra = "Extra assets"
        if not secureboot:
            assets += [
                Asset(extra, "Kernel", f"kernel-{arch}"),
                Asset(extra, "Kernel command line", f"cmdline-{name}"),
                Asset(extra, "Initramfs", f"initramfs-{arch}.xz"),
            ]
        assets.append(Asset(extra, "Unified kernel image (UKI)", f"{name}-uki.efi"))
    else:
        known = PLATFORMS[platform]
        if "disk" in known.boot_methods and known.disk_suffix:
            assets.append(
                Asset(boot, f"Disk image ({known.disk_suffix})", f"{name}.{known.disk_suffix}")
            )
        if "iso" in known.boot_methods:
            assets.append(Asset(boot, "ISO", f"{name}.iso"))
        if "pxe" in known.boot_methods:
            pxe = name
    installer_platform = "metal" if target == "sbc" else platform
    return Offer(
        tuple(assets),
        pxe,
        f"{installer_platform}-installer{sb}",
        f"{installer_platform}-installer-{arch}{sb}.tar",
    )
