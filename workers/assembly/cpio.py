"""newc cpio archives (the initramfs format) with GNU cpio, byte-reproducible.

GNU cpio records what the file system says, so the staging tree is normalised first: every
entry is dated at the epoch and gets a fixed mode (0755 for directories and executables, 0644
otherwise); `--reproducible` renumbers inodes and zeroes device numbers; `--owner=0:0` fixes the
owner. Entries are listed depth first, a directory before its children, children sorted by
byte-wise name, which is also the order the Talos imager uses.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from workers.assembly.run import run_tool


def walk_sorted(root: Path) -> Iterator[Path]:
    """Every path below `root`, relative to it: directories first, then their sorted children."""
    for name in sorted(os.listdir(root), key=os.fsencode):
        path = root / name
        yield Path(name)
        if path.is_dir() and not path.is_symlink():
            for child in walk_sorted(path):
                yield Path(name) / child


def normalize_tree(root: Path, epoch: int) -> list[Path]:
    """Fix modes and times of `root` and everything below it in place (the umask must not
    matter); return the sorted entries below it."""
    entries = list(walk_sorted(root))
    root.chmod(0o755)
    for rel in entries:
        path = root / rel
        st = path.lstat()
        if not stat.S_ISLNK(st.st_mode):
            executable = stat.S_ISDIR(st.st_mode) or st.st_mode & 0o111
            path.chmod(0o755 if executable else 0o644)
    # Children before parents, so setting a child's time cannot touch an already fixed parent.
    for rel in reversed(entries):
        os.utime(root / rel, (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch))
    return entries


def make_cpio(root: Path, dest: Path, *, epoch: int) -> Path:
    """Archive the contents of `root` (not `root` itself) as uncompressed newc into `dest`."""
    entries = normalize_tree(root, epoch)
    names = b"".join(os.fsencode(rel) + b"\0" for rel in entries)
    with dest.open("wb") as out:
        run_tool(
            [
                "cpio",
                "--create",
                "--format=newc",
                "--null",
                "--reproducible",
                "--owner=0:0",
                "--quiet",
            ],
            cwd=root,
            stdin=names,
            stdout=out,
        )
    return dest


def list_cpio(archive: Path) -> list[str]:
    """Names in an uncompressed cpio archive, in archive order (`cpio -t`)."""
    with archive.open("rb") as reader:
        out = run_tool(["cpio", "-t", "--quiet"], stdin=reader)
    return out.decode().splitlines()


NEWC_MAGIC = b"070701"  # newc without checksums, what we write
_NEWC_MAGICS = (NEWC_MAGIC, b"070702")
_NEWC_HEADER = 110


def _align4(n: int) -> int:
    return (n + 3) & ~3


def extract_newc_file(archive: Path, name: str, dest: Path) -> Path:
    """Copy the regular file `name` out of an uncompressed newc archive (concatenated
    archives included) into `dest`; KeyError when it is not there."""
    with archive.open("rb") as f:
        while True:
            header = f.read(_NEWC_HEADER)
            while header[:1] == b"\0":  # padding between concatenated archives
                header = header.lstrip(b"\0")
                header += f.read(_NEWC_HEADER - len(header))
            if len(header) < _NEWC_HEADER or header[:6] not in _NEWC_MAGICS:
                raise KeyError(name)
            fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
            mode, size, namesize = fields[1], fields[6], fields[11]
            entry = f.read(namesize)[:-1].decode("utf-8", "replace")
            f.seek(_align4(_NEWC_HEADER + namesize) - _NEWC_HEADER - namesize, os.SEEK_CUR)
            if entry == name.lstrip("/") and stat.S_ISREG(mode):
                with dest.open("wb") as out:
                    remaining = size
                    while remaining:
                        chunk = f.read(min(remaining, 1 << 20))
                        if not chunk:
                            raise KeyError(name)
                        out.write(chunk)
                        remaining -= len(chunk)
                return dest
            f.seek(_align4(size), os.SEEK_CUR)
