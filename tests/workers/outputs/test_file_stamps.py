"""The stamp cache (`workers.outputs.file_stamps`): what a stamp vouches for, settling,
eviction and age; and that real files and issue 12's change show different stamps."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.factory.test_images import tamper_keeping_size_and_mtime
from workers.outputs.file_stamps import (
    SETTLE_NS,
    FileStamp,
    VerifiedStamps,
    stamp_of,
    unchanged_since,
)

SHA_A, SHA_B = "a" * 64, "b" * 64
LONG_AGO = 10 * SETTLE_NS  # `opened_ns` for stamps whose ctime has long settled


def _stamp(inode: int, ctime_ns: int = 1_000) -> FileStamp:
    return FileStamp(device=1, inode=inode, size=10, mtime_ns=1_000, ctime_ns=ctime_ns)


def test_a_stamp_vouches_only_for_the_digest_it_was_hashed_to() -> None:
    stamps = VerifiedStamps()
    assert stamps.remember(_stamp(1), SHA_A, LONG_AGO)
    assert stamps.vouches(_stamp(1), SHA_A)
    assert not stamps.vouches(_stamp(1), SHA_B)
    assert not stamps.vouches(_stamp(2), SHA_A)  # another inode: another file
    assert not stamps.vouches(_stamp(1, ctime_ns=2_000), SHA_A)  # written since


def test_a_stamp_with_a_recent_ctime_is_not_remembered() -> None:
    # A write within the same clock tick could leave that ctime as it is.
    stamps = VerifiedStamps()
    stamp = _stamp(1, ctime_ns=LONG_AGO - SETTLE_NS // 2)
    assert not stamps.remember(stamp, SHA_A, LONG_AGO)
    assert not stamps.vouches(stamp, SHA_A)


def test_the_least_recently_used_stamp_is_evicted_first() -> None:
    stamps = VerifiedStamps(capacity=2)
    stamps.remember(_stamp(1), SHA_A, LONG_AGO)
    stamps.remember(_stamp(2), SHA_A, LONG_AGO)
    assert stamps.vouches(_stamp(1), SHA_A)  # 1 used last: 2 goes first
    stamps.remember(_stamp(3), SHA_A, LONG_AGO)
    assert len(stamps) == 2
    assert stamps.vouches(_stamp(1), SHA_A)
    assert stamps.vouches(_stamp(3), SHA_A)
    assert not stamps.vouches(_stamp(2), SHA_A)


def test_a_stamp_is_trusted_for_a_while_then_hashed_again() -> None:
    now = [100.0]
    stamps = VerifiedStamps(trust_seconds=60, clock=lambda: now[0])
    stamps.remember(_stamp(1), SHA_A, LONG_AGO)
    now[0] += 59
    assert stamps.vouches(_stamp(1), SHA_A)
    now[0] += 1
    assert not stamps.vouches(_stamp(1), SHA_A)
    assert len(stamps) == 0


def test_files_of_the_same_size_and_times_have_different_stamps(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"1" * 100)
    second.write_bytes(b"2" * 100)
    times = first.stat()
    os.utime(second, ns=(times.st_atime_ns, times.st_mtime_ns))
    stamps = VerifiedStamps()
    stamps.remember(stamp_of(first.stat()), SHA_A, time.time_ns() + LONG_AGO)
    assert stamp_of(second.stat()).mtime_ns == stamp_of(first.stat()).mtime_ns
    assert not stamps.vouches(stamp_of(second.stat()), SHA_A)


def test_bytes_changed_with_size_and_mtime_put_back_change_the_stamp(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"x" * 100)
    before = stamp_of(blob.stat())
    tamper_keeping_size_and_mtime(blob, 50)
    after = stamp_of(blob.stat())
    assert (after.size, after.mtime_ns, after.inode) == (before.size, before.mtime_ns, before.inode)
    assert after != before


def test_unchanged_since_sees_a_write_and_another_file_under_the_name(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"x" * 100)
    stamp = stamp_of(blob.stat())
    assert unchanged_since(blob, stamp)
    tamper_keeping_size_and_mtime(blob, 1)
    assert not unchanged_since(blob, stamp)
    stamp = stamp_of(blob.stat())
    replacement = tmp_path / "replacement"
    replacement.write_bytes(blob.read_bytes())
    os.replace(replacement, blob)
    assert not unchanged_since(blob, stamp)
    blob.unlink()
    assert not unchanged_since(blob, stamp)
