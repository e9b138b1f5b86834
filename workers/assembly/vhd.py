"""Fixed VHD images (Azure) with qemu-img, made reproducible by pinning the footer.

`qemu-img convert -O vpc -o subformat=fixed,force_size=on` writes the raw data followed by a
512-byte footer (Microsoft "Virtual Hard Disk Image Format Specification"); `force_size`
keeps the virtual size exactly the raw size instead of rounding it to a CHS geometry, which
Azure requires. The footer (big-endian) has two fields qemu-img fills from the clock and the
random generator:

| offset | size | field                                                | pinned to             |
|--------|------|------------------------------------------------------|-----------------------|
| 24     | 4    | Time Stamp: seconds since 2000-01-01 00:00:00 UTC    | the build's epoch     |
| 64     | 4    | Checksum: one's complement of the byte sum of the    | recomputed            |
|        |      | footer with this field zeroed                        |                       |
| 68     | 16   | Unique Id (a UUID)                                   | `GUIDFromLabel` of a  |
|        |      |                                                      | fixed label           |

Everything else (cookie "conectix", features, version, data offset, creator "qemu" + the
qemu version, host OS, sizes, geometry, disk type 2 = fixed) depends only on the input and the
installed qemu-img. Only the last 512 bytes are rewritten; the data is never read.
"""

from __future__ import annotations

import struct
from pathlib import Path

from workers.assembly.gpt import guid_from_label
from workers.assembly.qemu_img import convert_disk

FOOTER_SIZE = 512
COOKIE = b"conectix"
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z
TIMESTAMP_AT = 24
CHECKSUM_AT = 64
UNIQUE_ID_AT = 68
FIXED_OPTIONS = "subformat=fixed,force_size=on"
UNIQUE_ID_LABEL = "image-factory-vhd"


def footer_checksum(footer: bytes) -> int:
    """One's complement of the sum of all footer bytes except the checksum field."""
    total = sum(footer[:CHECKSUM_AT]) + sum(footer[CHECKSUM_AT + 4 :])
    return ~total & 0xFFFFFFFF


def pin_vhd_footer(image: Path, epoch: int) -> None:
    """Set the footer's timestamp and unique ID to fixed values and fix its checksum."""
    with image.open("r+b") as f:
        f.seek(-FOOTER_SIZE, 2)
        footer = bytearray(f.read(FOOTER_SIZE))
        if footer[:8] != COOKIE:
            raise ValueError(f"{image}: no VHD footer")
        struct.pack_into(">I", footer, TIMESTAMP_AT, max(epoch - VHD_EPOCH, 0))
        footer[UNIQUE_ID_AT : UNIQUE_ID_AT + 16] = guid_from_label(UNIQUE_ID_LABEL).bytes
        struct.pack_into(">I", footer, CHECKSUM_AT, footer_checksum(bytes(footer)))
        f.seek(-FOOTER_SIZE, 2)
        f.write(footer)


def make_vhd(raw: Path, dest: Path, *, epoch: int) -> Path:
    """Convert `raw` to a fixed VHD `dest` of exactly the same virtual size, reproducibly.

    Every VHD is fixed, also for platforms where upstream leaves qemu-img's dynamic default:
    a fixed VHD is accepted wherever a dynamic one is, and only its footer needs pinning."""
    convert_disk(raw, dest, "vpc", FIXED_OPTIONS)
    pin_vhd_footer(dest, epoch)
    return dest
