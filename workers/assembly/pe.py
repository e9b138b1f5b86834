"""A small PE32+ writer: append sections to an EFI binary, deterministically.

Used for UKIs (systemd-stub + `.osrel`, `.cmdline`, `.uname`, `.linux`, `.initrd`) and to
normalise systemd-boot before signing. objcopy would do the appending, but it stamps the
current time into the COFF header and needs hand-picked section addresses; doing it here keeps
every byte under our control (talos-formats §6.2, the same approach as Talos' native writer):

- the stub's headers and sections are kept byte for byte, except the fields below;
- each new section gets the next free virtual address above the stub's sections, rounded up
  to max(SectionAlignment, 4 KiB) (pages, so the firmware maps each section on its own), and
  raw data at the next FileAlignment boundary; characteristics `INITIALIZED_DATA|MEM_READ`;
- the COFF symbol table some stubs carry after their last section is dropped, as `objcopy -S`
  does (sbsign otherwise warns about data between sections);
- `TimeDateStamp` = the given epoch; `SizeOfImage`, `SizeOfInitializedData` recomputed;
- `CheckSum` recomputed last with the PE algorithm (16-bit one's-complement-style sum of the
  file with the checksum field zeroed, plus the file length).

Large payloads (kernel, initramfs) are streamed from their files, never held in memory.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

PE_MAGIC = b"PE\0\0"
PE32_PLUS = 0x20B
COFF_HEADER_SIZE = 20
SECTION_HEADER_SIZE = 40
MIN_SECTION_ALIGNMENT = 4096
SCN_CNT_INITIALIZED_DATA = 0x00000040
SCN_MEM_READ = 0x40000000
# Offsets inside the PE32+ optional header.
OPT_SIZE_OF_INITIALIZED_DATA = 8
OPT_SECTION_ALIGNMENT = 32
OPT_FILE_ALIGNMENT = 36
OPT_SIZE_OF_IMAGE = 56
OPT_SIZE_OF_HEADERS = 60
OPT_CHECKSUM = 64
_CHUNK = 1 << 20


class PEError(ValueError):
    """The input is not a PE32+ image this writer can extend."""


@dataclass(frozen=True)
class Section:
    name: str
    virtual_size: int
    virtual_address: int
    raw_size: int
    raw_offset: int
    characteristics: int

    @property
    def end(self) -> int:
        return self.virtual_address + max(self.virtual_size, self.raw_size)


@dataclass(frozen=True)
class PEImage:
    """The parsed headers of a PE32+ file."""

    data: bytes  # the file up to the end of its last section's raw data
    coff_at: int  # offset of the COFF header (after "PE\0\0")
    optional_at: int
    optional_size: int
    sections: tuple[Section, ...]

    @property
    def section_table_at(self) -> int:
        return self.optional_at + self.optional_size

    def optional_u32(self, offset: int) -> int:
        value: int = struct.unpack_from("<I", self.data, self.optional_at + offset)[0]
        return value

    @property
    def section_alignment(self) -> int:
        return self.optional_u32(OPT_SECTION_ALIGNMENT)

    @property
    def file_alignment(self) -> int:
        return self.optional_u32(OPT_FILE_ALIGNMENT)

    @property
    def size_of_headers(self) -> int:
        return self.optional_u32(OPT_SIZE_OF_HEADERS)

    def section(self, name: str) -> Section:
        for section in self.sections:
            if section.name == name:
                return section
        raise KeyError(name)


def _name(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("ascii", "replace")


def parse_pe(data: bytes) -> PEImage:
    """Parse the headers of a PE32+ image held in `data` (only headers are read from it)."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        raise PEError("not a PE image (no MZ header)")
    pe_at = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe_at : pe_at + 4] != PE_MAGIC:
        raise PEError("not a PE image (no PE signature)")
    coff_at = pe_at + 4
    count, optional_size = struct.unpack_from("<H12xH", data, coff_at + 2)
    optional_at = coff_at + COFF_HEADER_SIZE
    if struct.unpack_from("<H", data, optional_at)[0] != PE32_PLUS:
        raise PEError("only PE32+ images are supported")
    sections = []
    table = optional_at + optional_size
    for i in range(count):
        at = table + i * SECTION_HEADER_SIZE
        raw_name = data[at : at + 8]
        vsize, vaddr, rsize, roffset = struct.unpack_from("<IIII", data, at + 8)
        characteristics = struct.unpack_from("<I", data, at + 36)[0]
        sections.append(Section(_name(raw_name), vsize, vaddr, rsize, roffset, characteristics))
    end = max((s.raw_offset + s.raw_size for s in sections if s.raw_size), default=0)
    return PEImage(data[: max(end, table)], coff_at, optional_at, optional_size, tuple(sections))


def read_pe(path: Path) -> PEImage:
    """Parse a PE file; the payloads of large files are read only as far as the headers say."""
    with path.open("rb") as f:
        head = f.read(4096)
        image = parse_pe(head)
        end = max(
            (s.raw_offset + s.raw_size for s in image.sections if s.raw_size),
            default=len(head),
        )
        if end > len(head):
            f.seek(0)
            head = f.read(end)
    return parse_pe(head)


@dataclass(frozen=True)
class NewSection:
    """A section to append: its bytes come from `data` or are streamed from `path`."""

    name: str
    data: bytes | None = None
    path: Path | None = None

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        if self.path is None:
            raise PEError(f"section {self.name}: no data")
        return self.path.stat().st_size

    def copy_to(self, out: BinaryIO) -> None:
        if self.data is not None:
            out.write(self.data)
        elif self.path is not None:
            with self.path.open("rb") as src:
                shutil.copyfileobj(src, out, _CHUNK)


def _align(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def append_sections(
    stub: Path, dest: Path, sections: Sequence[NewSection], *, timestamp: int
) -> Path:
    """Write `stub` plus `sections` to `dest` (see the module docstring for the rules)."""
    image = read_pe(stub)
    names = {s.name for s in image.sections}
    for new in sections:
        if len(new.name.encode()) > 8:
            raise PEError(f"section name {new.name!r} is longer than 8 bytes")
        if new.name in names:
            raise PEError(f"the stub already has a {new.name} section")
        names.add(new.name)
    header = bytearray(image.data[: image.size_of_headers])
    table_end = image.section_table_at + SECTION_HEADER_SIZE * (len(image.sections) + len(sections))
    first_raw = min((s.raw_offset for s in image.sections if s.raw_size), default=len(header))
    if table_end > min(image.size_of_headers, first_raw):
        raise PEError(f"no room in the stub's headers for {len(sections)} more section headers")

    section_align = max(image.section_alignment, MIN_SECTION_ALIGNMENT)
    file_align = image.file_alignment
    vaddr = _align(max(s.end for s in image.sections), section_align)
    raw_at = _align(len(image.data), file_align)
    placed: list[tuple[NewSection, int, int, int]] = []  # section, vaddr, raw offset, size
    initialized = 0
    for new in sections:
        size = new.size
        placed.append((new, vaddr, raw_at, size))
        struct.pack_into(
            "<8sIIIIIIHHI",
            header,
            image.section_table_at + SECTION_HEADER_SIZE * (len(image.sections) + len(placed) - 1),
            new.name.encode().ljust(8, b"\0"),
            size,
            vaddr,
            _align(size, file_align),
            raw_at,
            0,
            0,
            0,
            0,
            SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ,
        )
        initialized += _align(size, file_align)
        vaddr = _align(vaddr + size, section_align)
        raw_at += _align(size, file_align)

    # COFF header: section count, timestamp, no symbol table.
    struct.pack_into("<H", header, image.coff_at + 2, len(image.sections) + len(sections))
    struct.pack_into("<III", header, image.coff_at + 4, timestamp & 0xFFFFFFFF, 0, 0)
    opt = image.optional_at
    struct.pack_into(
        "<I",
        header,
        opt + OPT_SIZE_OF_INITIALIZED_DATA,
        image.optional_u32(OPT_SIZE_OF_INITIALIZED_DATA) + initialized,
    )
    size_of_image = _align(max(vaddr, max(s.end for s in image.sections)), section_align)
    struct.pack_into("<I", header, opt + OPT_SIZE_OF_IMAGE, size_of_image)
    struct.pack_into("<I", header, opt + OPT_CHECKSUM, 0)

    with dest.open("wb") as out:
        out.write(header)
        out.write(image.data[len(header) :])
        for new, _, offset, size in placed:
            out.write(bytes(offset - out.tell()))
            new.copy_to(out)
            if out.tell() != offset + size:
                raise PEError(f"section {new.name} changed size while it was copied")
        out.write(bytes(_align(out.tell(), file_align) - out.tell()))
    with dest.open("r+b") as f:
        f.seek(opt + OPT_CHECKSUM)
        f.write(struct.pack("<I", pe_checksum(dest)))
    return dest


def pe_checksum(path: Path) -> int:
    """The PE image checksum of the file `path`, whose CheckSum field must be zero.

    The algorithm adds the file as little-endian 16-bit words with end-around carry, then adds
    the file length. Since 2^16 ≡ 1 (mod 0xFFFF), the folded sum of any even-aligned chunk is
    its value as one little-endian integer modulo 0xFFFF, so the file is summed chunk by chunk
    with big-integer arithmetic instead of word by word.
    """
    total = 0
    nonzero = False
    length = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):  # _CHUNK is even: every chunk starts at an even offset
            length += len(chunk)
            value = int.from_bytes(chunk, "little")
            nonzero = nonzero or value != 0
            total = (total + value) % 0xFFFF
    folded = 0xFFFF if total == 0 and nonzero else total
    return (folded + length) & 0xFFFFFFFF
