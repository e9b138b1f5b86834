"""The per-process extension index: consistent with the store after every add, in this
process and in others (another store object stands for another process's; some tests run
real other processes), no record read twice, no listing of the records after a change, and
no change lost when two processes write at once (S3: conditional creates, no lock)."""

from __future__ import annotations

import multiprocessing
import subprocess
import sysconfig
import uuid
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from tests.extensions.builders import file, hello_members, manifest, tar_bytes, write
from tests.services import S3Server
from tests.workers.catalog.fakes import made_up_record, store_and_log
from tests.workers.releases.fakes import save_fake_release
from workers.catalog import add_extension, catalog_for, list_extension_records
from workers.catalog.index import (
    SNAPSHOT_EVERY,
    SNAPSHOTS_PREFIX,
    change_key,
    index_for,
    log_change,
    removed,
)
from workers.catalog.lifecycle import withdraw_extension
from workers.catalog.records import (
    EXTENSIONS_PREFIX,
    ExtensionRecord,
    record_from_json,
    record_to_json,
)
from workers.store import LocalStore
from workers.store.s3 import S3Store


@pytest.fixture
def root(tmp_path: Path) -> Path:
    store = LocalStore(tmp_path / "store")
    save_fake_release(store, "v1.0.0", tmp_path / "releases")
    return tmp_path / "store"


def _extension(tmp_path: Path, name: str, version: str = "1.0") -> Path:
    members = hello_members()
    members[0] = file("manifest.yaml", manifest(name, version, ">= v1.0.0"))
    return write(tmp_path / f"{name}-{version}.tar", tar_bytes(members))


def _names(records: list[ExtensionRecord]) -> list[str]:
    return [f"{r.full_name} {r.version}" for r in records]


def _scanned(store: LocalStore) -> list[ExtensionRecord]:
    """What a full scan of the store finds (the index must agree with it)."""
    return [
        record_from_json(ExtensionRecord, store.get_bytes(key))
        for key in sorted(store.list(EXTENSIONS_PREFIX))
        if key.endswith(".json")
    ]


def test_another_process_sees_every_add(root: Path, tmp_path: Path) -> None:
    mine, theirs = LocalStore(root), LocalStore(root)
    assert catalog_for(theirs, "v1.0.0", "amd64") == []
    first = add_extension(mine, _extension(tmp_path, "one"), "factory")
    assert _names(catalog_for(theirs, "v1.0.0", "amd64")) == ["factory/one 1.0"]
    add_extension(mine, _extension(tmp_path, "one", "2.0"), "factory")
    add_extension(mine, _extension(tmp_path, "two"), "factory")
    assert _names(catalog_for(theirs, "v1.0.0", "amd64")) == ["factory/one 2.0", "factory/two 1.0"]
    assert list_extension_records(theirs) == _scanned(theirs)
    assert first in list_extension_records(theirs)


def test_a_conflicting_add_is_refused_by_another_process(root: Path, tmp_path: Path) -> None:
    mine, theirs = LocalStore(root), LocalStore(root)
    assert list_extension_records(theirs) == []  # its index is built, empty
    add_extension(mine, _extension(tmp_path, "one"), "factory")
    changed = hello_members([file("rootfs/usr/local/share/extra", b"other")])
    changed[0] = file("manifest.yaml", manifest("one", "1.0", ">= v1.0.0"))
    other = write(tmp_path / "other.tar", tar_bytes(changed))
    with pytest.raises(Exception, match="already exists with different content"):
        add_extension(theirs, other, "factory")


def test_an_unchanged_catalog_reads_nomade_up_record(root: Path, tmp_path: Path) -> None:
    store = LocalStore(root)
    add_extension(store, _extension(tmp_path, "one"), "factory")
    assert _names(catalog_for(store, "v1.0.0", "amd64")) == ["factory/one 1.0"]
    reads: list[str] = []
    original = store.get_bytes

    def counting(key: str) -> bytes:
        reads.append(key)
        return original(key)

    store.get_bytes = counting  # type: ignore[method-assign]
    for _ in range(3):
        assert _names(catalog_for(store, "v1.0.0", "amd64")) == ["factory/one 1.0"]
    # Besides the release, only "is there a change after the one I read?"
    assert [key for key in reads if not key.startswith("releases/")] == [change_key(2)] * 3


def test_an_add_by_the_command_line_reaches_a_running_process(root: Path, tmp_path: Path) -> None:
    store = LocalStore(root)
    assert catalog_for(store, "v1.0.0", "amd64") == []
    command = str(Path(sysconfig.get_path("scripts")) / "image-factory")
    data_dir = root.parent
    env = {"IMAGE_FACTORY_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [command, "extension", "add", str(_extension(tmp_path, "cli"))],
        env=env,
        check=True,
        capture_output=True,
    )
    assert _names(catalog_for(store, "v1.0.0", "amd64")) == ["factory/cli 1.0"]


def test_a_deleted_record_leaves_the_index_once_logged(root: Path, tmp_path: Path) -> None:
    store = LocalStore(root)
    record = add_extension(store, _extension(tmp_path, "one"), "factory")
    assert list_extension_records(store) == [record]
    store.delete(record.record_key)
    log_change(store, removed(record.digest))
    assert list_extension_records(store) == []
    assert index_for(store).named(store, record.full_name) == []


def test_a_withdrawal_reaches_other_processes_and_new_ones(root: Path, tmp_path: Path) -> None:
    mine, theirs = LocalStore(root), LocalStore(root)
    add_extension(mine, _extension(tmp_path, "one"), "factory")
    add_extension(mine, _extension(tmp_path, "one", "2.0"), "factory")
    assert _names(catalog_for(theirs, "v1.0.0", "amd64")) == ["factory/one 2.0"]
    withdraw_extension(mine, "factory/one", "2.0", "admin")
    assert _names(catalog_for(theirs, "v1.0.0", "amd64")) == ["factory/one 1.0"]
    withdraw_extension(mine, "factory/one", "1.0", "admin")
    assert catalog_for(theirs, "v1.0.0", "amd64") == []
    for digest in list(theirs.list(SNAPSHOTS_PREFIX)):
        theirs.delete(digest)  # a new process lists the store: withdrawals included
    assert catalog_for(LocalStore(root), "v1.0.0", "amd64") == []


class _Counting(LocalStore):
    """A local store that remembers what it was asked to list."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.listed: list[str] = []

    def list(self, prefix: str):  # type: ignore[no-untyped-def]
        self.listed.append(prefix)
        return super().list(prefix)


def test_the_first_lookup_after_a_change_lists_nothing(root: Path, tmp_path: Path) -> None:
    writer, reader = LocalStore(root), _Counting(root)
    for n in range(30):
        store_and_log(writer, made_up_record(n))
    assert len(list_extension_records(reader)) == 30
    reader.listed.clear()
    one_more = made_up_record(30)
    store_and_log(writer, one_more)
    assert one_more in list_extension_records(reader)
    assert reader.listed == []


def test_a_new_process_starts_from_the_newest_snapshot(root: Path) -> None:
    writer = LocalStore(root)
    records = [made_up_record(n) for n in range(SNAPSHOT_EVERY * 2 + 5)]
    for record in records:
        store_and_log(writer, record)
    # Generation 1's snapshot went once a later one had a successor.
    assert list(writer.list(SNAPSHOTS_PREFIX)) == [
        f"{SNAPSHOTS_PREFIX}{SNAPSHOT_EVERY:012d}.json",
        f"{SNAPSHOTS_PREFIX}{SNAPSHOT_EVERY * 2:012d}.json",
    ]
    fresh = _Counting(root)
    assert list_extension_records(fresh) == sorted(records, key=lambda r: r.digest)
    assert fresh.listed == [SNAPSHOTS_PREFIX]  # never the records themselves


def test_records_stored_before_the_log_are_found(root: Path) -> None:
    """A store from before the change log: its records are listed once, then logged ones
    are added on top."""
    store = LocalStore(root)
    old = made_up_record(1, "old")
    store.put_bytes(old.record_key, record_to_json(old), "application/json")
    assert list_extension_records(LocalStore(root)) == [old]
    new = made_up_record(2, "new")
    store_and_log(store, new)  # generation 1 snapshots both
    fresh = _Counting(root)
    assert set(list_extension_records(fresh)) == {old, new}
    assert fresh.listed == [SNAPSHOTS_PREFIX]


_PER_WRITER = 15


def _write_records(
    server: S3Server, data_dir: Path, bucket: str, writer: int, start: Barrier
) -> None:
    store = S3Store.from_settings(server.settings(data_dir, bucket))
    store.exists(change_key(1))  # connected: from here on both write at once
    start.wait(60)
    for n in range(_PER_WRITER):
        store_and_log(store, made_up_record(n, f"writer-{writer}"))


@pytest.mark.integration
def test_two_processes_writing_at_once_lose_no_change(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    writers = [
        context.Process(target=_write_records, args=(s3_server, tmp_path, bucket, w, start))
        for w in range(2)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    store = S3Store.from_settings(s3_server.settings(tmp_path, bucket))
    entries = [store.get_bytes(change_key(g)) for g in range(1, 2 * _PER_WRITER + 1)]
    assert len(set(entries)) == 2 * _PER_WRITER  # every change has its own generation
    assert not store.exists(change_key(2 * _PER_WRITER + 1))
    expected = {made_up_record(n, f"writer-{w}") for w in range(2) for n in range(_PER_WRITER)}
    assert set(list_extension_records(store)) == expected
