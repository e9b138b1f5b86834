"""XFS file systems in a plain file from a directory tree (Talos' BOOT partition), no mounts.

`mkfs.xfs -p <protofile>` copies the tree in with owner 0:0, and `-m uuid=` fixes the UUID.
xfsprogs 6.1 still stamps every inode with the clock (and its `xfs_db write` of timestamps is
broken), so afterwards each inode's atime/mtime/ctime/crtime is set to the epoch in place and
`xfs_db crc -r` recomputes its checksum. Everything else mkfs.xfs writes is deterministic for
a given size (checked by the reproducibility tests).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from workers.assembly.run import run_tool

MIN_SIZE = 300 * 1024 * 1024  # xfsprogs 6.1 refuses smaller file systems
# Offsets of the four timestamps in a v3 dinode (big-endian, bigtime encoding).
_TIMESTAMP_OFFSETS = (32, 40, 48, 144)
# bigtime stores nanoseconds since 1901-12-13T20:45:52Z (the signed 32-bit minimum).
_BIGTIME_BIAS = 2**31
_SAFE_NAME = re.compile(r"^[^\s/]+$")


def write_protofile(src: Path, dest: Path) -> Path:
    """A mkfs.xfs protofile describing `src`: all owned by 0:0, files before subdirectories."""
    lines = ["/dev/null", "0 0", "d--755 0 0"]
    _describe(src, lines, depth=1)
    lines.append("$")
    dest.write_text("\n".join(lines) + "\n")
    return dest


def _describe(directory: Path, lines: list[str], depth: int) -> None:
    entries = sorted(directory.iterdir(), key=lambda p: p.name.encode())
    for path in entries:
        if not _SAFE_NAME.match(path.name):
            raise ValueError(f"names with spaces cannot go into an XFS protofile: {path}")
    indent = " " * depth
    for path in entries:
        if path.is_symlink():
            lines.append(f"{indent}{path.name} l--777 0 0 {path.readlink()}")
        elif path.is_file():
            mode = "755" if path.stat().st_mode & 0o111 else "644"
            lines.append(f"{indent}{path.name} ---{mode} 0 0 {path.resolve()}")
    for path in entries:
        if path.is_dir() and not path.is_symlink():
            lines.append(f"{indent}{path.name} d--755 0 0")
            _describe(path, lines, depth + 1)
            lines.append(f"{indent}$")


def make_xfs(
    dest: Path,
    size: int,
    *,
    src: Path,
    label: str,
    fs_uuid: str,
    epoch: int,
    sector_size: int = 512,
) -> Path:
    """Create `dest` (`size` bytes, at least 300 MiB) as XFS holding the tree `src`;
    `sector_size` 4096 for disks with 4 KiB logical sectors."""
    if size < MIN_SIZE:
        raise ValueError(f"XFS needs at least {MIN_SIZE} bytes, not {size}")
    protofile = write_protofile(src, dest.with_name(dest.name + ".proto"))
    with dest.open("wb") as f:
        f.truncate(size)
    run_tool(
        [
            "mkfs.xfs",
            "-q",
            "-f",
            "-n",
            "ftype=1",
            "-m",
            f"uuid={fs_uuid},bigtime=1",
            "-L",
            label,
            "-p",
            protofile,
            *(["-s", f"size={sector_size}"] if sector_size != 512 else []),
            dest,
        ]
    )
    protofile.unlink()
    pin_inode_times(dest, epoch)
    return dest


def _xfs_db(image: Path, *commands: str, write: bool = False) -> str:
    argv: list[str | Path] = ["xfs_db", "-x" if write else "-r"]
    for command in commands:
        argv += ["-c", command]
    return run_tool([*argv, image]).decode()


def _inode_numbers(image: Path) -> list[int]:
    sb = _xfs_db(image, "sb 0", "print rootino rbmino rsumino")
    numbers = [int(line.split("=")[1]) for line in sb.splitlines() if "=" in line]
    listing = _xfs_db(image, "blockget -n", "ncheck")
    numbers += [int(line.split()[0]) for line in listing.splitlines() if line.strip()]
    return sorted(set(numbers))


def pin_inode_times(image: Path, epoch: int) -> None:
    """Set every inode's four timestamps to `epoch` and fix the inode checksums."""
    numbers = _inode_numbers(image)
    converted = _xfs_db(image, *(f"convert ino {n} byte" for n in numbers))
    offsets = [int(m) for m in re.findall(r"\((\d+)\)", converted)]
    if len(offsets) != len(numbers):
        raise RuntimeError(f"xfs_db gave {len(offsets)} offsets for {len(numbers)} inodes")
    stamp = struct.pack(">Q", (epoch + _BIGTIME_BIAS) * 1_000_000_000)
    with image.open("r+b") as f:
        for offset in offsets:
            for field in _TIMESTAMP_OFFSETS:
                f.seek(offset + field)
                f.write(stamp)
    commands = [c for n in numbers for c in (f"inode {n}", "crc -r")]
    _xfs_db(image, *commands, write=True)
