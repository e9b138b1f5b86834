"""Same inputs, same bytes: every built kind, twice, from two independently built releases
(amd64, and every arm64 kind from two independent arm64 reference builds); each amd64 asset's
SBOM and signed provenance too (`build_assets` writes them beside it).

The second build runs with a freshly built reference release in another directory, another
time zone and a single CPU (the affinity is inherited by every tool); its assets are also
built under another umask. It shares no layer cache with the first.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.reference_release import build_reference
from tests.workers.assets import build_assets, stock_store
from workers.evidence.stored import PROVENANCE_SUFFIX, SBOM_SUFFIX
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = pytest.mark.integration

PATHS = [
    "kernel-amd64",
    "cmdline-metal-amd64",
    "initramfs-amd64.xz",
    "metal-amd64.iso",
    "metal-amd64.raw",
    "metal-amd64.qcow2",
    "metal-amd64.raw.xz",
    "metal-amd64.raw.zst",
    "digital-ocean-amd64.raw.gz",
    "gcp-amd64.raw.tar.gz",
    "installer-amd64.tar",
]
ARM64_PATHS = [
    "kernel-arm64",
    "cmdline-metal-arm64",
    "initramfs-arm64.xz",
    "metal-arm64-uki.efi",
    "metal-arm64.iso",
    "metal-arm64.raw",
    "metal-arm64.raw.xz",
    "metal-arm64.qcow2",
    "installer-arm64.tar",
    "extensions-arm64.sqsh",
]


EVIDENCE = [path + suffix for path in PATHS for suffix in (SBOM_SUFFIX, PROVENANCE_SUFFIX)]


def _digests(built: dict[str, Path]) -> dict[str, str]:
    digests = {}
    documents = {
        path + suffix: file.with_name(file.name + suffix)
        for path, file in built.items()
        for suffix in (SBOM_SUFFIX, PROVENANCE_SUFFIX)
    }
    for path, file in {**built, **documents}.items():
        sha = hashlib.sha256()
        with file.open("rb") as f:
            while chunk := f.read(1 << 20):
                sha.update(chunk)
        digests[path] = sha.hexdigest()
    return digests


@contextmanager
def _elsewhere(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One CPU and another time zone for this process and every tool it starts."""
    affinity = os.sched_getaffinity(0)
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    os.sched_setaffinity(0, {max(affinity)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, affinity)
        monkeypatch.delenv("TZ")


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def first_build(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    root = tmp_path_factory.mktemp("first")
    store, settings = stock_store(reference_release, root)
    return _digests(build_assets(store, settings, PATHS, root / "out"))


@pytest.fixture(scope="module")
def second_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _build_elsewhere(tmp_path_factory, "amd64", PATHS)


@pytest.fixture(scope="module")
def first_arm64_build(
    reference_release_arm64: tuple[LocalStore, Release],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    root = tmp_path_factory.mktemp("first-arm64")
    store, settings = stock_store(reference_release_arm64, root)
    return _digests(build_assets(store, settings, ARM64_PATHS, root / "out"))


@pytest.fixture(scope="module")
def second_arm64_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _build_elsewhere(tmp_path_factory, "arm64", ARM64_PATHS)


def _build_elsewhere(
    tmp_path_factory: pytest.TempPathFactory, arch: str, paths: list[str]
) -> dict[str, str]:
    root = tmp_path_factory.mktemp(f"second-{arch}-build-in-a-deeper") / "elsewhere"
    with pytest.MonkeyPatch.context() as monkeypatch, _elsewhere(monkeypatch):
        fresh = build_reference(root / "release-store", root / "release-work", arch)
        with _umask(0o077):
            store, settings = stock_store(fresh, root)
            return _digests(build_assets(store, settings, paths, root / "out"))


@pytest.mark.parametrize("path", PATHS + EVIDENCE)
def test_byte_identical(
    path: str, first_build: dict[str, str], second_build: dict[str, str]
) -> None:
    assert first_build[path] == second_build[path]


@pytest.mark.parametrize("path", ARM64_PATHS)
def test_arm64_byte_identical(
    path: str, first_arm64_build: dict[str, str], second_arm64_build: dict[str, str]
) -> None:
    assert first_arm64_build[path] == second_arm64_build[path]
