"""Initramfs assembly with extensions (talos-formats §2.2-2.6), one step per function.

Final byte layout: [uncompressed newc cpio with `kernel/x86/microcode/*.bin`, only when an
extension brings microcode] ‖ the release's base initramfs, copied as is ‖ one compressed newc
cpio (the *segment*) with `extensions.yaml`, the `N.sqsh` layers, `modules.dep.sqsh` and
`usr/lib/firmware/…`.

- Extensions are numbered in schematic order (`0`, `1`, …) and listed sorted by that number
  *as a string* (`0, 1, 10, 2, …` with ten or more), as Talos does; the module layer is last.
- Firmware is moved out of each extension into the segment; CPU microcode is concatenated per
  vendor into the early cpio.
- The module layer holds the requested `.ko` closure, every `modules.*` file that `depmod`
  writes for the merged tree (base root + closure + every extension's modules), and
  `/etc/modules-load.d/schematic.conf` naming the requested modules.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from extensions.manifest import Manifest
from workers.assembly.compress import Codec, compress_file, decompress_file
from workers.assembly.cpio import extract_newc_file, make_cpio, normalize_tree, walk_sorted
from workers.assembly.extensions_yaml import LayerEntry, render_extensions_yaml
from workers.assembly.run import run_tool
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

    Intel (`intel-ucode/*`) and AMD (`amd-ucode/microcode_amd*.bin`) microcode is concatenated
    in name order into `extras/kernel/x86/microcode/<vendor>.bin`; the rest of the firmware
    tree moves to `extras/usr/lib/firmware`.
    """
    firmware = rootfs / FIRMWARE_ROOT
    if not firmware.is_dir() or firmware.is_symlink():
        return
    vendors = {
        "GenuineIntel": sorted((firmware / "intel-ucode").glob("*")),
        "AuthenticAMD": sorted((firmware / "amd-ucode").glob("microcode_amd*.bin")),
    }
    for vendor, parts in vendors.items():
        parts = [p for p in parts if p.is_file() and not p.is_symlink()]
        if not parts:
            continue
        target = extras / MICROCODE_ROOT / f"{vendor}.bin"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("ab") as out:
            for part in parts:
                out.write(part.read_bytes())
                part.unlink()
    _move_tree(firmware, extras / FIRMWARE_ROOT)


def _move_tree(src: Path, dest: Path) -> None:
    """Move the contents of `src` into `dest`, merging directories; `src` is removed."""
    dest.mkdir(parents=True, exist_ok=True)
    for child in sorted(src.iterdir()):
        target = dest / child.name
        if child.is_dir() and not child.is_symlink() and target.is_dir():
            _move_tree(child, target)
        else:
            if target.exists() or target.is_symlink():
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                else:
                    target.unlink()
            shutil.move(child, target)
    src.rmdir()


def make_extension_layer(extension: Path, dest: Path, extras: Path, *, epoch: int) -> Path:
    """The SquashFS layer of one extracted extension (`manifest.yaml` + `rootfs/`); its
    firmware and microcode go to `extras` instead."""
    rootfs = extension / "rootfs"
    split_extension_extras(rootfs, extras)
    return make_squashfs(rootfs, dest, epoch=epoch)


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
    merged = merged_root / MODULES_ROOT / kernel_version
    shutil.copytree(base_modules, merged, symlinks=True)
    missing_data = [f for f in KERNEL_DATA_FILES if not (merged / f).exists()]
    if missing_data:
        copy_from_modules_tar(modules_tar, kernel_version, missing_data, merged)
    layer = workdir / "layer"
    layer_modules = layer / MODULES_ROOT / kernel_version
    # Also without requested modules: an extension's modules still need a modules.dep.
    layer_modules.mkdir(parents=True)
    copy_from_modules_tar(modules_tar, kernel_version, closure_paths, layer_modules)
    shutil.copytree(layer_modules, merged, dirs_exist_ok=True)
    for tree in extension_modules:
        shutil.copytree(tree, merged, symlinks=True, dirs_exist_ok=True)
    _order_all_modules(merged)
    config = workdir / "depmod.conf"
    config.write_text(DEPMOD_CONFIG)
    run_tool(
        ["depmod", "--all", "--basedir", merged_root / "usr", "--config", config, kernel_version]
    )
    for item in sorted(merged.iterdir()):
        if item.is_file() and item.name.startswith("modules."):
            shutil.copyfile(item, layer_modules / item.name)
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
    listed = order_file.read_text().split() if order_file.exists() else []
    known = set(listed)
    extra = sorted(
        rel.as_posix()
        for rel in walk_sorted(tree)
        if rel.name.endswith(".ko") and rel.as_posix() not in known
    )
    if extra:
        order_file.write_text("".join(f"{line}\n" for line in [*listed, *extra]))


def write_segment_tree(
    staging: Path, layers: Sequence[tuple[LayerEntry, Path]], extras: Sequence[Path]
) -> Path:
    """Fill `staging` with `extensions.yaml`, the layer files and the extras trees."""
    staging.mkdir(parents=True, exist_ok=True)
    for entry, sqsh in layers:
        shutil.copyfile(sqsh, staging / entry.image)
    (staging / "extensions.yaml").write_bytes(render_extensions_yaml([e for e, _ in layers]))
    for tree in extras:
        _merge_extras(tree, staging)
    return staging


def _merge_extras(tree: Path, staging: Path) -> None:
    """Copy one extension's extras in: firmware files replace, microcode appends."""
    for rel in walk_sorted(tree):
        src, target = tree / rel, staging / rel
        if src.is_dir() and not src.is_symlink():
            target.mkdir(parents=True, exist_ok=True)
        elif rel.parent == MICROCODE_ROOT:
            with target.open("ab") as out:
                out.write(src.read_bytes())
        else:
            if target.exists() or target.is_symlink():
                target.unlink()
            if src.is_symlink():
                target.symlink_to(os.readlink(src))
            else:
                shutil.copyfile(src, target)


def make_segment(staging: Path, workdir: Path, *, epoch: int) -> tuple[Path, Path | None]:
    """(compressed segment cpio, early microcode cpio or None) from a filled `staging` tree."""
    microcode = None
    kernel = staging / "kernel"
    if kernel.is_dir():
        early = workdir / "early"
        early.mkdir()
        shutil.move(kernel, early / "kernel")
        microcode = make_cpio(early, workdir / "microcode.cpio", epoch=epoch)
    raw = make_cpio(staging, workdir / "segment.cpio", epoch=epoch)
    segment = compress_file(raw, workdir / "segment.cpio.zst", Codec.ZSTD)
    raw.unlink()
    return segment, microcode


def concat_initramfs(dest: Path, base: Path, segment: Path, microcode: Path | None) -> Path:
    """[microcode] ‖ base ‖ segment, byte for byte (the base is never recompressed)."""
    with dest.open("wb") as out:
        for part in (microcode, base, segment):
            if part is not None:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
    return dest
