"""`extensions-<arch>.sqsh` (our addition): a schematic's extensions as one systemd-sysext image.

The layers the initramfs would stack at boot (each extension's SquashFS in layer order, the
schematic extension, then the module layer) are each unpacked into a directory of their own
and merged into one tree in that order by `workers.assembly.safetree`'s rule: the later layer
wins, as overlayfs shows it, and nothing is ever written through a link. Firmware that the
initramfs carries beside a layer (`usr/lib/firmware`) is merged right after that layer,
by the same rule (files 0644, directories 0755: firmware is data); early microcode is not,
it only means something in an initramfs. Then

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

from workers.assembly.safetree import is_real_dir, make_dirs, merge_tree, move_tree, write_new
from workers.assembly.squashfs import extract_squashfs, make_squashfs

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
    layers: Sequence[tuple[Path, Path | None]],
    name: str,
    arch: str,
    epoch: int,
) -> Path:
    """Merge `layers` (first at the bottom: a SquashFS image and the directory holding its
    `usr/lib/firmware`, or None) into the sysext image `dest`."""
    tree = workdir / "sysext-tree"
    tree.mkdir()
    tree.chmod(0o755)  # the image's root directory; not left to the umask
    for number, (image, extras) in enumerate(layers):
        # Modes come from the layers.
        move_tree(extract_squashfs(image, workdir / f"layer-{number}"), tree)
        if extras is not None and is_real_dir(extras, FIRMWARE_DIR):
            firmware = make_dirs(tree, FIRMWARE_DIR, 0o755)
            merge_tree(extras / FIRMWARE_DIR, firmware, file_mode=0o644, dir_mode=0o755)
    release = make_dirs(tree, RELEASE_DIR, 0o755) / f"extension-release.{name}"
    write_new(release, extension_release(arch).encode(), 0o644)
    make_squashfs(tree, dest, epoch=epoch)
    shutil.rmtree(tree)
    return dest
