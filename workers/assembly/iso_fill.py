"""Writing a file's bytes once, straight into a finished ISO image.

The initramfs is most of a GRUB ISO. Written to a file of its own and then copied by xorriso,
its bytes would reach the disk twice. Instead xorriso gets a sparse placeholder of the exact
size (`make_placeholder`: a hole, nothing written, read as zeros without disk reads) and
writes the image with its zeros left as holes (`make_iso` through
`workers.assembly.sparse_output`); then the file's pieces are written into the image at the
one extent its directory record gives the file (`fill_file`).

The image is then byte for byte the one xorriso writes from the real file: nothing xorriso
writes outside a file's extent depends on the file's bytes, as long as it records no MD5
(`make_iso` asks for none) and the file is not also inside another file of the image (a GRUB
ISO's efi.img holds only GRUB). An extent that is not one piece of exactly the pieces' size
is an error, never a silently different image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from workers.assembly.pieces import Piece, pieces_size, write_pieces
from workers.assembly.run import run_tool
from workers.errors import FactoryError

SECTOR = 2048  # ISO 9660 logical block
_REPORT = "File data lba:"


class ExtentMismatch(FactoryError):
    """The image does not hold the file as one extent of the size of what fills it."""


def make_placeholder(path: Path, size: int) -> Path:
    """The new file `path` of `size` zero bytes, all of it a hole."""
    with path.open("xb") as out:
        out.truncate(size)
    return path


def file_extent(iso: Path, iso_path: str) -> tuple[int, int]:
    """(byte offset, size) of the data of the file `iso_path` in the ISO image `iso`."""
    report = run_tool(["xorriso", "-indev", iso, "-find", iso_path, "-exec", "report_lba", "--"])
    # "File data lba:  <extent no> , <start lba> , <blocks> , <size> , '<path>'", one line
    # per extent (files over 4 GiB have several).
    lines = [line for line in report.decode().splitlines() if line.startswith(_REPORT)]
    if len(lines) != 1:
        raise ExtentMismatch(f"{iso_path} is in {len(lines)} extents of the image, not 1")
    _, start, _, size, name = (field.strip() for field in lines[0][len(_REPORT) :].split(",", 4))
    if name != f"'{iso_path}'":
        raise ExtentMismatch(f"the image reports {name} for {iso_path}")
    return int(start) * SECTOR, int(size)


def fill_file(iso: Path, iso_path: str, pieces: Sequence[Piece]) -> Path:
    """Write the concatenation of `pieces` into `iso` as the data of its file `iso_path`
    (made from a placeholder of their size)."""
    offset, size = file_extent(iso, iso_path)
    expected = pieces_size(pieces)
    if size != expected or offset + size > iso.stat().st_size:
        raise ExtentMismatch(
            f"{iso_path} has {size} bytes at {offset} in an image of {iso.stat().st_size}, "
            f"its content {expected}"
        )
    with iso.open("r+b") as out:
        out.seek(offset)
        written = write_pieces(out, pieces)
    if written != expected:
        raise ExtentMismatch(f"{written} bytes were written for the {expected} of {iso_path}")
    return iso
