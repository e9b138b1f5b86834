"""FAT file systems in a plain file: `mkfs.vfat --invariant` plus mtools, byte-reproducible.

`--invariant` and a fixed volume ID replace the random and clock-derived fields; mtools honours
`SOURCE_DATE_EPOCH` for the directories it creates and `mcopy -m` keeps each file's mtime, which
is set to the epoch first. Directories and files go in one at a time in sorted order, so the
directory entries do not depend on the order a file system lists them in.
"""

from __future__ import annotations

import os
from pathlib import Path

from workers.assembly.cpio import walk_sorted
from workers.assembly.run import run_tool

# mtools refuses images whose geometry it cannot guess unless told not to check.
_MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1"}


def make_vfat(
    dest: Path,
    size: int,
    *,
    src: Path,
    label: str,
    volume_id: int,
    epoch: int,
    fat_bits: int | None = None,
    sector_size: int = 512,
) -> Path:
    """Create `dest` (`size` bytes) as FAT holding the tree `src` (its contents, not itself)."""
    with dest.open("wb") as f:
        f.truncate(size)
    argv: list[str | Path] = ["mkfs.vfat", "--invariant", "-i", f"{volume_id:08x}", "-n", label]
    argv += ["-S", str(sector_size)]
    if fat_bits is not None:
        argv += ["-F", str(fat_bits)]
    run_tool([*argv, dest], source_date_epoch=epoch)
    for rel in walk_sorted(src):
        path = src / rel
        target = "::/" + rel.as_posix()
        if path.is_dir():
            run_tool(["mmd", "-i", dest, target], source_date_epoch=epoch, env=_MTOOLS_ENV)
        else:
            os.utime(path, (epoch, epoch))
            run_tool(
                ["mcopy", "-m", "-i", dest, path, target],
                source_date_epoch=epoch,
                env=_MTOOLS_ENV,
            )
    return dest


def list_vfat(image: Path) -> list[str]:
    """Every path in a FAT image (`mdir -/ -b`), without the leading `::/`."""
    out = run_tool(["mdir", "-i", image, "-/", "-b", "::/"], env=_MTOOLS_ENV).decode()
    return sorted(line.removeprefix("::/").rstrip("/") for line in out.splitlines() if line)
