"""META partition: the Talos ADV layout, sorted records, checksums and the second copy."""

from __future__ import annotations

import hashlib
import struct

import pytest

from workers.assembly.meta_partition import (
    BLOCK_SIZE,
    PARTITION_SIZE,
    MetaError,
    decode_adv,
    encode_adv,
    make_meta_partition,
    read_meta_partition,
)


def test_block_layout() -> None:
    block = encode_adv({0x0C: b"two", 0x0A: b"one"})
    assert len(block) == BLOCK_SIZE
    assert block[:4] == bytes.fromhex("5a4b3c2d")
    assert block[-4:] == bytes.fromhex("a5b4c3d2")
    # Records sorted by tag: u32 tag, u32 length, value; then a zero tag.
    assert block[4:15] == struct.pack(">II", 0x0A, 3) + b"one"
    assert block[15:26] == struct.pack(">II", 0x0C, 3) + b"two"
    assert block[26:34] == bytes(8)
    zeroed = block[: BLOCK_SIZE - 36] + bytes(32) + block[BLOCK_SIZE - 4 :]
    assert block[BLOCK_SIZE - 36 : BLOCK_SIZE - 4] == hashlib.sha256(zeroed).digest()


def test_record_order_does_not_depend_on_input_order() -> None:
    assert encode_adv({1: b"a", 2: b"b"}) == encode_adv({2: b"b", 1: b"a"})


def test_round_trip_and_corruption() -> None:
    block = encode_adv({0x0A: b'{"externalIPs":["1.2.3.4"]}'})
    assert decode_adv(block) == {0x0A: b'{"externalIPs":["1.2.3.4"]}'}
    damaged = bytearray(block)
    damaged[10] ^= 1
    assert decode_adv(bytes(damaged)) is None


def test_partition_holds_two_copies_and_readers_fall_back() -> None:
    partition = make_meta_partition({0x0A: "net"})
    assert len(partition) == PARTITION_SIZE
    assert partition[:BLOCK_SIZE] == partition[BLOCK_SIZE : 2 * BLOCK_SIZE]
    assert partition[2 * BLOCK_SIZE :] == bytes(PARTITION_SIZE - 2 * BLOCK_SIZE)
    broken_first = bytes(8) + partition[8:]
    assert read_meta_partition(broken_first) == {0x0A: b"net"}
    assert read_meta_partition(bytes(PARTITION_SIZE)) == {}


def test_capacity_is_upstreams() -> None:
    fits = BLOCK_SIZE - 40 - 20 - 8
    encode_adv({1: bytes(fits)})
    with pytest.raises(MetaError):
        encode_adv({1: bytes(fits + 1)})
