"""PE section appending (UKIs): layout, timestamp, checksum, reproducibility, checked with
objdump and sbsign/sbverify on the systemd-stub Debian ships."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from workers.assembly.pe import (
    MIN_SECTION_ALIGNMENT,
    NewSection,
    PEError,
    append_sections,
    pe_checksum,
    read_pe,
)
from workers.assembly.run import run_tool
from workers.keys.secureboot_key import generate_secureboot_pair

pytestmark = pytest.mark.integration
STUB = Path("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
EPOCH = 1700000000


def _reference_checksum(data: bytes, field_at: int | None = None) -> int:
    """The PE checksum word by word, as the spec describes it (the field counted as zero)."""
    length = len(data)
    if field_at is not None:
        data = data[:field_at] + bytes(4) + data[field_at + 4 :]
    if length % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("<H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return (total + length) & 0xFFFFFFFF


def _build(tmp_path: Path, name: str, payload: bytes = b"K" * 70001) -> Path:
    big = tmp_path / "big.bin"
    big.write_bytes(payload)
    return append_sections(
        STUB,
        tmp_path / name,
        [NewSection(".osrel", data=b"NAME=x\n"), NewSection(".linux", path=big)],
        timestamp=EPOCH,
    )


def test_sections_sit_above_the_stub_aligned_and_apart(tmp_path: Path) -> None:
    out = _build(tmp_path, "out.efi")
    stub, image = read_pe(STUB), read_pe(out)
    assert image.sections[: len(stub.sections)] == stub.sections
    osrel, linux = image.section(".osrel"), image.section(".linux")
    assert osrel.virtual_address >= max(s.end for s in stub.sections)
    assert linux.virtual_address >= osrel.end
    for section in (osrel, linux):
        assert section.virtual_address % MIN_SECTION_ALIGNMENT == 0
        assert section.raw_offset % stub.file_alignment == 0
    assert linux.virtual_size == 70001
    data = out.read_bytes()
    assert data[linux.raw_offset : linux.raw_offset + 70001] == b"K" * 70001
    # objdump reads the same table (names, sizes, addresses).
    dump = run_tool(["objdump", "-h", out]).decode()
    row = re.search(r"\.linux\s+([0-9a-f]+)\s+([0-9a-f]+)", dump)
    assert row is not None
    assert (int(row[1], 16), int(row[2], 16)) == (70001, linux.virtual_address)


def test_timestamp_checksum_and_no_symbol_table(tmp_path: Path) -> None:
    out = _build(tmp_path, "out.efi")
    image = read_pe(out)
    data = out.read_bytes()
    timestamp, symbols, count = struct.unpack_from("<III", data, image.coff_at + 4)
    assert (timestamp, symbols, count) == (EPOCH, 0, 0)
    field_at = image.optional_at + 64
    stored = struct.unpack_from("<I", data, field_at)[0]
    assert stored == _reference_checksum(data, field_at)
    size_of_image = struct.unpack_from("<I", data, image.optional_at + 56)[0]
    assert size_of_image >= image.section(".linux").end
    assert "Time/Date\t\tTue Nov 14 22:13:20 2023" in run_tool(["objdump", "-p", out]).decode()


def test_checksum_of_the_stub_matches_its_linker() -> None:
    image = read_pe(STUB)
    data = STUB.read_bytes()
    field_at = image.optional_at + 64
    assert struct.unpack_from("<I", data, field_at)[0] == _reference_checksum(data, field_at)


def test_streamed_checksum_equals_word_by_word(tmp_path: Path) -> None:
    odd = tmp_path / "odd.bin"
    odd.write_bytes(bytes(range(256)) * 5000 + b"\x01")  # spans chunks, odd length
    assert pe_checksum(odd) == _reference_checksum(odd.read_bytes())


def test_reproducible(tmp_path: Path) -> None:
    assert _build(tmp_path, "a.efi").read_bytes() == _build(tmp_path, "b.efi").read_bytes()


def test_signable_by_sbsign(tmp_path: Path) -> None:
    out = _build(tmp_path, "out.efi")
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    key_pem, cert_pem = generate_secureboot_pair()
    key.write_bytes(key_pem)
    cert.write_bytes(cert_pem)
    result = run_tool(["sbsign", "--key", key, "--cert", cert, "--output", tmp_path / "s", out])
    assert b"gaps between PE/COFF sections" not in result
    assert (
        "Signature verification OK"
        in run_tool(["sbverify", "--cert", cert, tmp_path / "s"]).decode()
    )


def test_refuses_bad_sections(tmp_path: Path) -> None:
    with pytest.raises(PEError, match="longer than 8"):
        append_sections(STUB, tmp_path / "x", [NewSection(".toolongname", b"")], timestamp=0)
    with pytest.raises(PEError, match=r"already has a \.sbat"):
        append_sections(STUB, tmp_path / "x", [NewSection(".sbat", b"")], timestamp=0)
    not_pe = tmp_path / "not.efi"
    not_pe.write_bytes(b"\0" * 512)
    with pytest.raises(PEError, match="no MZ"):
        append_sections(not_pe, tmp_path / "x", [], timestamp=0)
