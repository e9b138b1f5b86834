"""Reproducible tar archives of regular files, written by Python's tarfile.

ustar entries with mode 0644, uid/gid 0, no user or group names and one fixed mtime; file
contents are streamed from disk. The caller decides the order: sorted by name, or a fixed
order a format prescribes (an OVA's descriptor first, a docker archive's manifest first).
"""

from __future__ import annotations

import tarfile
from collections.abc import Mapping
from pathlib import Path


def _info(name: str, size: int, epoch: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = epoch
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_tar(dest: Path, members: Mapping[str, Path], epoch: int, *, sort: bool) -> Path:
    """A ustar archive of `name → source file`, in sorted or in the given order."""
    names = sorted(members) if sort else list(members)
    with tarfile.open(dest, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name in names:
            source = members[name]
            with source.open("rb") as f:
                tar.addfile(_info(name, source.stat().st_size, epoch), f)
    return dest
