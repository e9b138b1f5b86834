"""Build the reference release from Debian packages (nothing is installed on the host).

Packages: the kernel that `linux-image-<arch>` depends on, `busybox-static`, the GRUB
packages (amd64: `grub-pc-bin`, `grub-efi-amd64-bin`; arm64 has none) and `systemd-boot-efi`
(`reference_arches`), all of `arch`; fetched with `apt-get download` into `cache_dir` (reused
by later builds; a foreign arch reads a private package index in `cache_dir/apt-<arch>`) and
unpacked with `dpkg-deb -x`. For a foreign arch the host's own `busybox-static` is fetched
too, only to list the applets (the arm64 binary cannot run on an amd64 host; Debian builds
both from one configuration). The module tree gets
its `modules.*` files from `depmod -b`. Output: the seven release files (see
`manifest.py`) and the installer base (`reference_installer.py`), stored with
`save_release`, plus the module index.

The same package versions and SOURCE_DATE_EPOCH give a byte-identical manifest.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from workers.assembly.compress import Codec, compress_file
from workers.assembly.cpio import make_cpio
from workers.assembly.run import require_tools, run_tool
from workers.assembly.squashfs import make_squashfs
from workers.releases import debian
from workers.releases.installer_base import store_installer_base
from workers.releases.manifest import (
    GRUB_BIOS_TAR,
    GRUB_EFI_TAR,
    INITRAMFS,
    MODULES_TAR,
    VMLINUZ,
    Manifest,
)
from workers.releases.modules import ModuleIndex, parse_index, save_module_index
from workers.releases.platforms import upstream_platform_args
from workers.releases.reference_arches import RECIPES
from workers.releases.reference_installer import make_reference_installer_base
from workers.releases.reference_os import make_initramfs_tree, make_rootfs_tree
from workers.releases.stored import Release, file_entry, save_release
from workers.releases.tree_tar import write_tree_tar
from workers.releases.versions import normalize_version, validate_arch
from workers.store import Store

Progress = Callable[[str], None]

REFERENCE_TOOLS = (*debian.APT_TOOLS, "depmod", "mksquashfs", "cpio", "zstd")


def _quiet(_: str) -> None:
    """Progress sink that shows nothing."""


def build_reference_release(
    store: Store,
    *,
    version: str,
    arch: str,
    source_date_epoch: int,
    cache_dir: Path,
    work_dir: Path | None = None,
    progress: Progress = _quiet,
) -> Release:
    """Build and store the reference release `version`/`arch`."""
    version = normalize_version(version)
    validate_arch(arch)
    recipe = RECIPES[arch]
    require_tools(REFERENCE_TOOLS, reason="building the reference release")
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reference-", dir=work_dir) as tmp_name:
        tmp = Path(tmp_name)
        progress(f"resolving Debian packages ({arch})")
        host_arch = debian.host_arch()
        apt = debian.apt_for(arch, cache_dir / f"apt-{arch}")
        names = [debian.kernel_package(arch, apt), *recipe.packages]
        packages = [debian.describe(name, arch, apt) for name in names]
        unpacked: dict[str, Path] = {}
        for package in packages:
            progress(f"fetching {package.name} {package.version} ({arch})")
            deb = debian.download(package, cache_dir, apt)
            unpacked[package.name] = debian.extract(deb, tmp / "debs" / package.name)
        busybox = unpacked["busybox-static"] / "bin/busybox"
        applet_lister = busybox
        if arch != host_arch:
            host_busybox = debian.describe("busybox-static", host_arch)
            deb = debian.download(host_busybox, cache_dir)
            applet_lister = debian.extract(deb, tmp / "debs/host-busybox") / "bin/busybox"

        progress("preparing the kernel module tree (depmod)")
        kernel_version, vmlinuz, modules_dir = _kernel_tree(unpacked[names[0]], tmp / "tree")
        run_tool(["depmod", "-b", tmp / "tree/usr", kernel_version])
        index = _index_from_dir(modules_dir, kernel_version)

        out = tmp / "out"
        out.mkdir()
        files = {VMLINUZ: out / VMLINUZ}
        shutil.copyfile(vmlinuz, files[VMLINUZ])

        progress("packing modules.tar")
        files[MODULES_TAR] = write_tree_tar(
            modules_dir, out / MODULES_TAR, f"usr/lib/modules/{kernel_version}", source_date_epoch
        )

        progress("building rootfs.sqsh")
        rootfs = make_rootfs_tree(
            tmp / "rootfs",
            busybox=busybox,
            applet_lister=applet_lister,
            modules_dir=modules_dir,
            kernel_version=kernel_version,
            version=version,
        )
        sqsh = make_squashfs(rootfs, tmp / "rootfs.sqsh", epoch=source_date_epoch)

        progress("building the base initramfs")
        make_initramfs_tree(
            tmp / "initramfs",
            busybox=busybox,
            rootfs_sqsh=sqsh,
            modules_dir=modules_dir,
            index=index,
            version=version,
        )
        cpio = make_cpio(tmp / "initramfs", tmp / "initramfs.cpio", epoch=source_date_epoch)
        files[INITRAMFS] = compress_file(cpio, out / INITRAMFS, Codec.ZSTD)

        progress("packing bootloader files")
        for name, (package_name, rel) in recipe.grub.items():
            files[name] = write_tree_tar(
                unpacked[package_name] / rel, out / name, "", source_date_epoch
            )
        for name, rel in recipe.systemd_efi.items():
            files[name] = out / name
            shutil.copyfile(unpacked["systemd-boot-efi"] / rel, files[name])

        # The installer writes the GRUB disk layout: arm64 (systemd-boot only) has no base
        # yet, so its installer images hold the boot assets alone, as before.
        installer_base = None
        if GRUB_BIOS_TAR in files and GRUB_EFI_TAR in files:
            progress("building the installer base")
            (tmp / "installer-base").mkdir()
            base = make_reference_installer_base(
                tmp / "installer-base",
                busybox=busybox,
                grub_tars=(files[GRUB_BIOS_TAR], files[GRUB_EFI_TAR]),
                modules_dir=modules_dir,
                index=index,
                version=version,
                arch=arch,
                epoch=source_date_epoch,
            )
            installer_base = store_installer_base(store, base, tmp)

        manifest = Manifest(
            version=version,
            arch=arch,
            source_date_epoch=source_date_epoch,
            kernel_version=kernel_version,
            kernel_args=recipe.kernel_args,
            platform_args=upstream_platform_args(arch),
            files={name: file_entry(path) for name, path in sorted(files.items())},
            origin={
                "builder": "image-factory release build-reference",
                "debian_packages": {p.name: p.version for p in packages},
            },
            installer_base=installer_base,
        )
        progress(f"storing release {version}/{arch}")
        release = save_release(store, manifest, files)
        save_module_index(store, release, index)
    progress(f"release {version}/{arch} ready (kernel {kernel_version})")
    return release


def _kernel_tree(package_root: Path, tree: Path) -> tuple[str, Path, Path]:
    """Find vmlinuz and the module directory in the unpacked kernel package and move the
    modules to `tree/usr/lib/modules/<kver>` (the package ships them under /lib/modules)."""
    images = sorted((package_root / "boot").glob("vmlinuz-*"))
    if len(images) != 1:
        raise RuntimeError(f"kernel package has {len(images)} vmlinuz files, expected 1")
    kernel_version = images[0].name.removeprefix("vmlinuz-")
    for base in ("usr/lib/modules", "lib/modules"):
        src = package_root / base / kernel_version
        if src.is_dir():
            break
    else:
        raise RuntimeError(f"kernel package has no module directory for {kernel_version}")
    dest = tree / "usr/lib/modules" / kernel_version
    dest.parent.mkdir(parents=True)
    shutil.move(src, dest)
    return kernel_version, images[0], dest


def _index_from_dir(modules_dir: Path, kernel_version: str) -> ModuleIndex:
    builtin = modules_dir / "modules.builtin"
    return parse_index(
        kernel_version,
        (modules_dir / "modules.dep").read_text(),
        builtin.read_text() if builtin.exists() else "",
    )
