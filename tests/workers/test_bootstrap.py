from __future__ import annotations

from pathlib import Path

import pytest

from tests.reference_release import DEB_CACHE
from tests.workers.releases.fakes import save_fake_release
from workers.bootstrap import prepare_embedded_default
from workers.releases.modules import index_key
from workers.releases.stored import Release, list_versions, load_release
from workers.settings import Settings
from workers.store import LocalStore, Store


class Recorder:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.calls: list[tuple[str, str]] = []

    def progress(self, message: str) -> None:
        self.messages.append(message)

    def step(self, settings: Settings, store: Store, release: Release, progress: object) -> None:
        self.calls.append((release.version, release.arch))


def test_existing_release_is_used_and_steps_run(
    settings: Settings, store: LocalStore, tmp_path: Path
) -> None:
    for version in ("v1.0.0", "v2.0.0"):
        save_fake_release(store, version, tmp_path)
    seen = Recorder()

    release = prepare_embedded_default(settings, store, seen.progress, steps=[seen.step])

    assert release == load_release(store, settings.reference_version, "amd64")
    assert seen.calls == [("v1.0.0", "amd64")]
    assert not any("building" in m for m in seen.messages)


def test_newest_amd64_release_is_used_when_the_reference_version_is_absent(
    settings: Settings, store: LocalStore, tmp_path: Path
) -> None:
    save_fake_release(store, "v1.5.0", tmp_path)
    save_fake_release(store, "v1.6.0", tmp_path)
    save_fake_release(store, "v1.7.0", tmp_path, arch="arm64")
    seen = Recorder()

    prepare_embedded_default(settings, store, seen.progress, steps=[seen.step])

    assert seen.calls == [("v1.6.0", "amd64")]


def test_steps_run_for_every_arch_of_the_default_version(
    settings: Settings, store: LocalStore, tmp_path: Path
) -> None:
    save_fake_release(store, "v1.0.0", tmp_path)
    save_fake_release(store, "v1.0.0", tmp_path, arch="arm64")
    seen = Recorder()

    release = prepare_embedded_default(settings, store, seen.progress, steps=[seen.step])

    assert release.arch == "amd64"
    assert seen.calls == [("v1.0.0", "amd64"), ("v1.0.0", "arm64")]


@pytest.mark.integration
def test_empty_store_gets_the_reference_release_with_progress(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", reference_version="v1.0.0")
    (settings.data_dir / "cache").mkdir(parents=True)
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "cache/debs").symlink_to(DEB_CACHE)  # reuse the machine's .debs
    store = LocalStore(settings.data_dir / "store")
    seen = Recorder()

    release = prepare_embedded_default(settings, store, seen.progress, steps=[seen.step])

    assert list_versions(store) == ["v1.0.0"]
    assert seen.calls == [("v1.0.0", "amd64"), ("v1.0.0", "arm64")]
    assert store.exists(index_key(release))
    assert store.exists(index_key(load_release(store, "v1.0.0", "arm64")))
    for arch in ("amd64", "arm64"):
        assert any(f"building the reference release v1.0.0 for {arch}" in m for m in seen.messages)
        assert any(
            m.startswith("fetching linux-image-") and f"-{arch} " in m and m.endswith(f"({arch})")
            for m in seen.messages
        )
    assert not list((settings.data_dir / "tmp").iterdir()), "work files are cleaned up"
