"""Keeping the store within bounds: the asset budget never leaves a manifest without its
blob, the free-space floor, and a full filesystem failing a write whole."""

from __future__ import annotations

import hashlib
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from schematics import parse_schematic, schematic_id
from tests.workers.releases.fakes import save_fake_release
from workers.backends import choose_backend
from workers.errors import InsufficientStorage
from workers.outputs.finished_builds import (
    BUILDS_PREFIX,
    BuiltAsset,
    load_build,
)
from workers.outputs.storage_budget import (
    DownloadRecorder,
    check_free_space,
    evict_to_budget,
    last_download_key,
)
from workers.pipeline.build_once import publish_build
from workers.pipeline.progress import StageClock
from workers.planning.plans import Plan, make_plan
from workers.planning.profiles import parse_profile
from workers.releases.stored import Release, blob_key
from workers.settings import Settings
from workers.store import LocalStore

SIZE = 1000


@pytest.fixture
def release(store: LocalStore, tmp_path: Path) -> Release:
    return save_fake_release(store, "v1.0.0", tmp_path / "release")


def _plan(store: LocalStore, settings: Settings, marker: str) -> Plan:
    schematic = parse_schematic(f"customization:\n  extraKernelArgs: [m={marker}]\n".encode())
    sid = schematic_id(schematic)
    profile = parse_profile("cmdline-metal-amd64")
    return make_plan(store, schematic, sid, "v1.0.0", profile, settings)


def _publish(store: LocalStore, plan: Plan, data: bytes, tmp_path: Path) -> BuiltAsset:
    path = tmp_path / f"asset-{plan.key}"
    path.write_bytes(data)
    return publish_build(store, plan, path, time.monotonic(), StageClock(lambda s, p: None), None)


def _content(n: int) -> bytes:
    return hashlib.sha512(str(n).encode()).digest() * (SIZE // 64) + bytes(SIZE % 64)


def _downloaded(store: LocalStore, key: str, when: int) -> None:
    store.put_bytes(last_download_key(key), f"{when}\n".encode())


def _manifests(store: LocalStore) -> set[str]:
    return {
        k.removeprefix(BUILDS_PREFIX).split("/")[0]
        for k in store.list(BUILDS_PREFIX)
        if k.endswith("/manifest.json")
    }


def _no_manifest_without_blob(store: LocalStore) -> None:
    for key in _manifests(store):
        assert load_build(store, key) is not None, f"build {key} lost its blob"


@pytest.mark.usefixtures("release")
def test_least_recently_downloaded_builds_go_first(
    store: LocalStore, settings: Settings, tmp_path: Path
) -> None:
    plans = [_plan(store, settings, f"lru-{n}") for n in range(4)]
    built = [_publish(store, plan, _content(n), tmp_path) for n, plan in enumerate(plans)]
    for plan, when in zip(plans, (400, 100, 300, 200), strict=True):
        _downloaded(store, plan.key, when)

    evicted = evict_to_budget(store, 2 * SIZE + SIZE // 2)

    assert evicted == [plans[1].key, plans[3].key]
    assert _manifests(store) == {plans[0].key, plans[2].key}
    for gone in (built[1], built[3]):
        assert not store.exists(gone.blob)
        assert not store.exists(last_download_key(gone.key))
    _no_manifest_without_blob(store)
    assert evict_to_budget(store, 2 * SIZE + SIZE // 2) == []


@pytest.mark.usefixtures("release")
def test_a_blob_shared_by_builds_or_a_release_stays(
    store: LocalStore, settings: Settings, release: Release, tmp_path: Path
) -> None:
    old, new = _plan(store, settings, "shared-old"), _plan(store, settings, "shared-new")
    shared = _publish(store, old, _content(7), tmp_path)
    _publish(store, new, _content(7), tmp_path)
    name = sorted(release.files)[0]
    kernel = release.files[name]
    like_kernel = _plan(store, settings, "kernel-bytes")
    kernel_bytes = store.get_bytes(blob_key(kernel.sha256))
    _publish(store, like_kernel, kernel_bytes, tmp_path)
    _downloaded(store, old.key, 1)
    _downloaded(store, like_kernel.key, 2)
    _downloaded(store, new.key, 3)

    evicted = evict_to_budget(store, 1)

    assert evicted[:2] == [old.key, like_kernel.key]
    assert store.exists(blob_key(kernel.sha256))  # the release still has its kernel
    release.fetch(store, name, tmp_path / "release-file")
    if new.key not in evicted:
        assert store.exists(shared.blob)
    _no_manifest_without_blob(store)


@pytest.mark.usefixtures("release")
def test_the_build_just_made_is_kept(store: LocalStore, settings: Settings, tmp_path: Path) -> None:
    first, second = _plan(store, settings, "keep-1"), _plan(store, settings, "keep-2")
    _publish(store, first, _content(1), tmp_path)
    _publish(store, second, _content(2), tmp_path)
    _downloaded(store, first.key, 10)
    _downloaded(store, second.key, 5)
    assert evict_to_budget(store, SIZE, keep=second.key) == [first.key]
    assert _manifests(store) == {second.key}


@pytest.mark.usefixtures("release")
def test_eviction_under_a_small_budget_never_breaks_a_manifest(
    store: LocalStore, settings: Settings, tmp_path: Path
) -> None:
    rng = random.Random(12)
    plans = [_plan(store, settings, f"churn-{n}") for n in range(12)]
    for step in range(40):
        plan = rng.choice(plans)
        if load_build(store, plan.key) is None:
            # Some builds produce the same bytes as others: their blob is shared.
            _publish(store, plan, _content(plans.index(plan) % 5), tmp_path)
            evict_to_budget(store, 3 * SIZE, keep=plan.key)
        else:
            _downloaded(store, plan.key, step)
        _no_manifest_without_blob(store)
        builds = [load_build(store, key) for key in _manifests(store)]
        assert len({b.sha256 for b in builds if b is not None}) <= 3


def test_downloads_are_recorded_coarsely(store: LocalStore) -> None:
    recorder = DownloadRecorder()
    recorder.record(store, "a" * 64)
    first = store.get_bytes(last_download_key("a" * 64))
    assert abs(int(first) - time.time()) < 60
    store.delete(last_download_key("a" * 64))
    recorder.record(store, "a" * 64)  # within the hour: not written again
    assert not store.exists(last_download_key("a" * 64))


def test_free_space_floor(settings: Settings) -> None:
    local = choose_backend(settings)
    check_free_space(local, 1)
    with pytest.raises(InsufficientStorage, match="nearly full"):
        check_free_space(local, 1 << 62)
    # An S3 store has no free space to look at.
    check_free_space(choose_backend(replace(settings, s3_endpoint="http://127.0.0.1:1")), 1 << 62)


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (the tests run as root, as CI does)."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_a_full_filesystem_fails_a_write_whole(tiny_filesystem: Path, tmp_path: Path) -> None:
    store = LocalStore(tiny_filesystem / "store")
    store.put_bytes("small", b"fits")
    big = tmp_path / "big"
    big.write_bytes(bytes(range(256)) * 8192)  # 2 MiB
    with pytest.raises(InsufficientStorage, match="the store is full"):
        store.put_file(blob_key("0" * 64), big)
    with pytest.raises(InsufficientStorage):
        store.put_bytes("also-big", big.read_bytes())
    assert sorted(store.list("")) == ["small"]
    leftovers = [p for p in (tiny_filesystem / "store").rglob("*") if p.is_file()]
    assert [p.name for p in leftovers] == ["small"]
