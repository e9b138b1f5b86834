"""An initramfs written into a finished ISO: the image xorriso writes from the real file."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from workers.assembly.iso import INITRD_PATH, KERNEL_PATH, make_iso
from workers.assembly.iso_fill import ExtentMismatch, file_extent, fill_file, make_placeholder
from workers.assembly.pieces import Piece, pieces_size, write_pieces_file
from workers.assembly.run import ToolError

pytestmark = pytest.mark.integration

HOST_BIOS = Path("/usr/lib/grub/i386-pc")
HOST_EFI = Path("/usr/lib/grub/x86_64-efi")
EPOCH = 1700000000


def _pieces(tmp_path: Path) -> list[Piece]:
    """Byte strings and files of odd sizes, with runs of zeros (as an initramfs has)."""
    rng = random.Random(21)
    files = []
    for n, size in enumerate((300_001, 70_000, 5)):
        path = tmp_path / f"part{n}"
        path.write_bytes(rng.randbytes(size) + bytes(size // 2))
        files.append(path)
    return [b"head", files[0], bytes(3), files[1], b"\x01" * 7, files[2], b"tail"]


def _iso(tmp_path: Path, name: str, initramfs: Path) -> Path:
    work = tmp_path / f"{name}-work"
    work.mkdir()
    kernel = tmp_path / "vmlinuz"
    if not kernel.exists():
        kernel.write_bytes(b"kernel" * 1000)
    return make_iso(
        tmp_path / name,
        workdir=work,
        kernel=kernel,
        initramfs=initramfs,
        cmdline="console=ttyS0",
        grub_bios_dir=HOST_BIOS,
        grub_efi_dir=HOST_EFI,
        name="Image Factory v1.0.0",
        epoch=EPOCH,
    )


def test_the_filled_image_is_the_image_of_the_real_file(tmp_path: Path) -> None:
    pieces = _pieces(tmp_path)
    real = write_pieces_file(tmp_path / "initramfs.xz", pieces)
    expected = _iso(tmp_path, "real.iso", real).read_bytes()

    placeholder = make_placeholder(tmp_path / "placeholder", pieces_size(pieces))
    assert placeholder.stat().st_blocks == 0  # a hole: nothing written
    image = _iso(tmp_path, "filled.iso", placeholder)
    offset, size = file_extent(image, INITRD_PATH)
    assert size == len(real.read_bytes())
    # xorriso's zeros for the placeholder were not written: the image has a hole there.
    with image.open("rb") as f:
        assert os.lseek(f.fileno(), offset + 64 * 1024, os.SEEK_HOLE) < offset + size
    fill_file(image, INITRD_PATH, pieces)
    assert image.read_bytes() == expected
    assert expected[offset : offset + size] == real.read_bytes()


def test_content_of_another_size_is_an_error(tmp_path: Path) -> None:
    pieces = _pieces(tmp_path)
    image = _iso(tmp_path, "a.iso", make_placeholder(tmp_path / "p", pieces_size(pieces) + 1))
    before = image.read_bytes()
    with pytest.raises(ExtentMismatch):
        fill_file(image, INITRD_PATH, pieces)
    with pytest.raises(ExtentMismatch):
        fill_file(image, INITRD_PATH, [*pieces, b"ab"])
    assert image.read_bytes() == before  # nothing written


def test_a_file_the_image_lacks_is_an_error(tmp_path: Path) -> None:
    image = _iso(tmp_path, "a.iso", make_placeholder(tmp_path / "p", 10))
    with pytest.raises(ToolError):
        file_extent(image, "/boot/missing")
    assert file_extent(image, KERNEL_PATH)[1] == 6000
