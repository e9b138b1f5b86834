"""The release manifest: what one base OS version provides for one architecture.

Stored at `releases/<version>/<arch>/manifest.json` as JSON with sorted keys, 2-space indent
and a trailing newline. Fields (schema 1):

- `schema`: 1
- `version`: e.g. "v1.0.0"; `arch`: "amd64" | "arm64"
- `source_date_epoch`: int, the timestamp every derived artifact uses
- `kernel_version`: e.g. "6.1.0-56-amd64" (the directory under `usr/lib/modules/`)
- `kernel_args`: default args for every platform, e.g. ["console=tty0", "console=ttyS0,115200"]
- `platform_args`: upstream platform name → its args (at least `metal`)
- `files`: file name → {"sha256", "size"}; the blob lives at `blobs/sha256/<sha256>`
- `origin`: free-form provenance (Debian package names and versions, import source)
- `installer_base` (optional, absent when the release has none, so older manifests keep their
  bytes): `{"config": {"sha256", "size"}, "layers": [{"sha256", "size"}, ...]}`, the image
  config and the layers (bottom first, gzip or plain tar as shipped) of the installer base
  image that installer images are composed on; blobs at `blobs/sha256/<sha256>` like the files

File names (the contract every consumer relies on), see `RELEASE_FILES`:
`vmlinuz`; `initramfs.xz` (base initramfs: `/init` + `/rootfs.sqsh` + what `/init` needs;
zstd or xz, readers sniff the magic); `modules.tar` (the full module tree as an uncompressed
deterministic tar, paths `usr/lib/modules/<kver>/...` with depmod's `modules.*` files);
`grub-i386-pc.tar` and `grub-x86_64-efi.tar` (the contents of `/usr/lib/grub/<platform>/`,
paths relative to that directory, `boot.img` included); `systemd-boot.efi` and
`systemd-stub.efi`. An arm64 release has no GRUB files (`release_files`): it boots with
systemd-boot only, as upstream's arm64 ISO is UEFI-only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.errors import InvalidRequest
from workers.releases.versions import normalize_version, validate_arch

SCHEMA = 1

VMLINUZ = "vmlinuz"
INITRAMFS = "initramfs.xz"
MODULES_TAR = "modules.tar"
GRUB_BIOS_TAR = "grub-i386-pc.tar"
GRUB_EFI_TAR = "grub-x86_64-efi.tar"
SYSTEMD_BOOT = "systemd-boot.efi"
SYSTEMD_STUB = "systemd-stub.efi"

RELEASE_FILES = (
    VMLINUZ,
    INITRAMFS,
    MODULES_TAR,
    GRUB_BIOS_TAR,
    GRUB_EFI_TAR,
    SYSTEMD_BOOT,
    SYSTEMD_STUB,
)

GRUB_FILES = (GRUB_BIOS_TAR, GRUB_EFI_TAR)


def release_files(arch: str) -> tuple[str, ...]:
    """The files a release for `arch` holds (see the module docstring)."""
    if arch == "amd64":
        return RELEASE_FILES
    return tuple(name for name in RELEASE_FILES if name not in GRUB_FILES)


_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KVER = re.compile(r"^[A-Za-z0-9._+-]+$")


class ManifestError(ValueError):
    """A manifest that does not follow schema 1."""


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class InstallerBase:
    """The installer base image of a release: its config and layers, bottom first."""

    config: FileEntry
    layers: tuple[FileEntry, ...]

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config.to_json(), "layers": [e.to_json() for e in self.layers]}


@dataclass(frozen=True)
class Manifest:
    """A release manifest; equal manifests serialize to identical bytes."""

    version: str
    arch: str
    source_date_epoch: int
    kernel_version: str
    kernel_args: tuple[str, ...]
    platform_args: Mapping[str, tuple[str, ...]]
    files: Mapping[str, FileEntry]
    origin: Mapping[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA
    installer_base: InstallerBase | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "schema": self.schema,
            "version": self.version,
            "arch": self.arch,
            "source_date_epoch": self.source_date_epoch,
            "kernel_version": self.kernel_version,
            "kernel_args": list(self.kernel_args),
            "platform_args": {k: list(v) for k, v in self.platform_args.items()},
            "files": {k: v.to_json() for k, v in self.files.items()},
            "origin": dict(self.origin),
        }
        if self.installer_base is not None:
            doc["installer_base"] = self.installer_base.to_json()
        return doc

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"release manifest is not JSON: {exc}") from exc
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: object) -> Manifest:
        if not isinstance(raw, dict):
            raise ManifestError("release manifest must be a JSON object")
        expected = {
            "schema",
            "version",
            "arch",
            "source_date_epoch",
            "kernel_version",
            "kernel_args",
            "platform_args",
            "files",
            "origin",
        }
        if set(raw) - {"installer_base"} != expected:
            raise ManifestError(
                f"release manifest fields must be {sorted(expected)}, got {sorted(raw)}"
            )
        if raw["schema"] != SCHEMA:
            raise ManifestError(f"unsupported release manifest schema {raw['schema']!r}")
        manifest = cls(
            version=_str(raw, "version"),
            arch=_str(raw, "arch"),
            source_date_epoch=_int(raw, "source_date_epoch"),
            kernel_version=_str(raw, "kernel_version"),
            kernel_args=_str_list(raw["kernel_args"], "kernel_args"),
            platform_args=_platform_args(raw["platform_args"]),
            files=_files(raw["files"]),
            origin=_origin(raw["origin"]),
            installer_base=_installer_base(raw.get("installer_base")),
        )
        manifest.validate()
        return manifest

    def blob_entries(self) -> dict[str, FileEntry]:
        """Every blob the release names: its files and its installer base's config and layers."""
        entries = dict(self.files)
        base = self.installer_base
        if base is not None:
            entries["installer_base.config"] = base.config
            entries.update({f"installer_base.layers[{i}]": e for i, e in enumerate(base.layers)})
        return entries

    def validate(self) -> None:
        """Raise ManifestError unless this manifest is complete and well-formed."""
        try:
            if normalize_version(self.version) != self.version:
                raise ManifestError(f"release version must start with v: {self.version!r}")
            validate_arch(self.arch)
        except InvalidRequest as exc:
            raise ManifestError(str(exc)) from exc
        if not _KVER.match(self.kernel_version):
            raise ManifestError(f"invalid kernel_version {self.kernel_version!r}")
        if self.source_date_epoch < 0:
            raise ManifestError("source_date_epoch must not be negative")
        if "metal" not in self.platform_args:
            raise ManifestError("platform_args must include metal")
        wanted = release_files(self.arch)
        missing = [name for name in wanted if name not in self.files]
        extra = sorted(set(self.files) - set(wanted))
        if missing or extra:
            raise ManifestError(f"release files: missing {missing}, unexpected {extra}")
        for name, entry in self.blob_entries().items():
            if not _HEX64.match(entry.sha256) or entry.size < 0:
                raise ManifestError(f"invalid digest or size for {name}")


def _str(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{key} must be a non-empty string")
    return value


def _int(raw: dict[str, Any], key: str) -> int:
    value = raw[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ManifestError(f"{key} must be an integer")
    return value


def _str_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ManifestError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def _platform_args(value: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ManifestError("platform_args must be an object")
    return {str(k): _str_list(v, f"platform_args.{k}") for k, v in value.items()}


def _files(value: object) -> dict[str, FileEntry]:
    if not isinstance(value, dict):
        raise ManifestError("files must be an object")
    files = {}
    for name, entry in value.items():
        if not isinstance(entry, dict) or set(entry) != {"sha256", "size"}:
            raise ManifestError(f"files.{name} must be {{sha256, size}}")
        files[str(name)] = FileEntry(sha256=_str(entry, "sha256"), size=_int(entry, "size"))
    return files


def _installer_base(value: object) -> InstallerBase | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"config", "layers"}:
        raise ManifestError("installer_base must be {config, layers}")
    layers = value["layers"]
    if not isinstance(layers, list) or not layers:
        raise ManifestError("installer_base.layers must be a non-empty list")
    entries = _files({"config": value["config"], **{str(i): e for i, e in enumerate(layers)}})
    return InstallerBase(
        config=entries["config"], layers=tuple(entries[str(i)] for i in range(len(layers)))
    )


def _origin(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError("origin must be an object")
    return value
