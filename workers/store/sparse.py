"""File copies that keep holes: a raw disk image is mostly unwritten space, and a plain copy
would turn every gigabyte of it into real blocks on the store's disk."""

from __future__ import annotations

import errno
import os
from pathlib import Path

_CHUNK = 8 << 20
# copy_file_range cannot do this pair of files (other filesystem, or not supported here).
_NO_KERNEL_COPY = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}


def copy_sparse(src: Path, dest: Path) -> None:
    """Copy `src` to `dest` (created or truncated): the data extents byte for byte, the holes
    as holes, and the same length."""
    with src.open("rb") as reader, dest.open("wb") as writer:
        fin, fout = reader.fileno(), writer.fileno()
        size = os.fstat(fin).st_size
        for start, end in _data_extents(fin, size):
            _copy_range(fin, fout, start, end)
        os.ftruncate(fout, size)


def _data_extents(fd: int, size: int) -> list[tuple[int, int]]:
    """The (start, end) byte ranges of `fd` that hold data, in order."""
    extents = []
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:  # only a hole from `offset` on
                break
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        extents.append((start, end))
        offset = end
    return extents


def _copy_range(fin: int, fout: int, start: int, end: int) -> None:
    offset = start
    while offset < end:
        count = min(_CHUNK, end - offset)
        try:
            copied = os.copy_file_range(fin, fout, count, offset, offset)
        except OSError as error:
            if error.errno not in _NO_KERNEL_COPY:
                raise
            copied = os.pwrite(fout, os.pread(fin, count, offset), offset)
        if copied == 0:  # the source shrank while it was being copied
            raise OSError(errno.EIO, f"short read copying bytes {offset}..{end}")
        offset += copied
