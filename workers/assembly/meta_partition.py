"""The META partition: Talos ADV blocks (go-adv `talos` format).

A 256 KiB block, written twice (offset 0 and 256 KiB) into the 1 MiB partition:
big-endian magic 0x5A4B3C2D, then records `u32 tag, u32 length, value`, a zero tag ending the
list, zero padding, the SHA-256 of the whole block (computed with the hash field zeroed) at
`len-36`, and magic 0xA5B4C3D2 in the last four bytes. Records are written sorted by tag so the
bytes do not depend on the order the schematic lists them in.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping

BLOCK_SIZE = 256 * 1024
PARTITION_SIZE = 1024 * 1024
MAGIC_START = 0x5A4B3C2D
MAGIC_END = 0xA5B4C3D2
_HASH_AT = BLOCK_SIZE - 36
_MAGIC_END_AT = BLOCK_SIZE - 4
# Upstream's capacity rule: 20 + sum(8 + len(value)) <= BLOCK_SIZE - 40.
_CAPACITY = BLOCK_SIZE - 40 - 20


class MetaError(ValueError):
    """META values that do not fit, or a tag out of range."""


def encode_adv(values: Mapping[int, bytes]) -> bytes:
    """One ADV block holding `values` (tag → raw bytes)."""
    block = bytearray(BLOCK_SIZE)
    struct.pack_into(">I", block, 0, MAGIC_START)
    if sum(8 + len(value) for value in values.values()) > _CAPACITY:
        raise MetaError(f"META values do not fit into {BLOCK_SIZE} bytes")
    offset = 4
    for tag in sorted(values):
        if not 0 < tag <= 0xFFFFFFFF:
            raise MetaError(f"META tag {tag} out of range")
        value = values[tag]
        struct.pack_into(">II", block, offset, tag, len(value))
        block[offset + 8 : offset + 8 + len(value)] = value
        offset += 8 + len(value)
    struct.pack_into(">I", block, _MAGIC_END_AT, MAGIC_END)
    block[_HASH_AT : _HASH_AT + 32] = hashlib.sha256(block).digest()
    return bytes(block)


def decode_adv(block: bytes) -> dict[int, bytes] | None:
    """The values of one ADV block, or None when its magics or hash are wrong."""
    if len(block) < BLOCK_SIZE:
        return None
    block = block[:BLOCK_SIZE]
    if struct.unpack_from(">I", block, 0)[0] != MAGIC_START:
        return None
    if struct.unpack_from(">I", block, _MAGIC_END_AT)[0] != MAGIC_END:
        return None
    zeroed = block[:_HASH_AT] + bytes(32) + block[_HASH_AT + 32 :]
    if hashlib.sha256(zeroed).digest() != block[_HASH_AT : _HASH_AT + 32]:
        return None
    values: dict[int, bytes] = {}
    offset = 4
    while offset + 8 <= _HASH_AT:
        tag, length = struct.unpack_from(">II", block, offset)
        if tag == 0:
            break
        if offset + 8 + length > _HASH_AT:
            return None
        values[tag] = block[offset + 8 : offset + 8 + length]
        offset += 8 + length
    return values


def make_meta_partition(values: Mapping[int, str]) -> bytes:
    """The 1 MiB META partition image: two copies of the ADV, the rest zero."""
    block = encode_adv({tag: value.encode() for tag, value in values.items()})
    return block + block + bytes(PARTITION_SIZE - 2 * BLOCK_SIZE)


def read_meta_partition(data: bytes) -> dict[int, bytes]:
    """What a reader sees: the first valid copy, else the second, else nothing."""
    for start in (0, BLOCK_SIZE):
        values = decode_adv(data[start : start + BLOCK_SIZE])
        if values is not None:
            return values
    return {}
