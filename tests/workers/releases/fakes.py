"""Small synthetic releases for tests that need a stored release but no real kernel."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

from workers.releases.installer_base import BaseImage, store_installer_base
from workers.releases.manifest import MODULES_TAR, InstallerBase, Manifest, release_files
from workers.releases.stored import Release, file_entry, save_release
from workers.store import Store

KVER = "6.1.0-99-amd64"
MODULES_DEP = """kernel/drivers/net/dummy.ko:
kernel/lib/zstd/zstd_common.ko:
kernel/mm/zsmalloc.ko:
kernel/drivers/block/zram/zram.ko: kernel/mm/zsmalloc.ko
kernel/lib/crc64.ko:
kernel/lib/crc64-rocksoft.ko: kernel/lib/crc64.ko
kernel/block/t10-pi.ko: kernel/lib/crc64-rocksoft.ko kernel/lib/crc64.ko
kernel/drivers/scsi/sd_mod.ko: kernel/block/t10-pi.ko kernel/lib/crc64-rocksoft.ko \
kernel/lib/crc64.ko
"""
MODULES_BUILTIN = "kernel/fs/ext4/ext4.ko\nkernel/drivers/char/mem.ko\n"


def modules_tar(dest: Path, kver: str = KVER) -> Path:
    """A modules.tar with modules.dep, modules.builtin and empty .ko files."""
    base = f"usr/lib/modules/{kver}/"
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        entries = {base + "modules.dep": MODULES_DEP, base + "modules.builtin": MODULES_BUILTIN}
        for line in MODULES_DEP.splitlines():
            entries[base + line.split(":")[0]] = ""
        for name, text in sorted(entries.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def fake_files(tmp: Path, salt: str = "", arch: str = "amd64") -> dict[str, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in release_files(arch):
        path = tmp / name
        if name == MODULES_TAR:
            modules_tar(path)
        else:
            path.write_bytes(f"MZ fake {name} {salt}".encode())
        files[name] = path
    return files


def fake_manifest(version: str, files: dict[str, Path], arch: str = "amd64") -> Manifest:
    return Manifest(
        version=version,
        arch=arch,
        source_date_epoch=1700000000,
        kernel_version=KVER,
        kernel_args=("console=tty0", "console=ttyS0,115200"),
        platform_args={"metal": ("console=tty0",), "aws": ("console=ttyS0",)},
        files={name: file_entry(path) for name, path in files.items()},
        origin={"test": True},
    )


def save_fake_release(store: Store, version: str, tmp: Path, arch: str = "amd64") -> Release:
    files = fake_files(tmp / f"{version}-{arch}", arch=arch)
    return save_release(store, fake_manifest(version, files, arch), files)


def save_release_with_base(
    store: Store, tmp: Path, version: str, arch: str, with_base: bool = True
) -> Release:
    """A fake release whose installer base (unless `with_base` is false) has a gzip layer
    over a plain tar one, as Talos' bases may ship either."""
    tmp.mkdir(parents=True, exist_ok=True)
    base: InstallerBase | None = None
    if with_base:
        plain, packed = tmp / f"{arch}-plain.tar", tmp / f"{arch}-packed.tar.gz"
        plain.write_bytes(arch.encode() * 512)
        packed.write_bytes(gzip.compress(b"layer " + arch.encode(), mtime=0))
        config = {"architecture": arch, "os": "linux", "rootfs": {"diff_ids": ["a", "b"]}}
        base = store_installer_base(
            store, BaseImage(json.dumps(config).encode(), (packed, plain)), tmp
        )
    files = fake_files(tmp / f"{version}-{arch}", arch=arch)
    manifest = replace(fake_manifest(version, files, arch=arch), installer_base=base)
    return save_release(store, manifest, files)
