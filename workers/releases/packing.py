"""Reproducible SquashFS images and compressed newc cpio archives of a directory tree.

Both clamp every timestamp to SOURCE_DATE_EPOCH, own every entry by 0:0 and list entries in
byte order, so the same tree gives the same bytes (toolchain.md §4 and §6).
"""

from __future__ import annotations

import os
from pathlib import Path

from workers.assembly.run import run_tool

PACKING_TOOLS = ("mksquashfs", "cpio", "zstd")
CPIO_CREATE = (
    "cpio",
    "--null",
    "--create",
    "--format=newc",
    "--reproducible",
    "--owner=0:0",
    "--quiet",
)


def make_squashfs(src: Path, dest: Path, source_date_epoch: int) -> Path:
    """A zstd SquashFS of `src`. squashfs-tools 4.5 refuses SOURCE_DATE_EPOCH together with
    explicit time flags, so the variable is removed from its environment."""
    dest.unlink(missing_ok=True)
    run_tool(
        [
            "mksquashfs",
            src,
            dest,
            "-noappend",
            "-all-root",
            "-no-xattrs",
            "-mkfs-time",
            str(source_date_epoch),
            "-all-time",
            str(source_date_epoch),
            "-reproducible",
            "-no-progress",
            "-quiet",
            "-comp",
            "zstd",
        ],
        env={"SOURCE_DATE_EPOCH": ""},
    )
    return dest


def make_cpio_zstd(src: Path, dest: Path, source_date_epoch: int, level: int = 19) -> Path:
    """A zstd-compressed newc cpio of the contents of `src` (paths relative to `src`)."""
    names = sorted(
        (p.relative_to(src).as_posix() for p in src.rglob("*")), key=lambda n: n.encode()
    )
    for name in names:
        os.utime(src / name, (source_date_epoch, source_date_epoch), follow_symlinks=False)
    raw = dest.with_name(dest.name + ".cpio")
    with raw.open("wb") as out:
        run_tool(
            CPIO_CREATE,
            stdin="".join(n + "\0" for n in names).encode(),
            stdout=out,
            cwd=src,
        )
    with raw.open("rb") as inp, dest.open("wb") as out:
        run_tool(["zstd", "-q", f"-{level}", "-c", "--no-progress"], stdin=inp, stdout=out)
    raw.unlink()
    return dest
