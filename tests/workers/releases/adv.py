"""A minimal Talos ADV writer for tests (talos-formats §4.6), independent of the product code."""

from __future__ import annotations

import hashlib
import struct

ADV_SIZE = 256 * 1024


def adv_block(values: dict[int, bytes]) -> bytes:
    block = bytearray(ADV_SIZE)
    struct.pack_into(">I", block, 0, 0x5A4B3C2D)
    offset = 4
    for tag, value in values.items():
        struct.pack_into(">II", block, offset, tag, len(value))
        block[offset + 8 : offset + 8 + len(value)] = value
        offset += 8 + len(value)
    struct.pack_into(">I", block, ADV_SIZE - 4, 0xA5B4C3D2)
    block[ADV_SIZE - 36 : ADV_SIZE - 4] = hashlib.sha256(block).digest()
    return bytes(block)
