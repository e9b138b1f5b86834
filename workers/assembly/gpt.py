"""A small GPT writer for disk image files (go-blockdevice semantics, no sgdisk).

sgdisk randomises GUIDs unless told otherwise, cannot write 4096-byte-sector tables to a plain
file and silently ignores bad flags; writing the table here keeps every byte under our control:
a protective MBR, 128 entries of 128 bytes, CRC32s, and the backup entry array and header at
the end of the disk. GUIDs come from labels exactly as Talos derives them (`GUIDFromLabel`).
"""

from __future__ import annotations

import hashlib
import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import BinaryIO

MIB = 1024 * 1024
ENTRY_COUNT = 128
ENTRY_SIZE = 128
HEADER_SIZE = 92
REVISION = 0x00010000
SIGNATURE = b"EFI PART"

ESP_TYPE = uuid.UUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
BIOS_BOOT_TYPE = uuid.UUID("21686148-6449-6E6F-744E-656564454649")
LINUX_DATA_TYPE = uuid.UUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
# GPT attribute bit 2: "legacy BIOS bootable".
LEGACY_BIOS_BOOTABLE = 1 << 2
DISK_LABEL = "talos-image-disk"


def guid_from_label(label: str) -> uuid.UUID:
    """sha256(16 zero bytes ‖ label)[:16] with version 8 and the RFC 4122 variant."""
    raw = bytearray(hashlib.sha256(bytes(16) + label.encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80
    raw[8] = (raw[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(raw))


@dataclass(frozen=True)
class Partition:
    """A partition to create; its unique GUID defaults to the one derived from its name."""

    name: str
    type_guid: uuid.UUID
    size: int
    attributes: int = 0
    guid: uuid.UUID | None = None

    @property
    def unique_guid(self) -> uuid.UUID:
        return self.guid or guid_from_label(self.name)


@dataclass(frozen=True)
class Placed:
    """A partition with its place on the disk; LBAs are inclusive."""

    partition: Partition
    number: int
    first_lba: int
    last_lba: int
    sector_size: int

    @property
    def offset(self) -> int:
        return self.first_lba * self.sector_size

    @property
    def size(self) -> int:
        return (self.last_lba - self.first_lba + 1) * self.sector_size


@dataclass(frozen=True)
class Layout:
    """Where everything goes on a disk of `disk_size` bytes."""

    disk_size: int
    sector_size: int
    disk_guid: uuid.UUID
    skip_lbas: int
    first_usable: int
    last_usable: int
    partitions: tuple[Placed, ...]

    @property
    def last_lba(self) -> int:
        return self.disk_size // self.sector_size - 1

    @property
    def entry_sectors(self) -> int:
        return ENTRY_COUNT * ENTRY_SIZE // self.sector_size

    def by_name(self, name: str) -> Placed:
        for placed in self.partitions:
            if placed.partition.name == name:
                return placed
        raise KeyError(name)


def plan_layout(
    partitions: list[Partition],
    *,
    disk_size: int,
    sector_size: int = 512,
    skip_lbas: int = 0,
    disk_guid: uuid.UUID | None = None,
) -> Layout:
    """Place `partitions` contiguously from the first 1 MiB-aligned usable LBA."""
    if sector_size not in (512, 4096):
        raise ValueError(f"unsupported sector size {sector_size}")
    if disk_size % sector_size:
        raise ValueError("the disk size must be a multiple of the sector size")
    entry_sectors = ENTRY_COUNT * ENTRY_SIZE // sector_size
    last_lba = disk_size // sector_size - 1
    align = MIB // sector_size
    first_usable = -(-(2 + skip_lbas + entry_sectors) // align) * align
    last_usable = last_lba - entry_sectors - 1
    placed = []
    lba = first_usable
    for number, partition in enumerate(partitions, start=1):
        if partition.size <= 0 or partition.size % sector_size:
            raise ValueError(f"partition {partition.name}: size must be whole sectors")
        last = lba + partition.size // sector_size - 1
        if last > last_usable:
            raise ValueError(f"partition {partition.name} does not fit on the disk")
        placed.append(Placed(partition, number, lba, last, sector_size))
        lba = last + 1
    return Layout(
        disk_size=disk_size,
        sector_size=sector_size,
        disk_guid=disk_guid or guid_from_label(DISK_LABEL),
        skip_lbas=skip_lbas,
        first_usable=first_usable,
        last_usable=last_usable,
        partitions=tuple(placed),
    )


def _entry(placed: Placed) -> bytes:
    name = placed.partition.name.encode("utf-16-le")
    if len(name) > 72:
        raise ValueError(f"partition name {placed.partition.name!r} is longer than 36 characters")
    return struct.pack(
        "<16s16sQQQ72s",
        placed.partition.type_guid.bytes_le,
        placed.partition.unique_guid.bytes_le,
        placed.first_lba,
        placed.last_lba,
        placed.partition.attributes,
        name,
    )


def _header(
    layout: Layout, *, current: int, backup: int, entries_lba: int, entries: bytes
) -> bytes:
    def pack(crc: int) -> bytes:
        return struct.pack(
            "<8sIIIIQQQQ16sQIII",
            SIGNATURE,
            REVISION,
            HEADER_SIZE,
            crc,
            0,
            current,
            backup,
            layout.first_usable,
            layout.last_usable,
            layout.disk_guid.bytes_le,
            entries_lba,
            ENTRY_COUNT,
            ENTRY_SIZE,
            zlib.crc32(entries),
        )

    return pack(zlib.crc32(pack(0)))


def protective_mbr(layout: Layout) -> bytes:
    """LBA 0: one 0xEE partition covering the disk (capped at 2^32-1 sectors)."""
    sectors = min(layout.last_lba, 0xFFFFFFFF)
    entry = struct.pack("<B3sB3sII", 0x00, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1, sectors)
    return bytes(446) + entry + bytes(48) + b"\x55\xaa"


def write_gpt(disk: BinaryIO, layout: Layout) -> None:
    """Write MBR, primary and backup GPT into the open disk file (other bytes untouched)."""
    ss = layout.sector_size
    entries = b"".join(_entry(p) for p in layout.partitions)
    entries += bytes(ENTRY_COUNT * ENTRY_SIZE - len(entries))
    primary_entries = 2 + layout.skip_lbas
    backup_entries = layout.last_lba - layout.entry_sectors
    primary = _header(
        layout, current=1, backup=layout.last_lba, entries_lba=primary_entries, entries=entries
    )
    backup = _header(
        layout, current=layout.last_lba, backup=1, entries_lba=backup_entries, entries=entries
    )
    for offset, data in (
        (0, protective_mbr(layout)),
        (ss, primary.ljust(ss, b"\0")),
        (primary_entries * ss, entries),
        (backup_entries * ss, entries),
        (layout.last_lba * ss, backup.ljust(ss, b"\0")),
    ):
        disk.seek(offset)
        disk.write(data)
