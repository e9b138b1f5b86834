"""Putting an input file into a tool's source tree without writing its bytes again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def link_or_copy(src: Path, dest: Path) -> Path:
    """`dest` as a hard link to `src` (no data written), or a copy when the two are on
    different file systems. Only for trees tools read: a write to either name changes both,
    and their metadata (mode, times) is shared."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
    return dest
