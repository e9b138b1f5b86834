"""`extensions-<arch>.sqsh` (our addition): a schematic's extensions as one systemd-sysext image.

The layers the initramfs would stack at boot (each extension's SquashFS in schematic order,
the schematic extension, then the module layer) are unpacked into one tree in that order, a
later layer's file replacing an earlier one's (overlayfs' "last layer on top"). Firmware that
the initramfs carries beside a layer (`usr/lib/firmware`) is merged as well; early microcode
is not, it only means something in an initramfs. Then

    usr/lib/extension-release.d/extension-release.<name>
        ID=_any
        ARCHITECTURE=<systemd architecture>

marks the image as a sysext for any OS, and mksquashfs packs it reproducibly (root-owned,
fixed times). systemd-sysext matches the release file to the image's file name, so install it
as `/var/lib/extensions/<name>.raw`. sysext merges only `/usr` and `/opt`; other top-level
directories in the layers are carried but ignored by it.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from workers.assembly.run import run_tool
from workers.assembly.squashfs import make_squashfs

RELEASE_DIR = "usr/lib/extension-release.d"
SYSTEMD_ARCHITECTURES = {"amd64": "x86-64", "arm64": "arm64"}
FIRMWARE_DIR = "usr/lib/firmware"


def sysext_name(schematic_id: str) -> str:
    """The extension's name (and the file name, plus `.raw`, it must be installed under)."""
    return f"factory-{schematic_id[:12]}"


def extension_release(arch: str) -> str:
    return f"ID=_any\nARCHITECTURE={SYSTEMD_ARCHITECTURES[arch]}\n"


def make_sysext(
    dest: Path,
    *,
    workdir: Path,
    layers: Sequence[Path],
    firmware_trees: Sequence[Path],
    name: str,
    arch: str,
    epoch: int,
) -> Path:
    """Merge the SquashFS `layers` (first at the bottom) and the directories holding
    `usr/lib/firmware` into the sysext image `dest`."""
    tree = workdir / "sysext-tree"
    tree.mkdir()
    tree.chmod(0o755)  # the image's root directory; not left to the umask
    for layer in layers:
        # -f: later layers overwrite files of earlier ones; modes come from the layers.
        run_tool(["unsquashfs", "-no-progress", "-no-xattrs", "-f", "-d", tree, layer])
    for extras in firmware_trees:
        firmware = extras / FIRMWARE_DIR
        if firmware.is_dir():
            _add_files(firmware, tree / FIRMWARE_DIR)
    release = tree / RELEASE_DIR / f"extension-release.{name}"
    _make_dirs(release.parent)
    release.write_text(extension_release(arch))
    release.chmod(0o644)
    make_squashfs(tree, dest, epoch=epoch)
    shutil.rmtree(tree)
    return dest


def _make_dirs(directory: Path) -> None:
    """Create `directory` and missing parents with mode 0755 (not left to the umask)."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir()
        path.chmod(0o755)


def _add_files(src: Path, dest: Path) -> None:
    """Copy the tree `src` over `dest`: files 0644 (firmware is data), new directories 0755."""
    for path in sorted(src.rglob("*")):
        target = dest / path.relative_to(src)
        if path.is_dir():
            _make_dirs(target)
        else:
            _make_dirs(target.parent)
            shutil.copyfile(path, target)
            target.chmod(0o644)
