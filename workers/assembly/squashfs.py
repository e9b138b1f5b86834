"""SquashFS images with mksquashfs, byte-reproducible.

Every inode is owned by root and dated at the epoch (`-all-root -mkfs-time -all-time`);
squashfs-tools 4.5 is reproducible by default and refuses `SOURCE_DATE_EPOCH` together with
explicit time flags, so the variable is left out of its environment. Extended attributes are
dropped (`-no-xattrs`): the reference OS has no SELinux labels to keep.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from workers.assembly.run import run_tool

# Talos >= 1.8 uses zstd level 18 for extension layers.
ZSTD_LEVEL = 18


def make_squashfs(src: Path, dest: Path, *, epoch: int, level: int = ZSTD_LEVEL) -> Path:
    """Pack the directory `src` into the SquashFS file `dest` (replaced if present)."""
    run_tool(
        [
            "mksquashfs",
            src,
            dest,
            "-noappend",
            "-all-root",
            "-no-xattrs",
            "-comp",
            "zstd",
            "-Xcompression-level",
            str(level),
            "-mkfs-time",
            str(epoch),
            "-all-time",
            str(epoch),
            "-no-progress",
            "-quiet",
        ]
    )
    return dest


def list_squashfs(image: Path) -> list[str]:
    """Paths inside a SquashFS image (`unsquashfs -l`), without the `squashfs-root` prefix."""
    out = run_tool(["unsquashfs", "-no-progress", "-l", image]).decode()
    paths = []
    for line in out.splitlines():
        if line == "squashfs-root" or line.startswith("squashfs-root/"):
            paths.append(line.removeprefix("squashfs-root").lstrip("/") or ".")
    return paths


def extract_squashfs(image: Path, dest: Path, *paths: str) -> Path:
    """Extract `paths` (all when none) of `image` into the new directory `dest`."""
    # Not root (the sandbox's uid), unsquashfs applies its umask to the files' modes: with
    # 0 they are the image's own, whatever umask the worker has.
    run_tool(["unsquashfs", "-no-progress", "-no-xattrs", "-d", dest, image, *paths], umask=0)
    return dest


_version_lock = threading.Lock()


def mksquashfs_version() -> str:
    """The first line of `mksquashfs -version`; part of every layer cache key. Asked once
    per process, even when several layer threads want it first."""
    with _version_lock:
        return _mksquashfs_version()


@functools.cache
def _mksquashfs_version() -> str:
    return run_tool(["mksquashfs", "-version"]).decode().splitlines()[0].strip()
