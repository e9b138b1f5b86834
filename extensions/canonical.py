"""The canonical tar: one byte-exact form for a staged tree, whose sha256 is its digest.

Entries sorted by path components (parents first), every missing parent directory written
explicitly, owner 0:0 with empty user/group names, every mtime the given SOURCE_DATE_EPOCH,
modes normalised (directories 0755, files 0755 if any x bit else 0644, symlinks 0777), no
xattrs or other extras. Headers are POSIX ustar; a name or link target that does not fit
gets a pax `x` header with only `path`/`linkpath`. Two zero blocks end the archive, with no
record padding. Written by hand so the bytes never depend on the Python version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from extensions.tree import Entry, Tree, ancestors

BLOCK = 512
_TYPE = {"file": b"0", "symlink": b"2", "dir": b"5"}
_PAX_NAME = b"././@PaxHeader"
_MAX_OCTAL_SIZE = 8**11 - 1


@dataclass(frozen=True)
class CanonicalTar:
    path: Path
    digest: str  # sha256 hex of the file
    size: int


def normalise_mode(entry: Entry) -> int:
    """Directories 0755, files 0755 if any x bit else 0644, symlinks 0777."""
    if entry.kind == "dir":
        return 0o755
    if entry.kind == "symlink":
        return 0o777
    return 0o755 if entry.mode & 0o111 else 0o644


def sort_key(path: str) -> tuple[bytes, ...]:
    return tuple(path.encode("utf-8").split(b"/"))


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) fitting ustar's 155/100-byte fields, or None."""
    if len(name) <= 100:
        return b"", name
    for i in range(len(name) - 2, 0, -1):
        if name[i : i + 1] == b"/" and i <= 155 and len(name) - i - 1 <= 100:
            return name[:i], name[i + 1 :]
    return None


def _header(
    name: bytes, prefix: bytes, mode: int, size: int, mtime: int, flag: bytes, link: bytes
) -> bytes:
    block = bytearray(BLOCK)
    block[0 : len(name)] = name
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(0, 8)
    block[116:124] = _octal(0, 8)
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(mtime, 12)
    block[148:156] = b" " * 8
    block[156:157] = flag
    block[157 : 157 + len(link)] = link
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    block[329:337] = _octal(0, 8)
    block[337:345] = _octal(0, 8)
    block[345 : 345 + len(prefix)] = prefix
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode() + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length = len(str(length).encode()) + len(body)
    return str(length).encode() + body


def _padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


class _HashingWriter:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self.sha.update(data)
        self.size += len(data)


def _write_entry(w: _HashingWriter, path: str, entry: Entry, mtime: int) -> None:
    name = path.encode("utf-8") + (b"/" if entry.kind == "dir" else b"")
    link = entry.target.encode("utf-8") if entry.kind == "symlink" else b""
    size = entry.size if entry.kind == "file" else 0
    if size > _MAX_OCTAL_SIZE:
        raise ValueError(f"{path}: too large for a tar header")
    split = _split_ustar(name)
    records = b""
    if split is None:
        records += _pax_record("path", name)
        split = (b"", name[:100])
    if len(link) > 100:
        records += _pax_record("linkpath", link)
        link = link[:100]
    if records:
        w.write(_header(_PAX_NAME, b"", 0o644, len(records), mtime, b"x", b""))
        w.write(records + _padding(len(records)))
    prefix, short = split
    w.write(_header(short, prefix, normalise_mode(entry), size, mtime, _TYPE[entry.kind], link))
    if entry.blob is not None:
        entry.copy_to(w, path)
        w.write(_padding(size))


def canonical_entries(tree: Tree) -> list[tuple[str, Entry]]:
    """Every entry plus implied parent directories, in canonical order."""
    entries = dict(tree.entries)
    for path in list(entries):
        for parent in ancestors(path):
            entries.setdefault(parent, Entry("dir", 0o755))
    return sorted(entries.items(), key=lambda item: sort_key(item[0]))


def write_canonical_tar(tree: Tree, dest: Path, epoch: int) -> CanonicalTar:
    """Write the canonical tar of `tree` to `dest`; return its digest and size."""
    with dest.open("wb") as out:
        w = write_entries(out, canonical_entries(tree), epoch)
    return CanonicalTar(path=dest, digest=w.sha.hexdigest(), size=w.size)


def write_entries(
    out: BinaryIO, entries: Iterable[tuple[str, Entry]], epoch: int
) -> _HashingWriter:
    """Write `entries` (path, entry; parents first) to `out` as a tar in the canonical form,
    end marker included; a caller picks and renames the entries (a layer's view of a tree)."""
    w = _HashingWriter(out)
    for path, entry in entries:
        _write_entry(w, path, entry, epoch)
    w.write(bytes(2 * BLOCK))
    return w
