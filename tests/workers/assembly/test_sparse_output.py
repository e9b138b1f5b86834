"""A tool's output copied into a file with its zero chunks as holes: same bytes, fewer writes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from workers.assembly.run import ToolError
from workers.assembly.sparse_output import CHUNK, copy_sparse, run_tool_into_sparse_file


def _data_offsets(path: Path) -> list[int]:
    """The CHUNK-aligned offsets of `path` that hold data (the rest are holes)."""
    found = []
    with path.open("rb") as f:
        for offset in range(0, path.stat().st_size, CHUNK):
            try:
                if os.lseek(f.fileno(), offset, os.SEEK_DATA) == offset:
                    found.append(offset)
            except OSError:  # ENXIO: no data after offset
                break
    return found


def _stream() -> bytes:
    # data, 3 chunks of zeros, a chunk that is zeros but one byte, data, trailing zeros
    return (
        b"a" * (CHUNK + 5)
        + bytes(3 * CHUNK - 5)
        + bytes(CHUNK - 1)
        + b"b"
        + b"c" * 100
        + bytes(2 * CHUNK)
    )


def test_zero_chunks_become_holes_and_the_bytes_stay(tmp_path: Path) -> None:
    data = _stream()
    dest = tmp_path / "out"
    with dest.open("wb") as out:
        assert copy_sparse(io.BufferedReader(io.BytesIO(data)), out) == len(data)
    assert dest.read_bytes() == data
    # Chunks 0 and 1 hold data (chunk 1 starts with 5 bytes of "a"), 2 and 3 are zeros,
    # 4 ends with "b", 5 holds "c", 6 and 7 are the trailing zeros.
    assert _data_offsets(dest) == [0, CHUNK, 4 * CHUNK, 5 * CHUNK]


@pytest.mark.integration
def test_a_tool_output_lands_in_the_file(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(_stream())
    dest = run_tool_into_sparse_file(["cat", source], tmp_path / "out")
    assert dest.read_bytes() == source.read_bytes()
    assert _data_offsets(dest) == [0, CHUNK, 4 * CHUNK, 5 * CHUNK]


@pytest.mark.integration
def test_a_failing_tool_is_a_tool_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError):
        run_tool_into_sparse_file(["cat", tmp_path / "missing"], tmp_path / "out")


@pytest.mark.integration
def test_a_failing_copy_is_raised_and_stops_the_tool(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.write_bytes(b"there already")
    # The tool writes more than a pipe holds: it must get EPIPE, not wait for a reader.
    with pytest.raises(FileExistsError):
        run_tool_into_sparse_file(["head", "-c", "50000000", "/dev/urandom"], dest)
    assert dest.read_bytes() == b"there already"
