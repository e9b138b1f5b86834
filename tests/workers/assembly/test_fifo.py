"""Pipes a large stream passes through get a 1 MiB buffer."""

from __future__ import annotations

import fcntl
import os

from workers.assembly.fifo import PIPE_BUFFER, widen_pipe


def test_a_widened_pipe_holds_a_mebibyte() -> None:
    read_fd, write_fd = os.pipe()
    try:
        assert fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ) < PIPE_BUFFER
        widen_pipe(write_fd)
        assert fcntl.fcntl(read_fd, fcntl.F_GETPIPE_SZ) == PIPE_BUFFER
    finally:
        os.close(read_fd)
        os.close(write_fd)
