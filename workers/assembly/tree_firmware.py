"""An extension's firmware member and microcode straight from its validated tree.

What `workers.assembly.initramfs.split_extension_extras` does to an unpacked extension, read
from the tree instead (`extensions.package.read_extension`: files read in place from the
tar), so the firmware is never unpacked: CPU microcode (regular files matching a vendor's
pattern right in its real directory, by name) is concatenated per vendor into
`kernel/x86/microcode/<vendor>.bin`, and the rest of a real `usr/lib/firmware` directory
becomes the extension's compressed firmware member: a newc cpio written here (entries in
`walk_sorted` order, modes as `cpio.normalize_tree` makes them, owner 0:0, dated at the
epoch) through a named pipe into zstd. Unpacked by the kernel, it gives the tree the member
GNU cpio made of the moved firmware gave.
"""

from __future__ import annotations

import fnmatch
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from extensions.canonical import canonical_entries
from extensions.microcode import MICROCODE_SOURCES
from extensions.tree import Entry, Tree
from workers.assembly.compress import EXTENSION_ZSTD_LEVEL
from workers.assembly.fifo import fed_fifo
from workers.assembly.initramfs import MICROCODE_ROOT
from workers.assembly.initramfs_members import newc_header
from workers.assembly.run import run_tool
from workers.assembly.safetree import make_dirs
from workers.assembly.tree_layer import FIRMWARE, is_tree_dir

_TRAILER = "TRAILER!!!"
_CHUNK = 1 << 20
_PARENTS = ("usr", "usr/lib")


def microcode_parts(tree: Tree) -> dict[str, list[str]]:
    """Per vendor, the tree paths of its microcode files, in the order they are joined."""
    parts: dict[str, list[str]] = {}
    for vendor, directory, pattern in MICROCODE_SOURCES:
        where = f"{FIRMWARE}/{directory}"
        if not is_tree_dir(tree, where):
            continue
        names = [
            path.removeprefix(where + "/")
            for path, entry in tree.entries.items()
            if path.startswith(where + "/") and "/" not in path[len(where) + 1 :]
            and entry.kind == "file"
        ]  # fmt: skip
        found = sorted(fnmatch.filter(names, pattern))
        if found:
            parts[vendor] = [f"{where}/{name}" for name in found]
    return parts


def write_microcode(tree: Tree, extras: Path) -> bool:
    """Write each vendor's microcode of `tree` into `extras/kernel/x86/microcode/<vendor>.bin`
    (`extras` is made when there is some); whether there was any."""
    parts = microcode_parts(tree)
    if parts:
        extras.mkdir(exist_ok=True)
    for vendor, paths in parts.items():
        target = make_dirs(extras, MICROCODE_ROOT) / f"{vendor}.bin"
        with target.open("wb") as out:
            for path in paths:
                with tree.entries[path].open() as part:
                    while chunk := part.read(_CHUNK):
                        out.write(chunk)
    return bool(parts)


def firmware_entries(tree: Tree) -> list[tuple[str, Entry]] | None:
    """The firmware member's entries (names below the initramfs root: `usr`, `usr/lib`,
    `usr/lib/firmware`, …, microcode left out), parents first; None when `usr/lib/firmware`
    is not a directory (a link there stays in the layer)."""
    if not is_tree_dir(tree, FIRMWARE):
        return None
    moved = {path for paths in microcode_parts(tree).values() for path in paths}
    entries = [(name, Entry("dir", 0o755)) for name in _PARENTS]
    for path, entry in canonical_entries(tree):
        if (path == FIRMWARE or path.startswith(FIRMWARE + "/")) and path not in moved:
            entries.append((path.removeprefix("rootfs/"), entry))
    return entries


def firmware_listing(entries: Sequence[tuple[str, Entry]]) -> dict[str, bool]:
    """Path below `usr` → is a directory: what `initramfs_members.listings_agree` compares
    (the same listing the unpacked firmware of the extension gives)."""
    return {name.removeprefix("usr/"): entry.kind == "dir" for name, entry in entries[1:]}


def _newc_mode(entry: Entry) -> int:
    if entry.kind == "dir":
        return stat.S_IFDIR | 0o755
    if entry.kind == "symlink":
        return stat.S_IFLNK | 0o777
    return stat.S_IFREG | (0o755 if entry.mode & 0o111 else 0o644)


def write_newc(out: BinaryIO, entries: Sequence[tuple[str, Entry]], *, epoch: int) -> None:
    """`entries` as one uncompressed newc archive (module docstring), trailer included."""
    for name, entry in entries:
        if entry.kind == "symlink":
            data = entry.target.encode()
            out.write(newc_header(name, mode=_newc_mode(entry), size=len(data), mtime=epoch))
            out.write(data + b"\0" * (-len(data) % 4))
            continue
        size = entry.size if entry.kind == "file" else 0
        out.write(newc_header(name, mode=_newc_mode(entry), size=size, mtime=epoch))
        if entry.kind == "file":
            entry.copy_to(out, name)
            out.write(b"\0" * (-size % 4))
    out.write(newc_header(_TRAILER, mode=0, size=0, mtime=0))


def make_tree_firmware_member(
    entries: Sequence[tuple[str, Entry]], dest: Path, *, epoch: int
) -> Path:
    """The compressed firmware member of `entries` (`firmware_entries`) in the new file
    `dest`, at the level of what is compressed per extension (`workers.assembly.compress`)."""

    def write(out: BinaryIO) -> None:
        write_newc(out, entries, epoch=epoch)

    level = EXTENSION_ZSTD_LEVEL
    with fed_fifo(dest.with_name(dest.name + ".cpio-pipe"), write) as pipe:
        run_tool(["zstd", "-q", f"-{level}", "-T0", "-o", dest], stdin=pipe)
    return dest
