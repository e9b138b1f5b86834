"""A staged file tree: paths checked and normalised, file contents spooled to numbered files.

Nothing from the input ever names a file on disk: contents go to `<spool>/<n>`, and the tree
maps clean relative paths (no `..`, no absolute names, no control characters) to entries.
Sources fill a tree from a directory or a tar stream; OCI images apply layers onto one, with
whiteouts. Only directories, regular files and symlinks can be staged; hard links become
copies of an earlier regular file.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from extensions.budget import Budget
from extensions.errors import ExtensionError
from extensions.tarstream import TarMember, TarReader

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
_CHUNK = 1024 * 1024
_REFUSED_KINDS = {
    "chardev": "device nodes are not allowed",
    "blockdev": "device nodes are not allowed",
    "fifo": "FIFOs are not allowed",
    "socket": "sockets are not allowed",
}


class Writer(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass
class Entry:
    kind: str  # dir, file or symlink
    mode: int
    size: int = 0
    target: str = ""  # symlink target, as stored
    blob: Path | None = None  # the file holding a regular file's contents
    offset: int | None = None  # where in `blob` they start (None: `blob` is a spooled copy)

    def open(self) -> BinaryIO:
        """The contents of a regular file."""
        if self.blob is None:
            raise ExtensionError(f"not a regular file ({self.kind})")
        if self.offset is None:
            return self.blob.open("rb")
        archive = self.blob.open("rb")
        archive.seek(self.offset)
        return io.BufferedReader(_Slice(archive, self.size, str(self.blob)), _CHUNK)

    def read_bytes(self) -> bytes:
        with self.open() as f:
            return f.read()

    def copy_to(self, out: Writer, name: str) -> None:
        """Write a regular file's contents to `out`, in chunks; a size other than the one
        validated is an error (the file changed since)."""
        written = 0
        with self.open() as f:
            while chunk := f.read(_CHUNK):
                out.write(chunk)
                written += len(chunk)
        if written != self.size:
            raise ValueError(f"{name}: the extension's file changed size")


class _Slice(io.RawIOBase):
    """`size` bytes of an open archive from its current position."""

    def __init__(self, archive: BinaryIO, size: int, label: str) -> None:
        self._archive = archive
        self._left = size
        self._label = label

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._archive.read(min(len(buffer), self._left))
        if not data and self._left:
            raise ExtensionError(f"{self._label}: the archive shrank while it was being read")
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._archive.close()
        super().close()


def clean_path(raw: str, label: str) -> str:
    """`raw` as a relative path without `.`/empty components ("" for the root itself)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise ExtensionError(f"{label}: {raw!r}: control characters in names are not allowed")
    if raw.startswith("/"):
        raise ExtensionError(f"{label}: {raw}: absolute member names are not allowed")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ExtensionError(f'{label}: {raw}: ".." components are not allowed')
    return "/".join(parts)


def ancestors(path: str) -> Iterator[str]:
    """Proper ancestors of `path`, outermost first ("a", "a/b" for "a/b/c")."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


@dataclass
class Layer:
    """What one archive (or directory) adds: entries plus, for image layers, whiteouts."""

    entries: dict[str, Entry] = field(default_factory=dict)
    whiteouts: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)


class Tree:
    """The staged result: path → entry; blobs live under `spool`."""

    def __init__(
        self, spool: Path, label: str, budget: Budget, archive: Path | None = None
    ) -> None:
        self.spool = spool
        self.label = label
        self.budget = budget
        # The uncompressed tar file being staged, when its member data may stay in it
        # (read in place later) instead of being copied to the spool.
        self.archive = archive
        self.entries: dict[str, Entry] = {}

    def _new_blob(self) -> Path:
        # Made on first use: a tar read in place may never need it.
        self.spool.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.spool, prefix="blob-")
        os.close(fd)
        return Path(name)

    def _check_lengths(self, path: str, raw: str) -> None:
        limits = self.budget.limits
        if len(path.encode()) > limits.max_path_bytes or any(
            len(part.encode()) > limits.max_component_bytes for part in path.split("/")
        ):
            raise ExtensionError(f"{self.label}: {raw[:200]}: name too long")

    # --- filling from a tar stream ---------------------------------------------------------

    def read_tar(self, reader: TarReader, whiteouts: bool) -> Layer:
        """Stage every member of `reader` as one layer (image layers: `whiteouts=True`)."""
        layer = Layer()
        for member in reader.members():
            self._stage_member(layer, reader, member, whiteouts)
        return layer

    def _stage_member(
        self, layer: Layer, reader: TarReader, member: TarMember, whiteouts: bool
    ) -> None:
        path = clean_path(member.name, self.label)
        self._check_lengths(path, member.name)
        shown = member.name
        if member.kind in _REFUSED_KINDS:
            raise ExtensionError(f"{self.label}: {shown}: {_REFUSED_KINDS[member.kind]}")
        base = path.rsplit("/", 1)[-1]
        if whiteouts and base.startswith(WHITEOUT_PREFIX):
            parent = path.rpartition("/")[0]
            if base == OPAQUE_WHITEOUT:
                layer.opaque.add(parent)
            else:
                hidden = base[len(WHITEOUT_PREFIX) :]
                if hidden in ("", ".", ".."):
                    raise ExtensionError(f"{self.label}: {shown}: invalid whiteout")
                layer.whiteouts.add(f"{parent}/{hidden}" if parent else hidden)
            return
        if not path:
            if member.kind != "dir":
                raise ExtensionError(f"{self.label}: {shown}: not a directory")
            return
        if member.kind == "dir":
            entry = Entry("dir", member.mode)
        elif member.kind == "symlink":
            entry = Entry("symlink", member.mode, target=member.linkname)
        elif member.kind == "hardlink":
            entry = self._hardlink_copy(layer, member, shown)
        else:
            entry = self._stage_file(reader, member.mode)
        self._put(layer, path, entry, shown)

    def _stage_file(self, reader: TarReader, mode: int) -> Entry:
        span = reader.data_span() if self.archive is not None else None
        if span is not None:
            offset, size = span
            return Entry("file", mode, size=size, blob=self.archive, offset=offset)
        blob = self._new_blob()
        with blob.open("wb") as out:
            size = reader.copy_data(out)
        return Entry("file", mode, size=size, blob=blob)

    def _hardlink_copy(self, layer: Layer, member: TarMember, shown: str) -> Entry:
        try:
            target = clean_path(member.linkname, self.label)
        except ExtensionError:
            target = ""  # absolute or climbing: certainly not an earlier member
        found = layer.entries.get(target) or self.entries.get(target)
        if not target or found is None or found.kind != "file":
            raise ExtensionError(
                f"{self.label}: {shown}: hard link to {member.linkname!r}, which is not a "
                "regular file earlier in the archive"
            )
        return Entry("file", found.mode, size=found.size, blob=found.blob, offset=found.offset)

    def _put(self, layer: Layer, path: str, entry: Entry, shown: str) -> None:
        existing = layer.entries.get(path)
        if existing is not None and not (existing.kind == entry.kind == "dir"):
            raise ExtensionError(f"{self.label}: {shown}: duplicate entry")
        layer.entries[path] = entry

    # --- filling from a directory ----------------------------------------------------------

    def read_dir(self, root: Path) -> Layer:
        """Stage the contents of directory `root` (symlinks are kept, never followed).

        Iterative, so a hostile nesting depth cannot exhaust the interpreter's stack.
        """
        layer = Layer()
        pending: list[tuple[Path, str]] = [(root, "")]
        while pending:
            directory, prefix = pending.pop()
            with os.scandir(directory) as it:
                children = sorted(it, key=lambda e: e.name)
            for child in children:
                rel = f"{prefix}/{child.name}" if prefix else child.name
                if self._stage_dir_entry(layer, Path(child.path), rel):
                    pending.append((Path(child.path), rel))
        return layer

    def _stage_dir_entry(self, layer: Layer, source: Path, rel: str) -> bool:
        """Stage one directory entry; True when it is a directory to descend into."""
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            raise ExtensionError(f"{self.label}: {rel!r}: name is not valid UTF-8") from None
        path = clean_path(rel, self.label)
        self._check_lengths(path, rel)
        self.budget.take_entry()
        st = os.lstat(source)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            self._put(layer, path, Entry("dir", mode), rel)
            return True
        if stat.S_ISLNK(st.st_mode):
            self._put(layer, path, Entry("symlink", mode, target=os.readlink(source)), rel)
        elif stat.S_ISREG(st.st_mode):
            self._put(layer, path, self._copy_file(source, mode), rel)
        else:
            kind = "fifo" if stat.S_ISFIFO(st.st_mode) else "socket"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = "chardev"
            raise ExtensionError(f"{self.label}: {rel}: {_REFUSED_KINDS[kind]}")
        return False

    def _copy_file(self, src: Path, mode: int) -> Entry:
        blob = self._new_blob()
        size = 0
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f, blob.open("wb") as out:
            while chunk := f.read(_CHUNK):
                self.budget.take_bytes(len(chunk))
                out.write(chunk)
                size += len(chunk)
        return Entry("file", mode, size=size, blob=blob)

    # --- layering --------------------------------------------------------------------------

    def apply(self, layer: Layer) -> None:
        """Put `layer` on top: its whiteouts and opaque dirs hide lower entries, then its
        entries replace lower ones (a non-directory replacing a directory drops its subtree).
        """
        hidden = set(layer.whiteouts)
        hidden |= {p for p, e in layer.entries.items() if e.kind != "dir" and p in self.entries}
        kept: dict[str, Entry] = {}
        for path, entry in self.entries.items():
            if path in layer.whiteouts:
                continue
            if any(a in hidden or a in layer.opaque for a in ancestors(path)):
                continue
            kept[path] = entry
        kept.update(layer.entries)
        self.entries = kept

    def check_parents(self) -> None:
        """Every ancestor of every entry must be a directory (or absent: then implied)."""
        for path in self.entries:
            for parent in ancestors(path):
                found = self.entries.get(parent)
                if found is not None and found.kind != "dir":
                    raise ExtensionError(
                        f"{self.label}: {path}: parent {parent} is not a directory"
                    )
