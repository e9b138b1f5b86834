"""Reading a built initramfs as the Linux kernel does (`init/initramfs.c` unpack_to_rootfs).

`read_members` splits the image into its members: NUL padding is skipped, an uncompressed
newc archive must start at a 4-byte aligned offset of the whole image (the kernel's
`this_header & 3`), a compressed one (zstd, xz) is decompressed and may hold several newc
archives. `unpack` applies the members' entries in order into one tree, later entries
replacing earlier files and links, a directory entry over a directory only setting its mode
again; a directory against a non-directory fails the test (the kernel would not merge them
the way the layer rule does, and the factory never packs that). `write_tree` lays the tree
out on disk.
"""

from __future__ import annotations

import lzma
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path

import zstandard

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ"
NEWC_MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    name: str
    mode: int
    mtime: int
    uid: int
    gid: int
    nlink: int
    data: bytes  # a file's bytes, a link's target


@dataclass(frozen=True)
class Member:
    kind: str  # "raw", "zstd" or "xz"
    offset: int
    size: int  # bytes of the image it takes (a compressed stream's own length)
    entries: list[Entry]


def read_members(image: bytes) -> list[Member]:
    members = []
    at = 0
    while at < len(image):
        if image[at] == 0:
            at += 1
            continue
        if image[at : at + 6] == NEWC_MAGIC:
            assert at % 4 == 0, f"an uncompressed archive at {at}, not 4-byte aligned"
            entries, end = _read_newc(image, at, one_archive=True)
            members.append(Member("raw", at, end - at, entries))
            at = end
            continue
        if image.startswith(ZSTD_MAGIC, at):
            zstd = zstandard.ZstdDecompressor().decompressobj()
            data = zstd.decompress(image[at:])
            kind, rest = "zstd", len(zstd.unused_data)
        elif image.startswith(XZ_MAGIC, at):
            xz = lzma.LZMADecompressor(lzma.FORMAT_XZ)
            data = xz.decompress(image[at:])
            kind, rest = "xz", len(xz.unused_data)
        else:
            raise AssertionError(f"junk at offset {at}: {image[at : at + 8].hex()}")
        entries, _ = _read_newc(data, 0, one_archive=False)
        size = len(image) - at - rest
        members.append(Member(kind, at, size, entries))
        at += size
    return members


def _read_newc(data: bytes, at: int, *, one_archive: bool) -> tuple[list[Entry], int]:
    """The entries of the newc archive(s) at `at` and where they end: one archive for an
    uncompressed member, every archive up to the end of a decompressed stream."""
    entries: list[Entry] = []
    while at < len(data):
        if data[at] == 0:
            at += 1
            continue
        assert data[at : at + 6] == NEWC_MAGIC, f"no newc magic at {at}"
        assert at % 4 == 0, f"newc header at {at}, not 4-byte aligned"
        fields = [int(data[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        namesize, size = fields[11], fields[6]
        name_at = at + 110
        name = data[name_at : name_at + namesize - 1].decode()
        body = _align4(name_at + namesize)
        at = _align4(body + size)
        if name == TRAILER:
            if one_archive:
                return entries, at
            continue
        mode = fields[1]
        entries.append(
            Entry(
                name=name,
                mode=mode,
                mtime=fields[5],
                uid=fields[2],
                gid=fields[3],
                nlink=fields[4],
                data=data[body : body + size],
            )
        )
    assert not one_archive, "an uncompressed archive without its trailer"
    return entries, at


def _align4(n: int) -> int:
    return (n + 3) & ~3


def unpack(members: list[Member]) -> dict[str, Entry]:
    """Path → the entry that the kernel leaves there after unpacking `members` in order."""
    tree: dict[str, Entry] = {}
    for member in members:
        for entry in member.entries:
            old = tree.get(entry.name)
            if old is not None:
                old_dir, new_dir = stat.S_ISDIR(old.mode), stat.S_ISDIR(entry.mode)
                assert old_dir == new_dir, f"{entry.name}: a directory and a non-directory"
            # A directory's link count is the file system's, whatever the archive says.
            tree[entry.name] = replace(entry, nlink=0) if stat.S_ISDIR(entry.mode) else entry
    return tree


def write_tree(tree: dict[str, Entry], dest: Path) -> Path:
    """Lay out `tree` under the new directory `dest` (links as links, never followed)."""
    dest.mkdir(parents=True)
    for name in sorted(tree, key=lambda n: n.count("/")):
        entry = tree[name]
        path = dest / name
        if stat.S_ISDIR(entry.mode):
            path.mkdir(exist_ok=True)
        elif stat.S_ISLNK(entry.mode):
            os.symlink(entry.data, path)
        else:
            path.write_bytes(entry.data)
    return dest
