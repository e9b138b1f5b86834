"""Initramfs assembly with extensions (talos-formats §2.2-2.6), one step per function.

What goes into the initramfs: `extensions.yaml`, the `N.sqsh` layers, `modules.dep.sqsh`,
`usr/lib/firmware/…` and the early microcode; how they are packed into cpio members after the
base initramfs: `workers.assembly.initramfs_members`.

- Extensions are numbered in schematic order (`0`, `1`, …) and listed sorted by that number
  *as a string* (`0, 1, 10, 2, …` with ten or more), as Talos does; the module layer is last.
- Firmware is moved out of each extension's layer (it is unpacked into the initramfs root);
  CPU microcode is concatenated per vendor into the early cpio.
- The module layer holds the requested `.ko` closure, every `modules.*` file that `depmod`
  writes for the merged tree (base root + closure + every extension's modules, merged by
  the layer rule of `workers.assembly.safetree`, links left out: depmod would follow them on
  the host), and `/etc/modules-load.d/schematic.conf` naming the requested modules.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from extensions.manifest import Manifest
from extensions.microcode import MICROCODE_SOURCES
from workers.assembly.compress import decompress_file
from workers.assembly.cpio import extract_newc_file, normalize_tree, walk_sorted
from workers.assembly.run import run_tool
from workers.assembly.safetree import (
    copy_regular,
    drop_links,
    is_real_dir,
    kind_of,
    make_dirs,
    merge_tree,
    move_tree,
    read_file,
    read_regular,
    remove,
    write_new,
)
from workers.assembly.squashfs import extract_squashfs, make_squashfs

MODULES_ROOT = Path("usr/lib/modules")
FIRMWARE_ROOT = Path("usr/lib/firmware")
MICROCODE_ROOT = Path("kernel/x86/microcode")
MODULES_LAYER_IMAGE = "modules.dep.sqsh"
MODULES_LOAD_CONF = Path("etc/modules-load.d/schematic.conf")
# depmod prefers extension modules (extras/) over in-tree ones of the same name.
DEPMOD_CONFIG = "search extras built-in\n"
# Files the kernel's base tree needs for depmod when the base root does not carry them.
KERNEL_DATA_FILES = ("modules.builtin", "modules.builtin.modinfo", "modules.order")


def modules_layer_metadata(kernel_version: str) -> Manifest:
    return Manifest(
        name="modules.dep",
        version=kernel_version,
        author="Image Factory",
        description="Combined modules.dep for all extensions",
        compatibility=">= 1.0.0",
    )


def layer_order(count: int) -> list[int]:
    """Extension indexes in layer order: sorted as strings, like Talos' directory listing."""
    return sorted(range(count), key=str)


def split_extension_extras(rootfs: Path, extras: Path) -> None:
    """Move firmware and microcode out of an extension's `rootfs` into `extras`.

    Intel (`intel-ucode/*`) and AMD (`amd-ucode/microcode_amd*.bin`) microcode, regular
    files only, is concatenated in name order into `extras/kernel/x86/microcode/<vendor>.bin`;
    the rest of the firmware tree moves to `extras/usr/lib/firmware`. A link on the way
    (`usr/lib/firmware` or a vendor directory being one) is data: it is moved or left as the
    link it is, never followed (see `workers.assembly.safetree`).
    """
    if not is_real_dir(rootfs, FIRMWARE_ROOT):
        return
    firmware = rootfs / FIRMWARE_ROOT
    extras.mkdir(parents=True, exist_ok=True)  # ours, not the extension's
    for vendor, directory, pattern in MICROCODE_SOURCES:
        parts = _regular_files(firmware, directory, pattern)
        if not parts:
            continue
        target = make_dirs(extras, MICROCODE_ROOT) / f"{vendor}.bin"
        with target.open("ab") as out:
            for part in parts:
                out.write(read_file(part))
                part.unlink()
    move_tree(firmware, make_dirs(extras, FIRMWARE_ROOT))


def _regular_files(firmware: Path, directory: str, pattern: str) -> list[Path]:
    """The regular files in the real directory `firmware/directory` matching `pattern`, by
    name."""
    if not is_real_dir(firmware, directory):
        return []
    with os.scandir(firmware / directory) as it:
        names = [e.name for e in it if e.is_file(follow_symlinks=False)]
    return [firmware / directory / name for name in sorted(fnmatch.filter(names, pattern))]


def base_modules_tree(base_initramfs: Path, workdir: Path, kernel_version: str) -> Path:
    """`usr/lib/modules/<kver>` of the base root (`rootfs.sqsh` inside the base initramfs),
    extracted under `workdir/base`; may be empty when the base root has no module data."""
    cpio = decompress_file(base_initramfs, workdir / "base.cpio")
    rootfs = extract_newc_file(cpio, "rootfs.sqsh", workdir / "rootfs.sqsh")
    cpio.unlink()
    root = workdir / "base"
    extract_squashfs(rootfs, root, str(MODULES_ROOT / kernel_version))
    rootfs.unlink()
    tree = root / MODULES_ROOT / kernel_version
    tree.mkdir(parents=True, exist_ok=True)
    return tree


def copy_from_modules_tar(
    modules_tar: Path, kernel_version: str, names: Iterable[str], dest: Path
) -> None:
    """Copy files (paths relative to `usr/lib/modules/<kver>/`) out of a release modules.tar."""
    prefix = f"{MODULES_ROOT}/{kernel_version}/"
    wanted = {prefix + name for name in names}
    found: set[str] = set()
    with tarfile.open(modules_tar, "r:") as tar:
        for member in tar:
            name = member.name.lstrip("./")
            if name in wanted and member.isfile():
                target = dest / name.removeprefix(prefix)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                found.add(name)
    missing = sorted(n.removeprefix(prefix) for n in wanted - found)
    if missing:
        raise FileNotFoundError(f"not in the release modules.tar: {', '.join(missing)}")


def make_modules_layer(
    *,
    dest: Path,
    workdir: Path,
    kernel_version: str,
    base_modules: Path,
    modules_tar: Path,
    closure_paths: Sequence[str],
    extension_modules: Sequence[Path],
    requested: Sequence[str],
    epoch: int,
) -> Path:
    """Build `modules.dep.sqsh` (see the module docstring).

    `base_modules`: the base root's `usr/lib/modules/<kver>`; `closure_paths`: `.ko` paths
    (relative to that directory) of the requested modules and their dependencies;
    `extension_modules`: each extension's `usr/lib/modules/<kver>` directory.
    """
    merged_root = workdir / "merged"
    merged_root.mkdir()
    merged = make_dirs(merged_root, MODULES_ROOT / kernel_version)
    # Later trees win (see `workers.assembly.safetree`): base, requested closure, extensions.
    merge_tree(base_modules, merged)
    missing_data = [f for f in KERNEL_DATA_FILES if not (merged / f).exists()]
    if missing_data:
        copy_from_modules_tar(modules_tar, kernel_version, missing_data, merged)
    layer = workdir / "layer"
    layer_modules = layer / MODULES_ROOT / kernel_version
    # Also without requested modules: an extension's modules still need a modules.dep.
    layer_modules.mkdir(parents=True)
    copy_from_modules_tar(modules_tar, kernel_version, closure_paths, layer_modules)
    merge_tree(layer_modules, merged)
    for tree in extension_modules:
        merge_tree(tree, merged)
    # depmod follows links (to directories and .ko files) and reads modules.order/builtin*:
    # it sees no link (one from an extension would point into the host, not the image), and
    # its own files are regular ones. Links stay in the extensions' layers; this tree only
    # feeds depmod.
    drop_links(merged)
    for name in os.listdir(merged):
        if name.startswith("modules.") and kind_of(merged / name) != "file":
            remove(merged / name)
    _order_all_modules(merged)
    config = workdir / "depmod.conf"
    config.write_text(DEPMOD_CONFIG)
    run_tool(
        ["depmod", "--all", "--basedir", merged_root / "usr", "--config", config, kernel_version]
    )
    for item in sorted(merged.iterdir()):
        if item.name.startswith("modules.") and kind_of(item) == "file":
            copy_regular(item, layer_modules / item.name)
    if requested:
        conf = layer / MODULES_LOAD_CONF
        conf.parent.mkdir(parents=True)
        conf.write_text("".join(f"{name}\n" for name in requested))
    # Modes of the files written here follow the umask; SquashFS records them.
    normalize_tree(layer, epoch)
    return make_squashfs(layer, dest, epoch=epoch)


def _order_all_modules(tree: Path) -> None:
    """Append every `.ko` missing from `modules.order`, sorted: depmod otherwise orders such
    modules by directory listing order, which differs between file systems."""
    order_file = tree / "modules.order"
    listed = (read_regular(order_file) or b"").decode().split()
    known = set(listed)
    extra = sorted(
        rel.as_posix()
        for rel in walk_sorted(tree)
        if rel.name.endswith(".ko") and rel.as_posix() not in known
    )
    if extra:
        write_new(order_file, "".join(f"{line}\n" for line in [*listed, *extra]).encode())
