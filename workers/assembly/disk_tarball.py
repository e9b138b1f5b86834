"""A disk image in a tar (the `.tar.gz` outputs, e.g. GCP's `disk.raw`), reproducible.

Not `--sparse`: which blocks a file system reports as holes differs between file systems, and
the sparse map would change the bytes; zeros compress to almost nothing anyway.
"""

from __future__ import annotations

import re
from pathlib import Path

from workers.assembly.run import run_tool

_MEMBER = re.compile(r"^[A-Za-z0-9._-]+$")


def make_tarball(src: Path, dest: Path, *, member: str, epoch: int) -> Path:
    """A GNU tar `dest` holding the file `src` as `member`: mode 0644, owner 0:0, epoch mtime."""
    if not _MEMBER.match(member):
        raise ValueError(f"invalid tar member name {member!r}")
    run_tool(
        [
            "tar",
            "--create",
            "--file",
            dest,
            "--directory",
            src.parent,
            "--format=gnu",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mode=0644",
            f"--mtime=@{epoch}",
            f"--transform=s,^.*$,{member},",
            src.name,
        ]
    )
    return dest
