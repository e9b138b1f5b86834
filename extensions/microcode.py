"""Which files of an extension are early CPU microcode (talos-formats §2.4).

Intel (`usr/lib/firmware/intel-ucode/*`) and AMD (`usr/lib/firmware/amd-ucode/
microcode_amd*.bin`), regular files directly in the vendor directory. Assembly moves them
into an uncompressed cpio *in front of* the base initramfs; `carries_cpu_microcode` tells
from a validated tree, when the extension enters the catalog, whether it has any, so the
web side knows an initramfs' first bytes without extracting a single extension.
"""

from __future__ import annotations

import fnmatch

from extensions.tree import Tree

FIRMWARE_DIR = ("rootfs", "usr", "lib", "firmware")
# (vendor, directory under usr/lib/firmware, file name pattern) of early CPU microcode.
MICROCODE_SOURCES = (
    ("GenuineIntel", "intel-ucode", "*"),
    ("AuthenticAMD", "amd-ucode", "microcode_amd*.bin"),
)


def carries_cpu_microcode(tree: Tree) -> bool:
    """Whether assembly would find early CPU microcode in this extension: a regular file
    matching a vendor's pattern right in its directory (hard links are copies by now;
    `check_parents` has made every parent a real directory)."""
    for path, entry in tree.entries.items():
        parts = tuple(path.split("/"))
        if entry.kind != "file" or len(parts) != 6 or parts[:4] != FIRMWARE_DIR:
            continue
        for _vendor, directory, pattern in MICROCODE_SOURCES:
            if parts[4] == directory and fnmatch.fnmatchcase(parts[5], pattern):
                return True
    return False
