"""A tool's standard output written to a file, with its runs of zeros left as holes.

xorriso writes an ISO image as one stream. Where the image holds a sparse placeholder
(`workers.assembly.iso_fill`), the stream is zeros that are overwritten right after: left as
a hole, they cost no disk writes (and the image's own padding costs none either). The tool
runs through `run_tool` as any other (sandbox, timeout, errors); this process copies the
stream from a pipe, so what reaches the disk is accounted to it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from workers.assembly.fifo import widen_pipe
from workers.assembly.run import ToolError, run_tool

# Holes are made per aligned chunk of zeros: a shorter or unaligned run of zeros is written.
CHUNK = 64 * 1024
_ZEROS = bytes(CHUNK)


def run_tool_into_sparse_file(
    argv: Sequence[str | os.PathLike[str]], dest: Path, *, source_date_epoch: int | None = None
) -> Path:
    """Run `argv` (see `run_tool`) with its standard output written to the new file `dest`,
    every all-zero chunk of it left as a hole."""
    read_fd, write_fd = os.pipe()
    widen_pipe(write_fd)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sparse-copy") as pool:
        copied = pool.submit(_copy_pipe, read_fd, dest)
        try:
            with open(write_fd, "wb") as writer:
                run_tool(argv, stdout=writer, source_date_epoch=source_date_epoch)
        except ToolError as error:
            failure = copied.exception()
            if failure is not None:  # the tool failed because the copy did (no space left...)
                raise failure from error
            raise
        copied.result()
    return dest


def _copy_pipe(read_fd: int, dest: Path) -> None:
    # Leaving `with` closes the pipe, also on failure: a tool still writing gets EPIPE
    # instead of waiting for a reader forever.
    with open(read_fd, "rb") as stream, dest.open("xb") as out:
        copy_sparse(stream, out)


def copy_sparse(stream: BinaryIO, out: BinaryIO) -> int:
    """Copy `stream` to `out` (at its start) until EOF, seeking over every all-zero chunk
    instead of writing it; return the size copied."""
    size = 0
    while chunk := stream.read(CHUNK):  # full chunks until the last (a buffered read)
        if chunk == (_ZEROS if len(chunk) == CHUNK else bytes(len(chunk))):
            out.seek(len(chunk), os.SEEK_CUR)
        else:
            out.write(chunk)
        size += len(chunk)
    out.truncate(size)  # a hole at the end is part of the file too
    return size
