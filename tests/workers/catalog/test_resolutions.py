"""Durable name resolution, pins, withdrawals and deletes, on the local store (the
real-server tests in tests/factory/test_tenancy.py run both stores)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.extensions.builders import file, hello_members, manifest, tar_bytes, write
from tests.workers.releases.fakes import save_fake_release
from workers.catalog import add_extension, catalog_for
from workers.catalog.lifecycle import delete_extension, withdraw_extension
from workers.catalog.records import ExtensionRecord
from workers.catalog.resolutions import record_pins, resolution_key, resolve_durably
from workers.errors import Conflict, Gone, InvalidRequest
from workers.releases.stored import Release, load_release
from workers.store import LocalStore
from workers.tenancy.audit import read_events

SID = "a" * 64


@pytest.fixture
def release(store: LocalStore, tmp_path: Path) -> Release:
    save_fake_release(store, "v1.0.0", tmp_path / "release")
    return load_release(store, "v1.0.0", "amd64")


def add(store: LocalStore, tmp_path: Path, version: str, name: str = "tool") -> ExtensionRecord:
    members = hello_members([file(f"rootfs/usr/local/share/{name}", version.encode())])
    members[0] = file("manifest.yaml", manifest(name, version))
    return add_extension(store, write(tmp_path / f"{name}-{version}.tar", tar_bytes(members)), "ns")


def test_the_first_resolution_is_kept_whatever_is_uploaded_later(
    store: LocalStore, release: Release, tmp_path: Path
) -> None:
    v1 = add(store, tmp_path, "1.0.0")
    assert resolve_durably(store, SID, release, ["ns/tool"]).records == (v1,)
    v2 = add(store, tmp_path, "2.0.0")
    assert [r.version for r in catalog_for(store, "v1.0.0", "amd64")] == ["2.0.0"]
    assert resolve_durably(store, SID, release, ["ns/tool"]).records == (v1,)
    assert resolve_durably(store, "b" * 64, release, ["ns/tool"]).records == (v2,)
    assert store.exists(resolution_key(SID, "v1.0.0", "amd64"))


def test_pins_pick_exactly_that_version(
    store: LocalStore, release: Release, tmp_path: Path
) -> None:
    v1, _ = add(store, tmp_path, "1.0.0"), add(store, tmp_path, "2.0.0")
    assert resolve_durably(store, SID, release, ["ns/tool@1.0.0"]).records == (v1,)
    with pytest.raises(
        InvalidRequest, match=re.escape('"ns/tool@3.0.0" is not available for version v1.0.0')
    ):
        resolve_durably(store, "b" * 64, release, ["ns/tool@3.0.0"])
    with pytest.raises(InvalidRequest, match="write a pinned name as ns/name@version"):
        resolve_durably(store, "c" * 64, release, ["ns/tool@"])


def test_withdrawn_versions_are_gone_for_new_resolutions_and_marked_for_old_ones(
    store: LocalStore, release: Release, tmp_path: Path
) -> None:
    v1 = add(store, tmp_path, "1.0.0")
    resolve_durably(store, SID, release, ["ns/tool"])
    withdraw_extension(store, "ns/tool", "1.0.0", "root")
    assert catalog_for(store, "v1.0.0", "amd64") == []
    old = resolve_durably(store, SID, release, ["ns/tool"])
    assert (old.records, old.withdrawn) == ((v1,), ("ns/tool 1.0.0",))
    with pytest.raises(Gone, match=re.escape('"ns/tool" 1.0.0 was withdrawn')):
        resolve_durably(store, "b" * 64, release, ["ns/tool"])
    with pytest.raises(Gone, match=re.escape('"ns/tool@1.0.0" was withdrawn')):
        resolve_durably(store, "c" * 64, release, ["ns/tool@1.0.0"])
    # A newer version is offered again to schematics resolved from now on.
    v2 = add(store, tmp_path, "2.0.0")
    assert resolve_durably(store, "d" * 64, release, ["ns/tool"]).records == (v2,)


def test_delete_waits_until_nothing_references_it(
    store: LocalStore, release: Release, tmp_path: Path
) -> None:
    used, pinned, free = (add(store, tmp_path, "1.0.0", name) for name in ("used", "pin", "free"))
    resolve_durably(store, SID, release, ["ns/used"])
    record_pins(store, "e" * 64, ["ns/pin@1.0.0", "ns/used"])
    with pytest.raises(Conflict, match=f"referenced by {SID}-v1.0.0-amd64"):
        delete_extension(store, "ns/used", "1.0.0", "root")
    with pytest.raises(Conflict, match=f"schematic {'e' * 64} pins ns/pin@1.0.0"):
        delete_extension(store, "ns/pin", "1.0.0", "root")
    delete_extension(store, "ns/free", "1.0.0", "root")
    assert not store.exists(free.record_key)
    assert not store.exists(free.tar_key)
    assert store.exists(used.record_key)
    assert store.exists(pinned.record_key)
    assert [(e.actor, e.action, e.subject, e.digest) for e in read_events(store)] == [
        ("root", "extension.delete", "ns/free 1.0.0", free.digest)
    ]
