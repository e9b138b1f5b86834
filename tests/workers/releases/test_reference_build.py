"""The reference build: reproducible, and its root carries no loadable module."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.reference_release import build_reference
from workers.assembly.run import run_tool
from workers.releases.initramfs_reader import compression_of, extract_members
from workers.releases.manifest import INITRAMFS, MODULES_TAR, RELEASE_FILES
from workers.releases.stored import Release, manifest_key
from workers.store import LocalStore

pytestmark = pytest.mark.integration


def test_two_builds_give_identical_manifests(
    reference_release: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    store, release = reference_release
    again_store, again = build_reference(tmp_path / "store", tmp_path / "work")

    key = manifest_key(release.version, release.arch)
    assert again_store.get_bytes(key) == store.get_bytes(key)
    assert again.digest == release.digest
    assert sorted(again.files) == sorted(RELEASE_FILES)
    # The installer base (its layer holds the GRUB disk layout) is reproducible too.
    assert release.installer_base is not None
    assert again.installer_base == release.installer_base


def test_base_root_has_module_data_but_no_ko_and_the_tree_is_complete(
    reference_release: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    store, release = reference_release
    kver = release.kernel_version
    initramfs = release.fetch(store, INITRAMFS, tmp_path / INITRAMFS)
    assert compression_of(initramfs) == "zstd"
    members = extract_members(initramfs, {"init", "rootfs.sqsh"}, tmp_path)
    listing = run_tool(["unsquashfs", "-lls", "-n", members["rootfs.sqsh"]]).decode()

    root_modules = [line for line in listing.splitlines() if f"/usr/lib/modules/{kver}/" in line]
    names = sorted(line.rsplit("/", 1)[1] for line in root_modules)
    assert "modules.builtin" in names
    assert "modules.order" in names
    assert all(n.startswith(("modules.builtin", "modules.order")) for n in names), names
    assert " squashfs-root/usr/sbin/init" in listing
    assert "squashfs-root/bin -> usr/bin" in listing
    entries = listing.splitlines()
    assert all(" root/root " in line and " 2023-11-14 22:13 " in line for line in entries)

    with tarfile.open(release.fetch(store, MODULES_TAR, tmp_path / MODULES_TAR)) as tar:
        tar_names = set(tar.getnames())
    prefix = f"usr/lib/modules/{kver}/"
    assert prefix + "modules.dep" in tar_names
    assert prefix + "kernel/drivers/net/dummy.ko" in tar_names
    assert len([n for n in tar_names if n.endswith(".ko")]) > 1000
