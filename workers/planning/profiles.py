"""Asset paths → profiles, with the upstream grammar and messages (`ParseFromPath`).

The checks run in upstream order and the first match wins: `kernel-<arch>`,
`cmdline-<platform>-<arch>[-secureboot]`, `initramfs-<arch>.xz`, `<platform>-<arch>[-sb].iso`,
`<platform>-<arch>[-sb]-uki.efi`, `installer-<arch>[-sb].tar`,
`<platform>-installer-<arch>[-sb].tar`, and anything else is a disk image
`<platform>-<arch>[-sb].<raw|qcow2|vhd|ova>[.tar.gz|.gz|.xz|.zst]`. Our addition, checked
before the disk image fallback: `extensions-<arch>.sqsh` (the schematic's extensions as one
systemd-sysext image).

`parse_profile` only parses (400 on a malformed path, like upstream); `check_buildable` refuses
a platform no catalogue knows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from workers.errors import InvalidRequest
from workers.planning.asset_kinds import COMPRESSIONS, DISK_FORMATS, PLATFORM_FORMAT_OPTIONS


class Kind(StrEnum):
    KERNEL = "kernel"
    CMDLINE = "cmdline"
    INITRAMFS = "initramfs"
    ISO = "iso"
    UKI = "uki"
    INSTALLER = "installer"
    IMAGE = "image"
    SYSEXT = "sysext"  # ours: extensions-<arch>.sqsh


# iPXE's `${buildarch}` names: x86_64/i386 (PC) and arm64, which some builds call aarch64.
ARCH_ALIASES = {
    "amd64": "amd64",
    "arm64": "arm64",
    "x86_64": "amd64",
    "i386": "amd64",
    "aarch64": "arm64",
}
SECUREBOOT_SUFFIX = "-secureboot"


@dataclass(frozen=True)
class Platform:
    """One row of the upstream platform catalogue (Talos `pkg/machinery/platforms`)."""

    name: str
    label: str
    disk_suffix: str  # the default disk image suffix the UI offers ("" = no disk image)
    boot_methods: tuple[str, ...]
    arches: tuple[str, ...]
    secureboot: bool = False


_BOTH = ("amd64", "arm64")
PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        Platform("metal", "Bare metal", "raw.zst", ("disk", "iso", "pxe", "uki"), _BOTH, True),
        Platform("aws", "Amazon Web Services (AWS)", "raw.xz", ("disk",), _BOTH),
        Platform("gcp", "Google Cloud (GCP)", "raw.tar.gz", ("disk",), _BOTH),
        Platform("equinixMetal", "Equinix Metal", "", ("pxe",), _BOTH),
        Platform("azure", "Microsoft Azure", "vhd.xz", ("disk",), _BOTH, True),
        Platform("digital-ocean", "Digital Ocean", "raw.gz", ("disk",), ("amd64",)),
        Platform("nocloud", "Nocloud", "raw.xz", ("disk", "iso", "pxe"), _BOTH, True),
        Platform("openstack", "OpenStack", "raw.xz", ("disk", "iso", "pxe"), _BOTH),
        Platform("vmware", "VMWare", "ova", ("disk", "iso"), _BOTH),
        Platform("akamai", "Akamai", "raw.gz", ("disk",), ("amd64",)),
        Platform("cloudstack", "Apache CloudStack", "raw.gz", ("disk",), _BOTH, True),
        Platform("hcloud", "Hetzner", "raw.xz", ("disk",), ("amd64",)),
        Platform("oracle", "Oracle Cloud", "qcow2", ("disk",), _BOTH),
        Platform("upcloud", "UpCloud", "raw.xz", ("disk",), ("amd64",)),
        Platform("vultr", "Vultr", "", ("iso", "pxe"), ("amd64",)),
        Platform("exoscale", "Exoscale", "qcow2", ("disk",), _BOTH),
        Platform("opennebula", "OpenNebula", "raw.zst", ("disk", "iso"), _BOTH),
        Platform("scaleway", "Scaleway", "raw.zst", ("disk", "iso"), _BOTH),
        # Talos 1.14: disk images only, qcow2 with the default `cluster_size=8k`.
        Platform("alibabacloud", "AlibabaCloud", "qcow2", ("disk",), _BOTH),
    )
}

# Upstream format options per disk format and platform (Talos `profile.Default`).

# SecureBoot variants exist for these kinds (the grammar gives the others none).
SECUREBOOT_KINDS = frozenset({Kind.CMDLINE, Kind.ISO, Kind.UKI, Kind.INSTALLER, Kind.IMAGE})
# Every kind and disk format is built for both architectures.
BUILT_ARCHES = frozenset({"amd64", "arm64"})


@dataclass(frozen=True)
class Profile:
    """What one asset path asks for. `path` is kept for the download name only."""

    path: str
    kind: Kind
    platform: str
    arch: str
    secureboot: bool = False
    disk_format: str = ""  # images only
    disk_format_options: str = ""  # images only, e.g. qcow2 `cluster_size=8k`
    compression: str = ""  # images only: "", "tar.gz", "gz", "xz", "zst"

    def shape(self) -> dict[str, Any]:
        """The fields that decide the output bytes (the path is not one: aliases share bytes)."""
        fields: dict[str, Any] = {"kind": str(self.kind), "arch": self.arch}
        # A SecureBoot installer embeds a UKI, whose command line names the platform.
        if self.kind in (Kind.CMDLINE, Kind.ISO, Kind.UKI, Kind.IMAGE) or (
            self.kind is Kind.INSTALLER and self.secureboot
        ):
            fields["platform"] = self.platform
        if self.kind in SECUREBOOT_KINDS:
            fields["secureboot"] = self.secureboot
        if self.kind is Kind.IMAGE:
            fields["disk_format"] = self.disk_format
            fields["disk_format_options"] = self.disk_format_options
            fields["compression"] = self.compression
        return fields


class ProfileError(InvalidRequest):
    """An asset path that does not follow the grammar; the message is upstream's, word for word."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"error parsing profile from path: {reason}")


def parse_profile(path: str) -> Profile:
    """Parse an asset path into a `Profile`; raise `ProfileError` with the upstream message."""
    if (rest := _cut_prefix(path, "kernel-")) is not None:
        return Profile(path, Kind.KERNEL, "metal", _parse_arch(rest))
    if (rest := _cut_prefix(path, "cmdline-")) is not None:
        return _with_platform_arch(path, Kind.CMDLINE, rest)
    if (rest := _cut_prefix(path, "initramfs-")) is not None and rest.endswith(".xz"):
        return Profile(path, Kind.INITRAMFS, "metal", _parse_arch(rest.removesuffix(".xz")))
    if path.endswith(".iso"):
        return _with_platform_arch(path, Kind.ISO, path.removesuffix(".iso"))
    if path.endswith("-uki.efi"):
        return _with_platform_arch(path, Kind.UKI, path.removesuffix("-uki.efi"))
    if (rest := _cut_prefix(path, "installer-")) is not None and rest.endswith(".tar"):
        rest, secureboot = _cut_secureboot(rest.removesuffix(".tar"))
        return Profile(path, Kind.INSTALLER, "metal", _parse_arch(rest), secureboot)
    if path.endswith(".tar") and "-installer-" in path:
        platform, _, rest = path.removesuffix(".tar").partition("-installer-")
        rest, secureboot = _cut_secureboot(rest)
        return Profile(path, Kind.INSTALLER, platform, _parse_arch(rest), secureboot)
    if (rest := _cut_prefix(path, "extensions-")) is not None and rest.endswith(".sqsh"):
        return Profile(path, Kind.SYSEXT, "metal", _parse_arch(rest.removesuffix(".sqsh")))
    return _parse_disk_image(path)


def check_buildable(profile: Profile) -> None:
    """Raise `InvalidRequest` for a platform no catalogue knows (every kind of both
    architectures is built; whether a release exists for the arch is the plan's question)."""
    if profile.platform not in PLATFORMS:
        raise InvalidRequest(f'unknown platform "{profile.platform}"')


def _parse_disk_image(path: str) -> Profile:
    rest = path
    compression = ""
    for name, row in COMPRESSIONS.items():
        if rest.endswith(row.suffix):
            rest, compression = rest.removesuffix(row.suffix), name
            break
    disk_format = ""
    for name in DISK_FORMATS:
        if rest.endswith("." + name):
            rest, disk_format = rest.removesuffix("." + name), name
            break
    if not disk_format:
        # Upstream quotes the path after the compression suffix is cut.
        raise ProfileError(f"invalid profile path: {_go_quote(rest)}")
    profile = _with_platform_arch(path, Kind.IMAGE, rest)
    options = DISK_FORMATS[disk_format].options
    options = PLATFORM_FORMAT_OPTIONS.get(profile.platform, options)
    return Profile(
        path,
        Kind.IMAGE,
        profile.platform,
        profile.arch,
        profile.secureboot,
        disk_format=disk_format,
        disk_format_options=options,
        compression=compression,
    )


def _with_platform_arch(path: str, kind: Kind, text: str) -> Profile:
    text, secureboot = _cut_secureboot(text)
    platform, dash, rest = text.partition("-")
    if not dash:
        raise ProfileError(f"invalid platform-arch: {_go_quote(text)}")
    # `digital-ocean` is the one platform name with a dash in it.
    if platform == "digital" and rest.startswith("ocean-"):
        platform, rest = "digital-ocean", rest.removeprefix("ocean-")
    return Profile(path, kind, platform, _parse_arch(rest), secureboot)


def _parse_arch(text: str) -> str:
    try:
        return ARCH_ALIASES[text]
    except KeyError:
        raise ProfileError(f"invalid architecture: {_go_quote(text)}") from None


def _cut_secureboot(text: str) -> tuple[str, bool]:
    if text.endswith(SECUREBOOT_SUFFIX):
        return text.removesuffix(SECUREBOOT_SUFFIX), True
    return text, False


def _go_quote(text: str) -> str:
    """Go's `%q` for the strings a URL path can hold: quotes, backslashes, control chars."""
    return json.dumps(text, ensure_ascii=False)


def _cut_prefix(text: str, prefix: str) -> str | None:
    return text.removeprefix(prefix) if text.startswith(prefix) else None
