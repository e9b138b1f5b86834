from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from tests.workers.releases.fakes import fake_files, fake_manifest, save_fake_release
from workers.errors import NotFound
from workers.releases.stored import (
    DigestMismatch,
    ReleaseConflict,
    blob_key,
    list_versions,
    load_release,
    manifest_key,
    save_release,
)
from workers.store import LocalStore


def test_saved_release_loads_with_the_digest_of_its_manifest_bytes(
    store: LocalStore, tmp_path: Path
) -> None:
    saved = save_fake_release(store, "v1.0.0", tmp_path)
    loaded = load_release(store, "1.0.0", "amd64")

    data = store.get_bytes(manifest_key("v1.0.0", "amd64"))
    assert loaded == saved
    assert loaded.digest == hashlib.sha256(data).hexdigest()
    for entry in loaded.files.values():
        assert store.exists(blob_key(entry.sha256))


def test_fetch_returns_the_verified_file(store: LocalStore, tmp_path: Path) -> None:
    release = save_fake_release(store, "v1.0.0", tmp_path)
    dest = release.fetch(store, "vmlinuz", tmp_path / "out")
    assert dest.read_bytes() == (tmp_path / "v1.0.0-amd64" / "vmlinuz").read_bytes()


def test_fetch_detects_a_corrupted_blob(store: LocalStore, tmp_path: Path) -> None:
    release = save_fake_release(store, "v1.0.0", tmp_path)
    store.path(blob_key(release.files["vmlinuz"].sha256)).write_bytes(b"tampered")

    with pytest.raises(DigestMismatch, match=r"vmlinuz of release v1\.0\.0/amd64 is corrupt"):
        release.fetch(store, "vmlinuz", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_file_not_matching_its_manifest_entry_stores_no_manifest(
    store: LocalStore, tmp_path: Path
) -> None:
    files = fake_files(tmp_path / "files")
    manifest = fake_manifest("v1.0.0", files)
    files["vmlinuz"].write_bytes(b"changed after hashing")

    with pytest.raises(DigestMismatch, match="vmlinuz"):
        save_release(store, manifest, files)
    assert list_versions(store) == []
    assert not store.exists(manifest_key("v1.0.0", "amd64"))


def test_manifests_are_immutable_but_identical_rewrites_are_no_ops(
    store: LocalStore, tmp_path: Path
) -> None:
    files = fake_files(tmp_path / "a")
    manifest = fake_manifest("v1.0.0", files)
    first = save_release(store, manifest, files)
    assert save_release(store, manifest, files) == first

    with pytest.raises(ReleaseConflict, match=r"v1\.0\.0/amd64 already exists"):
        save_release(store, replace(manifest, kernel_args=("quiet",)), files)
    assert load_release(store, "v1.0.0", "amd64") == first


def test_versions_are_listed_once_in_semver_order(store: LocalStore, tmp_path: Path) -> None:
    for version in ("v1.10.0", "v1.2.0", "v1.9.0-rc.1"):
        save_fake_release(store, version, tmp_path)
    save_fake_release(store, "v1.2.0", tmp_path, arch="arm64")

    assert list_versions(store) == ["v1.2.0", "v1.9.0-rc.1", "v1.10.0"]


def test_unknown_release_is_not_found(store: LocalStore) -> None:
    with pytest.raises(NotFound, match=r"version v9\.9\.9 is not available for amd64"):
        load_release(store, "v9.9.9", "amd64")
