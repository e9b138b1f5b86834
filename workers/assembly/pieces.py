"""A file described as the concatenation of byte strings and other files, its "pieces".

Its size is known before any byte of it is written, and it can be written anywhere: to a file
of its own, or straight into the place an image reserved for it (`workers.assembly.iso_fill`).
The files are read when the pieces are written, not before.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

Piece = bytes | Path

_CHUNK = 1 << 20


def pieces_size(pieces: Iterable[Piece]) -> int:
    """The size of the concatenation of `pieces`, from the files' sizes (nothing is read)."""
    return sum(len(piece) if isinstance(piece, bytes) else piece.stat().st_size for piece in pieces)


def write_pieces(out: BinaryIO, pieces: Iterable[Piece]) -> int:
    """Write the concatenation of `pieces` at `out`'s position; return how many bytes."""
    written = 0
    for piece in pieces:
        if isinstance(piece, bytes):
            out.write(piece)
            written += len(piece)
            continue
        with piece.open("rb") as reader:
            while chunk := reader.read(_CHUNK):
                out.write(chunk)
                written += len(chunk)
    return written


def write_pieces_file(dest: Path, pieces: Iterable[Piece]) -> Path:
    """The new file `dest` holding the concatenation of `pieces`."""
    with dest.open("wb") as out:
        write_pieces(out, pieces)
    return dest
