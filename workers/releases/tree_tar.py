"""Deterministic tar archives of a directory tree.

Same tree → same bytes: entries sorted by path (directories before their contents), owner
0:0 with empty user/group names, every mtime = SOURCE_DATE_EPOCH, modes normalised (dirs
0755, files 0755 when executable else 0644, so the builder's umask does not leak in),
GNU format (long names without pax timestamp records), no compression.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path


def write_tree_tar(src: Path, dest: Path, prefix: str, source_date_epoch: int) -> Path:
    """Archive the contents of `src` under `prefix` (e.g. "usr/lib/modules/6.1.0-56-amd64").

    `prefix` may be "" to store paths relative to `src`. Only directories, regular files
    and symlinks are allowed; anything else is an error.
    """
    prefix = prefix.strip("/")
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        if prefix:
            parts = prefix.split("/")
            for i in range(1, len(parts) + 1):
                tar.addfile(_dir_info("/".join(parts[:i]), 0o755, source_date_epoch))
        for path in _walk_sorted(src):
            rel = path.relative_to(src).as_posix()
            name = f"{prefix}/{rel}" if prefix else rel
            st = path.lstat()
            if stat.S_ISDIR(st.st_mode):
                tar.addfile(_dir_info(name, 0o755, source_date_epoch))
            elif stat.S_ISLNK(st.st_mode):
                info = _info(name, 0o777, source_date_epoch)
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                executable = st.st_mode & 0o111
                info = _info(name, 0o755 if executable else 0o644, source_date_epoch)
                info.size = st.st_size
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                raise ValueError(f"{path}: only directories, files and symlinks can be archived")
    return dest


def _walk_sorted(root: Path) -> list[Path]:
    """Every path under `root`, depth first, names in byte order (not locale order)."""
    out: list[Path] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name.encode()):
        path = Path(entry.path)
        out.append(path)
        if entry.is_dir(follow_symlinks=False):
            out.extend(_walk_sorted(path))
    return out


def _info(name: str, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _dir_info(name: str, mode: int, mtime: int) -> tarfile.TarInfo:
    info = _info(name, mode, mtime)
    info.type = tarfile.DIRTYPE
    return info
