"""Compression: round trips, the kernel-readable xz check, CPU-count independent bytes."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from workers.assembly.compress import Codec, compress_file, decompress_file
from workers.assembly.run import run_tool

pytestmark = pytest.mark.integration


def _payload(path: Path) -> Path:
    rng = random.Random(4)
    words = [bytes(rng.choices(b"abcdefgh", k=8)) for _ in range(512)]
    path.write_bytes(b" ".join(rng.choices(words, k=100_000)))
    return path


@pytest.mark.parametrize("codec", list(Codec))
def test_round_trip(codec: Codec, tmp_path: Path) -> None:
    src = _payload(tmp_path / "data")
    packed = compress_file(src, tmp_path / "data.packed", codec)
    assert packed.stat().st_size < src.stat().st_size
    assert decompress_file(packed, tmp_path / "back").read_bytes() == src.read_bytes()


def test_xz_uses_crc32_for_the_kernel(tmp_path: Path) -> None:
    packed = compress_file(_payload(tmp_path / "data"), tmp_path / "data.xz", Codec.XZ)
    info = run_tool(["xz", "--list", "--robot", packed]).decode()
    assert "\tCRC32\t" in info


@pytest.mark.parametrize("codec", list(Codec))
def test_bytes_do_not_depend_on_cpu_count(codec: Codec, tmp_path: Path) -> None:
    src = _payload(tmp_path / "data")
    everywhere = compress_file(src, tmp_path / "all", codec)
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})  # child processes inherit it
    try:
        one_cpu = compress_file(src, tmp_path / "one", codec)
    finally:
        os.sched_setaffinity(0, affinity)
    assert everywhere.read_bytes() == one_cpu.read_bytes()


def test_uncompressed_input_is_copied(tmp_path: Path) -> None:
    src = tmp_path / "plain"
    src.write_bytes(b"070701 not compressed")
    assert decompress_file(src, tmp_path / "out").read_bytes() == src.read_bytes()
