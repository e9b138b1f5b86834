"""The reference OS trees: the base root (`rootfs.sqsh`) and the base initramfs around it.

Base root (usr-merged, immutable SquashFS):
  bin -> usr/bin, sbin -> usr/sbin, lib -> usr/lib; `usr/bin/busybox` plus one symlink per
  applet; `usr/sbin/init` (stage 2, `reference/stage2`); `usr/lib/factory/*.awk` and `machine`
  (install/upgrade, `reference/machine`);
  `usr/lib/modules/<kver>/` with ONLY `modules.builtin*` and `modules.order` (the `.ko` files
  come from extensions and the kernel-modules layer); empty `usr/lib/firmware` (mount point
  for the initramfs firmware); `etc/os-release`, `etc/modules-load.d/`; mount points.

Base initramfs (zstd newc cpio, named `initramfs.xz` as Talos ≥ 1.8 does):
  `/init` (stage 1, `reference/init`), `/bin/busybox`, `/rootfs.sqsh`,
  `/etc/factory/layers.awk`, `/etc/factory/modules/<name>.ko` + `load-order` (the boot
  modules: loop, squashfs, overlay and disk drivers, with their dependencies).
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

from workers.assembly.run import run_tool
from workers.releases.modules import ModuleIndex, resolve_modules

# What stage 1 needs to mount the layers, and to see disks (the META partition).
# crct10dif_pclmul fails without PCLMUL (QEMU TCG); crct10dif_generic covers that case.
BOOT_MODULES = (
    "loop",
    "squashfs",
    "overlay",
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "ahci",
    "ata_piix",
    "crct10dif_generic",
    "crct10dif_pclmul",
    "crc64_rocksoft_generic",
    "sd_mod",
    # The machine life cycle: the network to reach the registry, fw_cfg for upgrade requests.
    "virtio_net",
    "qemu_fw_cfg",
)
BUILTIN_DATA_PREFIXES = ("modules.builtin", "modules.order")
ROOT_MOUNT_POINTS = ("dev", "proc", "sys", "run", "tmp", "mnt", "root", "var")


def script(name: str) -> bytes:
    """A file of the reference OS sources (package data under `reference/`)."""
    return files("workers.releases").joinpath("reference", name).read_bytes()


def busybox_applets(busybox: Path) -> list[str]:
    """Applet install paths (`bin/sh`, `usr/sbin/ip`, ...).

    Runs a Debian busybox with `--list-full`: the packaged one, or for a foreign architecture
    the host's build of the same package (see `workers.releases.reference`).
    """
    out = run_tool([busybox, "--list-full"]).decode()
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def make_rootfs_tree(
    root: Path,
    *,
    busybox: Path,
    modules_dir: Path,
    kernel_version: str,
    version: str,
    applet_lister: Path | None = None,
) -> Path:
    """Lay out the base root in `root` (see the module docstring)."""
    root.mkdir(parents=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")):
        (root / link).symlink_to(target)
    for d in ("usr/bin", "usr/sbin", "usr/lib/factory", "usr/lib/firmware", "usr/local"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for d in ("etc/modules-load.d", *ROOT_MOUNT_POINTS):
        (root / d).mkdir(parents=True, exist_ok=True)

    _install(busybox.read_bytes(), root / "usr/bin/busybox", 0o755)
    for applet in busybox_applets(applet_lister or busybox):
        dest = _usr_merged(applet)
        if dest is None or (root / dest).exists() or (root / dest).is_symlink():
            continue
        (root / dest).parent.mkdir(parents=True, exist_ok=True)
        target = "busybox" if dest.startswith("usr/bin/") else "../bin/busybox"
        (root / dest).symlink_to(target)
    stage2 = root / "usr/sbin/init"
    stage2.unlink(missing_ok=True)
    _install(script("stage2"), stage2, 0o755)
    for awk in ("adv-records.awk", "meta-env.awk"):
        _install(script(awk), root / "usr/lib/factory" / awk, 0o644)
    _install(script("machine"), root / "usr/lib/factory/machine", 0o755)

    kernel_data = root / "usr/lib/modules" / kernel_version
    kernel_data.mkdir(parents=True)
    for item in sorted(modules_dir.iterdir()):
        if item.is_file() and item.name.startswith(BUILTIN_DATA_PREFIXES):
            _install(item.read_bytes(), kernel_data / item.name, 0o644)

    _install(_os_release(version, kernel_version), root / "etc/os-release", 0o644)
    _install(b"root:x:0:0:root:/root:/bin/sh\n", root / "etc/passwd", 0o644)
    _install(b"root:x:0:\n", root / "etc/group", 0o644)
    normalize_dir_modes(root)
    (root / "root").chmod(0o700)
    (root / "tmp").chmod(0o1777)
    return root


def make_initramfs_tree(
    root: Path,
    *,
    busybox: Path,
    rootfs_sqsh: Path,
    modules_dir: Path,
    index: ModuleIndex,
    version: str,
) -> list[str]:
    """Lay out the base initramfs in `root`; return the boot modules in load order."""
    _install(script("init"), root / "init", 0o755)
    _install(busybox.read_bytes(), root / "bin/busybox", 0o755)
    _install(script("layers.awk"), root / "etc/factory/layers.awk", 0o644)
    shutil.copyfile(rootfs_sqsh, root / "rootfs.sqsh")
    (root / "rootfs.sqsh").chmod(0o644)
    available = [m for m in BOOT_MODULES if m in index.modules]
    order = resolve_modules(index, available, version)
    modules = root / "etc/factory/modules"
    for name in order:
        _install(
            (modules_dir / index.modules[name].path).read_bytes(), modules / f"{name}.ko", 0o644
        )
    _install("".join(f"{name}\n" for name in order).encode(), modules / "load-order", 0o644)
    normalize_dir_modes(root)
    return order


def normalize_dir_modes(root: Path) -> None:
    """Directories 0755 whatever the builder's umask, so the packed bytes do not depend on it."""
    root.chmod(0o755)
    for path in root.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)


def _usr_merged(applet_path: str) -> str | None:
    """`bin/sh` → `usr/bin/sh`, `sbin/ip` → `usr/sbin/ip`; `linuxrc` and odd paths → None."""
    for prefix, merged in (("usr/bin/", "usr/bin/"), ("usr/sbin/", "usr/sbin/")):
        if applet_path.startswith(prefix):
            return merged + applet_path[len(prefix) :]
    for prefix, merged in (("bin/", "usr/bin/"), ("sbin/", "usr/sbin/")):
        if applet_path.startswith(prefix):
            return merged + applet_path[len(prefix) :]
    return None


def _os_release(version: str, kernel_version: str) -> bytes:
    return (
        'NAME="Image Factory Reference OS"\n'
        "ID=factory-reference\n"
        f"VERSION={version}\n"
        f"VERSION_ID={version.removeprefix('v')}\n"
        f'PRETTY_NAME="Image Factory Reference OS {version} (Debian kernel {kernel_version})"\n'
    ).encode()


def _install(data: bytes, dest: Path, mode: int) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    dest.chmod(mode)
