"""The per-process extension index: consistent with the store after every add, in this
process and in others (another store object stands for another process's; one test runs a
real second process), and no record read twice."""

from __future__ import annotations

import subprocess
import sysconfig
from pathlib import Path

import pytest

from tests.extensions.builders import file, hello_members, manifest, tar_bytes, write
from tests.workers.releases.fakes import save_fake_release
from workers.catalog import add_extension, catalog_for, list_extension_records
from workers.catalog.index import STAMP_KEY, touch_stamp
from workers.catalog.records import EXTENSIONS_PREFIX, ExtensionRecord, record_from_json
from workers.store import LocalStore


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


def test_an_unchanged_catalog_reads_no_record(root: Path, tmp_path: Path) -> None:
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
    assert not [key for key in reads if key.endswith(".json") and "extensions/" in key]
    assert reads.count(STAMP_KEY) == 3


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


def test_a_deleted_record_leaves_the_index_when_the_stamp_changes(
    root: Path, tmp_path: Path
) -> None:
    store = LocalStore(root)
    record = add_extension(store, _extension(tmp_path, "one"), "factory")
    assert list_extension_records(store) == [record]
    store.delete(record.record_key)
    touch_stamp(store)
    assert list_extension_records(store) == []
