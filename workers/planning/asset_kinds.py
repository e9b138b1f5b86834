"""Asset kinds, disk formats and compressions as data: the one table every part reads.

Planning parses paths with it (`profiles`), the build picks each kind's builder and each disk
format's converter from it (`workers.pipeline.build_asset`), serving takes the Content-Type
from it (`content_type_for`) and start-up checks the tools it lists (`BUILD_TOOLS`).

Builders and converters are named as `module:function` strings, imported only by the build:
a web process reads this table without importing the assembly code. A new disk format is one
`DiskFormat` row plus its assembly module (and a converter with the signature of
`workers.pipeline.disk_formats.DiskConverter`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True)
class AssetKind:
    """One kind of asset (`profiles.Kind` value)."""

    stage: str  # the progress stage its builder reports
    builder: str = ""  # `module:function(plan, inputs) -> Path` for boot media, "" = built inline
    suffix: str = ""  # the path suffix that decides its Content-Type ("" = none of its own)
    content_type: str = ""
    tools: tuple[str, ...] = ()  # external tools its build runs


@dataclass(frozen=True)
class DiskFormat:
    """One disk image format: `<platform>-<arch>.<name>[.<compression>]`."""

    converter: str = ""  # `module:function`, a `DiskConverter` ("" = the raw disk itself)
    content_type: str = ""
    options: str = ""  # default `qemu-img -o` options of the format (a platform may override)
    tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class Compression:
    """One compression of disk images; `codec` names `workers.assembly.compress.Codec`."""

    suffix: str
    codec: str
    content_type: str
    tools: tuple[str, ...]


_PIPELINE = "workers.pipeline.boot_media"
# Every kind that boots starts from the initramfs with the extension layers.
_INITRAMFS_TOOLS = ("cpio", "depmod", "xz", "zstd", "mksquashfs", "unsquashfs", "tar2sqfs")
_ESP_TOOLS = ("mkfs.vfat", "mmd", "mcopy")
_SIGN_TOOLS = ("sbsign", "faketime")

ASSET_KINDS: dict[str, AssetKind] = {
    "kernel": AssetKind("kernel"),
    "cmdline": AssetKind("cmdline"),
    "initramfs": AssetKind("initramfs", tools=_INITRAMFS_TOOLS),
    "sysext": AssetKind("sysext", tools=("mksquashfs", "unsquashfs", "tar2sqfs")),
    "uki": AssetKind(
        "uki", f"{_PIPELINE}:build_uki", ".efi", "application/efi", _INITRAMFS_TOOLS + _SIGN_TOOLS
    ),
    "installer": AssetKind(
        "installer",
        f"{_PIPELINE}:build_installer",
        ".tar",
        "application/x-tar",
        _INITRAMFS_TOOLS + _SIGN_TOOLS,
    ),
    "iso": AssetKind(
        "iso",
        f"{_PIPELINE}:build_iso",
        ".iso",
        "application/x-iso9660-image",
        (*_INITRAMFS_TOOLS, *_ESP_TOOLS, *_SIGN_TOOLS, "grub-mkimage", "xorriso"),
    ),
    "image": AssetKind(
        "disk",
        f"{_PIPELINE}:build_disk",
        tools=(*_INITRAMFS_TOOLS, *_ESP_TOOLS, *_SIGN_TOOLS, "grub-mkimage", "mkfs.xfs", "xfs_db"),
    ),
}

_FORMATS = "workers.pipeline.disk_formats"
# Tried in this order when parsing a path (upstream's order).
DISK_FORMATS: dict[str, DiskFormat] = {
    "raw": DiskFormat(),
    "qcow2": DiskFormat(
        f"{_FORMATS}:to_qcow2", "application/x-qemu-disk", "cluster_size=8k", ("qemu-img",)
    ),
    "vhd": DiskFormat(f"{_FORMATS}:to_vhd", tools=("qemu-img",)),
    "ova": DiskFormat(f"{_FORMATS}:to_ova", tools=("qemu-img",)),
}
# Platforms whose disk images need other options than their format's.
PLATFORM_FORMAT_OPTIONS = {"azure": "subformat=fixed,force_size"}

# Suffixes tried in this order (upstream: OutFormatTar, GZ, XZ, ZSTD, then the disk format).
COMPRESSIONS: dict[str, Compression] = {
    "tar.gz": Compression(".tar.gz", "gzip", "application/gzip", ("tar", "pigz", "gzip")),
    "gz": Compression(".gz", "gzip", "application/gzip", ("pigz", "gzip")),
    "xz": Compression(".xz", "xz", "application/x-xz", ("xz",)),
    "zst": Compression(".zst", "zstd", "application/zstd", ("zstd",)),
}

# Upstream `internal/mime`: a few fixed types by suffix, else octet-stream.
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_CONTENT_TYPES = {
    **{k.suffix: k.content_type for k in ASSET_KINDS.values() if k.suffix},
    **{f".{name}": f.content_type for name, f in DISK_FORMATS.items() if f.content_type},
    **{"." + c.suffix.rsplit(".", 1)[-1]: c.content_type for c in COMPRESSIONS.values()},
}

# Every external tool some row runs: a worker checks them all at start-up, so a missing
# package is a clear start-up error rather than a failed build later.
BUILD_TOOLS = tuple(
    sorted(
        {
            tool
            for rows in (ASSET_KINDS, DISK_FORMATS, COMPRESSIONS)
            for row in rows.values()
            for tool in row.tools
        }
    )
)


def content_type_for(path: str) -> str:
    """The Content-Type upstream sends for an asset path (decided by the path's suffix)."""
    return _CONTENT_TYPES.get(PurePosixPath(path).suffix, DEFAULT_CONTENT_TYPE)


def load_function(reference: str) -> object:
    """The function a row names as `module:function` (imported on first use: the build's)."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)
