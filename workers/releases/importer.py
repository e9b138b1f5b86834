"""`release import DIR`: turn a directory of boot assets into a stored release.

Accepted layouts:
- ours: DIR holds the contract files (`manifest.release_files(arch)`: seven for amd64, five
  for arm64, which boots with systemd-boot only) and optionally `release.yaml` or
  `release.json` with any of `kernel_args` (list), `platform_args` (platform → list),
  `source_date_epoch` (int), `origin` (object);
- the Talos imager layout: DIR/usr/install/<arch>/ (or that directory itself) with
  `vmlinuz`, `initramfs.xz`, `systemd-boot.efi`, `systemd-stub.efi`.

Files a Talos imager does not ship are derived, never invented:
- `modules.tar` is built from `/usr/lib/modules/<kver>` of the initramfs' `rootfs.sqsh`
  (`unsquashfs`; `depmod -b` when the tree has no `modules.dep`): for Talos that is the
  curated module set of its root;
- the GRUB tars come from the Debian `grub-pc-bin` and `grub-efi-amd64-bin` packages
  (`apt-get download`, cached like the reference build's).
Without `release.yaml`, kernel args are upstream's defaults for that Talos version and the
platform args upstream's table (`platforms.py`).

`installer_base` (optional): Talos' `installer-base` image for this arch, as an OCI layout
directory or a docker-archive tar (`skopeo copy docker://ghcr.io/siderolabs/installer-base:<v>
oci:DIR` where the internet is reachable); installer images of the release are composed on it.

Every file is checked before anything is stored: EFI/PE magic for the kernel and the
systemd binaries, a readable initramfs holding `init` and `rootfs.sqsh`, a module tree with
exactly one kernel version. The manifest is written last (`save_release`).
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from workers.assembly.run import ToolError, require_tools, run_tool
from workers.errors import InvalidRequest
from workers.releases import debian
from workers.releases.initramfs_reader import InitramfsError, extract_members
from workers.releases.installer_base import read_installer_base, store_installer_base
from workers.releases.manifest import (
    GRUB_BIOS_TAR,
    GRUB_EFI_TAR,
    INITRAMFS,
    MODULES_TAR,
    SYSTEMD_BOOT,
    SYSTEMD_STUB,
    VMLINUZ,
    Manifest,
    ManifestError,
    release_files,
)
from workers.releases.modules import MODULES_ROOT, index_from_tar, save_module_index
from workers.releases.platforms import talos_default_args, upstream_platform_args
from workers.releases.stored import Release, file_entry, save_release
from workers.releases.tree_tar import write_tree_tar
from workers.releases.versions import normalize_version, validate_arch
from workers.store import Store

Progress = Callable[[str], None]

TALOS_FILES = (VMLINUZ, INITRAMFS, SYSTEMD_BOOT, SYSTEMD_STUB)
SETTINGS_FILES = ("release.yaml", "release.json")
# `origin.imported_layout` of a release imported from a Talos imager's files.
TALOS_LAYOUT = "talos-imager"
_SETTINGS_KEYS = {"kernel_args", "platform_args", "source_date_epoch", "origin"}
_PE_FILES = (VMLINUZ, SYSTEMD_BOOT, SYSTEMD_STUB)
_GRUB_PACKAGES = {
    GRUB_BIOS_TAR: ("grub-pc-bin", "usr/lib/grub/i386-pc"),
    GRUB_EFI_TAR: ("grub-efi-amd64-bin", "usr/lib/grub/x86_64-efi"),
}


def _quiet(_: str) -> None:
    """Progress sink that shows nothing."""


def find_release_dir(src: Path, arch: str) -> Path:
    """The directory holding the boot files: `src/usr/install/<arch>` if present, else `src`."""
    talos = src / "usr/install" / arch
    return talos if talos.is_dir() else src


def import_release(
    store: Store,
    src: Path,
    *,
    version: str,
    arch: str,
    default_source_date_epoch: int,
    cache_dir: Path,
    work_dir: Path | None = None,
    progress: Progress = _quiet,
    installer_base: Path | None = None,
) -> Release:
    """Validate the assets in `src`, derive what is missing, store the release."""
    version = normalize_version(version)
    validate_arch(arch)
    if not src.is_dir():
        raise InvalidRequest(f"{src} is not a directory")
    root = find_release_dir(src, arch)
    missing = [name for name in TALOS_FILES if not (root / name).is_file()]
    if missing:
        raise InvalidRequest(f"{root} lacks {', '.join(missing)}")
    settings = _read_settings(src, root)
    epoch = int(settings.get("source_date_epoch", default_source_date_epoch))

    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="import-", dir=work_dir) as tmp_name:
        tmp = Path(tmp_name)
        wanted = release_files(arch)
        files = {name: root / name for name in wanted if (root / name).is_file()}
        layout = "factory" if len(files) == len(wanted) else TALOS_LAYOUT
        for name in _PE_FILES:
            _check_pe(files[name], name)
        progress(f"checking {INITRAMFS}")
        try:
            members = extract_members(files[INITRAMFS], {"init", "rootfs.sqsh"}, tmp)
        except InitramfsError as exc:
            raise InvalidRequest(f"{INITRAMFS}: {exc}") from exc
        for needed in ("init", "rootfs.sqsh"):
            if needed not in members:
                raise InvalidRequest(f"{INITRAMFS} has no /{needed} (not a Talos-layout initramfs)")

        if MODULES_TAR not in files:
            progress("deriving modules.tar from rootfs.sqsh")
            files[MODULES_TAR] = _modules_from_rootfs(members["rootfs.sqsh"], tmp, epoch)
        try:
            index = index_from_tar(files[MODULES_TAR])
        except (ValueError, tarfile.TarError) as exc:
            raise InvalidRequest(f"{MODULES_TAR}: {exc}") from exc

        for name, (package_name, rel) in _GRUB_PACKAGES.items():
            if name in files or name not in wanted:
                continue
            progress(f"taking {name} from Debian {package_name}")
            package = debian.describe(package_name, "amd64")
            unpacked = debian.extract(debian.download(package, cache_dir), tmp / package_name)
            files[name] = write_tree_tar(unpacked / rel, tmp / name, "", epoch)

        image = None
        if installer_base is not None:
            progress("reading the installer base")
            image = read_installer_base(installer_base, arch, tmp / "installer-base")

        origin = dict(settings.get("origin", {}))
        origin.setdefault("imported_layout", layout)
        manifest = Manifest(
            version=version,
            arch=arch,
            source_date_epoch=epoch,
            kernel_version=index.kernel_version,
            kernel_args=tuple(settings.get("kernel_args", talos_default_args(version))),
            platform_args={
                k: tuple(v)
                for k, v in settings.get(
                    "platform_args", upstream_platform_args(arch, version)
                ).items()
            },
            files={name: file_entry(path) for name, path in sorted(files.items())},
            origin=origin,
        )
        try:
            manifest.validate()
        except ManifestError as exc:
            raise InvalidRequest(f"release.yaml: {exc}") from exc
        if image is not None:
            manifest = replace(manifest, installer_base=store_installer_base(store, image, tmp))
        progress(f"storing release {version}/{arch}")
        release = save_release(store, manifest, files)
        save_module_index(store, release, index)
    return release


def _read_settings(*dirs: Path) -> dict[str, Any]:
    for d in dirs:
        for name in SETTINGS_FILES:
            path = d / name
            if not path.is_file():
                continue
            try:
                text = path.read_text()
                data = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
            except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
                raise InvalidRequest(f"{path.name} is not valid: {exc}") from exc
            return _check_settings(data, path.name)
    return {}


def _check_settings(data: object, where: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidRequest(f"{where} must be a mapping")
    unknown = sorted(set(data) - _SETTINGS_KEYS)
    if unknown:
        raise InvalidRequest(f"{where}: unknown keys {unknown}; allowed {sorted(_SETTINGS_KEYS)}")
    args = data.get("kernel_args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise InvalidRequest(f"{where}: kernel_args must be a list of strings")
    platforms = data.get("platform_args", {})
    if not isinstance(platforms, dict) or not all(
        isinstance(v, list) and all(isinstance(a, str) for a in v) for v in platforms.values()
    ):
        raise InvalidRequest(f"{where}: platform_args must map platform names to lists")
    epoch = data.get("source_date_epoch", 0)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise InvalidRequest(f"{where}: source_date_epoch must be a non-negative integer")
    if not isinstance(data.get("origin", {}), dict):
        raise InvalidRequest(f"{where}: origin must be a mapping")
    return data


def _check_pe(path: Path, name: str) -> None:
    """Kernels with an EFI stub and systemd-boot/stub are PE files: they start with "MZ"."""
    with path.open("rb") as f:
        head = f.read(2)
    if head != b"MZ":
        raise InvalidRequest(f"{name} is not an EFI/PE executable")


def _modules_from_rootfs(rootfs: Path, tmp: Path, epoch: int) -> Path:
    require_tools(["unsquashfs", "depmod"], reason="importing a Talos release")
    extracted = tmp / "rootfs-modules"
    try:
        run_tool(
            ["unsquashfs", "-no-xattrs", "-n", "-d", extracted, rootfs, MODULES_ROOT],
            env={"SOURCE_DATE_EPOCH": ""},
        )
    except ToolError as exc:
        raise InvalidRequest(f"rootfs.sqsh cannot be read: {exc}") from exc
    base = extracted / MODULES_ROOT
    versions = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if len(versions) != 1:
        raise InvalidRequest(
            f"rootfs.sqsh must hold exactly one {MODULES_ROOT}/<kver>, found {versions}"
        )
    kver = versions[0]
    if not (base / kver / "modules.dep").is_file():
        run_tool(["depmod", "-b", extracted / "usr", kver])
    dest = tmp / MODULES_TAR
    write_tree_tar(base / kver, dest, f"{MODULES_ROOT}/{kver}", epoch)
    shutil.rmtree(extracted)
    return dest
