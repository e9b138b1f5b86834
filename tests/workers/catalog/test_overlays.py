from __future__ import annotations

import re
from pathlib import Path

import pytest

from extensions.bundled import CATALOG_DIR
from tests.extensions.builders import tar_bytes, write
from tests.extensions.test_overlay import MANIFEST, members
from tests.workers.releases.fakes import save_fake_release
from workers.catalog import (
    CorruptObject,
    add_overlay,
    check_overlay_options,
    fetch_overlay,
    overlay_catalog_for,
    prepare_overlay,
    resolve_overlay,
)
from workers.errors import InvalidRequest, NotFound
from workers.store import LocalStore

EPOCH = 1700000000
TESTBOARD = CATALOG_DIR / "overlays" / "testboard"


@pytest.fixture
def releases(store: LocalStore, tmp_path: Path) -> LocalStore:
    for version in ("v1.0.0", "v2.0.0"):
        save_fake_release(store, version, tmp_path / "releases")
    return store


def test_add_list_resolve_prepare(releases: LocalStore, tmp_path: Path) -> None:
    record = add_overlay(releases, TESTBOARD, "factory", EPOCH)
    assert (record.name, record.image, record.partition_offset) == (
        "testboard",
        "factory/testboard",
        128,
    )
    assert record.kernel_args == ("factory.board=testboard",)
    assert record.options == ("configTxt", "configTxtAppend")
    assert sorted(releases.list("overlays/")) == [
        f"overlays/{record.digest}.json",
        f"overlays/{record.digest}.tar",
    ]
    assert overlay_catalog_for(releases, "v1.0.0") == [record]
    assert resolve_overlay(releases, "1.0.0", "testboard") == record
    check_overlay_options(record, {"configTxt": "a=1"})
    tar = fetch_overlay(releases, record.digest, tmp_path / "o.tar")
    prepared = prepare_overlay(tar, {"configTxt": "a=1"}, tmp_path / "prepared")
    assert (prepared.esp_dir / "config.txt").read_text() == "a=1\n"
    assert add_overlay(releases, TESTBOARD, "factory", EPOCH) == record  # idempotent


def test_compatibility_and_versions(releases: LocalStore, tmp_path: Path) -> None:
    v1 = MANIFEST.replace(b'">= 1.0.0"', b'"< 2.0.0"')
    v2 = MANIFEST.replace(b"version: 1.0.0", b"version: 1.1.0")
    add_overlay(releases, write(tmp_path / "a", tar_bytes(members(body=v1))), "factory", EPOCH)
    newer = add_overlay(
        releases, write(tmp_path / "b", tar_bytes(members(body=v2))), "factory", EPOCH
    )
    assert [r.version for r in overlay_catalog_for(releases, "v1.0.0")] == ["1.1.0"]
    assert overlay_catalog_for(releases, "v2.0.0") == [newer]
    with pytest.raises(NotFound, match=re.escape("version v3.0.0 is not available")):
        overlay_catalog_for(releases, "v3.0.0")


def test_unknown_overlay_and_options(releases: LocalStore) -> None:
    record = add_overlay(releases, TESTBOARD, "factory", EPOCH)
    with pytest.raises(
        InvalidRequest, match=re.escape('overlay "rpi_generic" is not available for version v1.0.0')
    ):
        resolve_overlay(releases, "v1.0.0", "rpi_generic")
    with pytest.raises(InvalidRequest, match='overlay "testboard" has no option "dtb"'):
        check_overlay_options(record, {"dtb": "x"})
    with pytest.raises(InvalidRequest, match='option "configTxt" must be a string'):
        check_overlay_options(record, {"configTxt": 3})


def test_hostile_overlay_stores_nothing(releases: LocalStore, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad", tar_bytes(members(body=MANIFEST.replace(b"0x8000", b"0x10"))))
    with pytest.raises(InvalidRequest, match="overlaps the protective MBR"):
        add_overlay(releases, bad, "factory", EPOCH)
    assert list(releases.list("overlays/")) == []


def test_same_version_other_content_is_refused(releases: LocalStore, tmp_path: Path) -> None:
    add_overlay(releases, write(tmp_path / "a", tar_bytes(members())), "factory", EPOCH)
    other = MANIFEST.replace(b"console=ttyS0", b"console=ttyS1")
    with pytest.raises(InvalidRequest, match=re.escape("overlay board 1.0.0 already exists")):
        add_overlay(
            releases, write(tmp_path / "b", tar_bytes(members(body=other))), "factory", EPOCH
        )


def test_corrupt_overlay_is_not_served(releases: LocalStore, tmp_path: Path) -> None:
    record = add_overlay(releases, TESTBOARD, "factory", EPOCH)
    releases.put_bytes(record.tar_key, b"x")
    with pytest.raises(CorruptObject):
        fetch_overlay(releases, record.digest, tmp_path / "o.tar")
