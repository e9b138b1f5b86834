"""The GPT writer: label-derived GUIDs, what sfdisk/sgdisk read back, CRCs, 4K sectors."""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest

from workers.assembly.gpt import (
    BIOS_BOOT_TYPE,
    ESP_TYPE,
    LEGACY_BIOS_BOOTABLE,
    LINUX_DATA_TYPE,
    MIB,
    Layout,
    Partition,
    guid_from_label,
    plan_layout,
    write_gpt,
)
from workers.assembly.run import run_tool

# talos-formats §4.1, checked there against Talos' makefs tests.
TALOS_GUIDS = {
    "EFI": "bca5174b-0118-8a6a-af0b-2c6e1585acae",
    "BOOT": "24c73076-4092-85dd-9d98-686a2dbf6d81",
    "META": "cf04f137-101e-8ec6-9627-fa3f51cdabb8",
    "BIOS": "a2a02ff5-d88d-8e6e-9c95-26b9b6c80bc3",
    "STATE": "f7f88648-df7c-8acb-b4d2-6f124659d923",
    "EPHEMERAL": "c5e02400-0e5e-80bc-99ec-53b3e45ad6c4",
    "IMAGECACHE": "3b5449bc-c21f-8009-8b51-18945967f8df",
    "talos-image-disk": "d92d45b3-cde9-8760-be9f-a2a71fac8d11",
}


@pytest.mark.parametrize(("label", "expected"), sorted(TALOS_GUIDS.items()))
def test_guid_from_label_matches_talos(label: str, expected: str) -> None:
    assert str(guid_from_label(label)) == expected


def _partitions() -> list[Partition]:
    return [
        Partition("EFI", ESP_TYPE, 100 * MIB),
        Partition("BIOS", BIOS_BOOT_TYPE, MIB, attributes=LEGACY_BIOS_BOOTABLE),
        Partition("BOOT", LINUX_DATA_TYPE, 300 * MIB),
        Partition("META", LINUX_DATA_TYPE, MIB),
    ]


def _write(path: Path, layout: Layout) -> Path:
    with path.open("wb") as f:
        f.truncate(layout.disk_size)
        write_gpt(f, layout)
    return path


@pytest.mark.integration
def test_sfdisk_and_sgdisk_read_the_table(tmp_path: Path) -> None:
    disk = _write(tmp_path / "disk.raw", plan_layout(_partitions(), disk_size=404 * MIB))
    table = json.loads(run_tool(["sfdisk", "--json", disk]))["partitiontable"]
    assert table["label"] == "gpt"
    assert table["id"] == TALOS_GUIDS["talos-image-disk"].upper()
    assert table["firstlba"] == 2048
    got = [(p["name"], p["start"], p["size"], p["type"], p["uuid"]) for p in table["partitions"]]
    assert got == [
        ("EFI", 2048, 204800, str(ESP_TYPE).upper(), TALOS_GUIDS["EFI"].upper()),
        ("BIOS", 206848, 2048, str(BIOS_BOOT_TYPE).upper(), TALOS_GUIDS["BIOS"].upper()),
        ("BOOT", 208896, 614400, str(LINUX_DATA_TYPE).upper(), TALOS_GUIDS["BOOT"].upper()),
        ("META", 823296, 2048, str(LINUX_DATA_TYPE).upper(), TALOS_GUIDS["META"].upper()),
    ]
    assert table["partitions"][1]["attrs"] == "LegacyBIOSBootable"
    verify = run_tool(["sgdisk", "-v", disk]).decode()
    assert "No problems found" in verify


@pytest.mark.integration
def test_file_stays_sparse(tmp_path: Path) -> None:
    disk = _write(tmp_path / "disk.raw", plan_layout(_partitions(), disk_size=404 * MIB))
    assert disk.stat().st_blocks * 512 < MIB


def _header(data: bytes, lba: int, sector: int) -> tuple[Any, ...]:
    return struct.unpack_from("<8sIIIIQQQQ16sQIII", data, lba * sector)


@pytest.mark.parametrize("sector", [512, 4096])
def test_headers_and_crcs(tmp_path: Path, sector: int) -> None:
    layout = plan_layout(_partitions(), disk_size=404 * MIB, sector_size=sector, skip_lbas=8)
    data = _write(tmp_path / "disk.raw", layout).read_bytes()
    last = layout.last_lba
    entry_bytes = 128 * 128
    for current, backup, entries_lba in (
        (1, last, 2 + 8),
        (last, 1, last - entry_bytes // sector),
    ):
        header = _header(data, current, sector)
        assert header[0] == b"EFI PART"
        assert (header[5], header[6], header[10]) == (current, backup, entries_lba)
        raw = bytearray(data[current * sector : current * sector + 92])
        raw[16:20] = bytes(4)
        assert header[3] == zlib.crc32(raw)
        entries = data[entries_lba * sector : entries_lba * sector + entry_bytes]
        assert header[13] == zlib.crc32(entries)
        assert uuid.UUID(bytes_le=header[9]) == guid_from_label("talos-image-disk")
    # 1 MiB alignment in either sector size; the skipped LBAs push the entry array only.
    assert layout.first_usable * sector == MIB
    first = layout.partitions[0]
    assert (first.first_lba * sector, first.size) == (MIB, 100 * MIB)
    assert data[510:512] == b"\x55\xaa"
    assert data[450] == 0xEE


def test_partitions_must_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        plan_layout(_partitions(), disk_size=200 * MIB)
