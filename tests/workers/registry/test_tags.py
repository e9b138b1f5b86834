"""Tags that name releases: `latest`, with or without `v`, only releases this factory builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workers.releases.fakes import save_fake_release
from workers.registry.errors import ManifestUnknown
from workers.registry.tags import available_versions, resolve_version, wants_release
from workers.store import LocalStore


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    save_fake_release(store, "v1.0.0", tmp_path / "releases")
    return store


def test_latest_is_the_newest_stable_release(store: LocalStore, tmp_path: Path) -> None:
    for version in ("v0.9.0", "v1.1.0-beta.0", "v1.0.1"):
        save_fake_release(store, version, tmp_path / "releases")

    assert resolve_version(store, "latest") == "v1.0.1"
    assert resolve_version(store, "1.1.0-beta.0") == "v1.1.0-beta.0"
    assert resolve_version(store, "v0.9.0") == "v0.9.0"
    with pytest.raises(ManifestUnknown, match=r"v3\.0\.0 is not available"):
        resolve_version(store, "3.0.0")


def test_latest_without_stable_release(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    save_fake_release(store, "v1.0.0-alpha.1", tmp_path / "releases")
    with pytest.raises(ManifestUnknown, match="latest"):
        resolve_version(store, "latest")


@pytest.mark.parametrize(
    ("tag", "release"),
    [("latest", True), ("v1.0.0", True), ("1.0.0", True), ("sha256-ab.sig", False), ("x", False)],
)
def test_which_tags_name_releases(tag: str, release: bool) -> None:
    assert wants_release(tag) is release


def test_a_release_of_either_built_arch_is_offered(store: LocalStore, tmp_path: Path) -> None:
    save_fake_release(store, "v2.0.0", tmp_path / "releases", arch="arm64")
    assert available_versions(store) == ["v1.0.0", "v2.0.0"]
    assert resolve_version(store, "latest") == "v2.0.0"
    assert resolve_version(store, "v2.0.0") == "v2.0.0"
    with pytest.raises(ManifestUnknown):
        resolve_version(store, "v3.0.0")
