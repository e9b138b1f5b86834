"""The extras-directory path the build used for the initramfs' firmware before it read the
firmware straight from the extension's tar (`workers.assembly.tree_firmware`), kept as the
tests' reference: the unpacked extension's firmware, moved into an extras directory by
`workers.assembly.initramfs.split_extension_extras`, packed by GNU cpio into one compressed
member per extension, and listed to tell whether those members agree."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from workers.assembly.compress import Codec, compress_file
from workers.assembly.cpio import make_cpio, walk_sorted
from workers.assembly.initramfs import FIRMWARE_ROOT
from workers.assembly.initramfs_members import listings_agree
from workers.assembly.safetree import is_real_dir


def make_firmware_member(extras: Path, workdir: Path, *, epoch: int) -> Path:
    """The compressed member with one extension's `usr/lib/firmware` tree (from its extras
    directory, whose `usr` is moved away); `workdir` must not exist."""
    root = workdir / "tree"
    root.mkdir(parents=True)
    os.rename(extras / "usr", root / "usr")
    raw = make_cpio(root, workdir / "firmware.cpio", epoch=epoch)
    member = compress_file(raw, raw.with_name(raw.name + ".zst"), Codec.ZSTD)
    raw.unlink()
    return member


def firmware_trees(extras: Sequence[Path]) -> list[Path]:
    """The extras directories that hold firmware, in the given (layer) order."""
    return [tree for tree in extras if is_real_dir(tree, FIRMWARE_ROOT)]


def members_agree(extras: Sequence[Path]) -> bool:
    """Whether unpacking one firmware member per extras directory in turn, the kernel's way,
    gives the tree the layer rule gives (see `listings_agree`)."""
    return listings_agree([firmware_listing(tree) for tree in extras])


def firmware_listing(extras: Path) -> dict[str, bool] | None:
    """The firmware of an extras directory as path below `usr` → is a directory; None when
    an entry is neither a directory, a link nor a singly linked regular file (the kernel and
    the layer rule could disagree on it)."""
    listing = {}
    for rel in walk_sorted(extras / "usr"):
        st = os.lstat(extras / "usr" / rel)
        is_dir = stat.S_ISDIR(st.st_mode)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            return None
        if not (is_dir or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            return None
        listing[rel.as_posix()] = is_dir
    return listing
