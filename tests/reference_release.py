"""Session fixture `reference_release`: the reference release, built once per test session.

Returns `(store, release)`: a LocalStore in a session temp dir (shared by xdist workers,
read it, do not write releases into it) holding release
`REFERENCE_VERSION`/amd64 (all seven files, the module index); `reference_release_arm64` the
same for arm64 in a store of its own. `.deb` files are cached in
`DEB_CACHE` across runs on the same machine (harmless on a fresh one: they are downloaded).
Use `release.fetch(store, name, dest)` to get a file, e.g. "vmlinuz" or "initramfs.xz".
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from workers.releases.reference import build_reference_release
from workers.releases.stored import Release, list_versions, load_release
from workers.store import LocalStore

DEB_CACHE = Path("/var/cache/image-factory-test/debs")
REFERENCE_VERSION = "v1.0.0"
REFERENCE_EPOCH = 1700000000


def build_reference(
    store_root: Path, work_dir: Path, arch: str = "amd64"
) -> tuple[LocalStore, Release]:
    store = LocalStore(store_root)
    release = build_reference_release(
        store,
        version=REFERENCE_VERSION,
        arch=arch,
        source_date_epoch=REFERENCE_EPOCH,
        cache_dir=DEB_CACHE,
        work_dir=work_dir,
    )
    return store, release


@pytest.fixture(scope="session")
def reference_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, Release]:
    return _shared_reference(tmp_path_factory, "amd64")


@pytest.fixture(scope="session")
def reference_release_arm64(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[LocalStore, Release]:
    """The arm64 reference release, in a store of its own (arm64 only)."""
    return _shared_reference(tmp_path_factory, "arm64")


def _shared_reference(
    tmp_path_factory: pytest.TempPathFactory, arch: str
) -> tuple[LocalStore, Release]:
    # Under pytest-xdist every worker asks for it: the first builds, the others wait on the
    # lock and reuse the result (the parent of a worker's basetemp is shared by the session).
    base = tmp_path_factory.getbasetemp()
    name = "reference-release" if arch == "amd64" else f"reference-release-{arch}"
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    root.mkdir(exist_ok=True)
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        store = LocalStore(root / "store")
        if list_versions(store):
            return store, load_release(store, REFERENCE_VERSION, arch)
        return build_reference(root / "store", root / "work", arch)
