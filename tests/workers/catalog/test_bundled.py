"""Bundled reference extensions and overlay: installed per release, idempotently."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from extensions.bundled import bundled_sources
from tests.workers.releases.fakes import KVER, fake_files, fake_manifest, save_fake_release
from workers.bootstrap import FIRST_START_STEPS
from workers.catalog import (
    ExtensionRecord,
    catalog_for,
    install_bundled_extensions,
    list_extension_records,
    overlay_catalog_for,
)
from workers.releases.manifest import MODULES_TAR
from workers.releases.modules import module_index
from workers.releases.stored import Release, save_release
from workers.settings import Settings
from workers.store import LocalStore, Store


def members(store: Store, record: ExtensionRecord) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(store.path(record.tar_key)) as tar:  # type: ignore[attr-defined]
        return {m.name: m for m in tar.getmembers()}


def test_bundled_sources_are_found() -> None:
    kinds = {(s.kind, s.name): s.modules for s in bundled_sources()}
    assert kinds == {
        ("extension", "dummy-module"): ("dummy",),
        ("extension", "firmware-demo"): (),
        ("extension", "hello"): (),
        ("overlay", "testboard"): (),
    }


def test_install_is_registered_as_a_first_start_step() -> None:
    assert install_bundled_extensions in FIRST_START_STEPS


def test_install_on_a_fake_release(settings: Settings, store: LocalStore, tmp_path: Path) -> None:
    release = save_fake_release(store, "v1.0.0", tmp_path)
    messages: list[str] = []
    install_bundled_extensions(settings, store, release, messages.append)
    keys = {key: store.get_bytes(key) for key in store.list("")}
    install_bundled_extensions(settings, store, release, messages.append)
    assert {key: store.get_bytes(key) for key in store.list("")} == keys  # nothing new
    assert "extension factory/hello 1.0.0 ready" in messages
    catalog = {r.full_name: r for r in catalog_for(store, "v1.0.0", "amd64")}
    assert sorted(catalog) == ["factory/dummy-module", "factory/firmware-demo", "factory/hello"]
    assert [o.name for o in overlay_catalog_for(store, "v1.0.0")] == ["testboard"]

    hello = members(store, catalog["factory/hello"])
    assert hello["rootfs/usr/local/bin/hello"].mode == 0o755
    firmware = members(store, catalog["factory/firmware-demo"])
    assert "rootfs/usr/lib/firmware/factory/demo-firmware.bin" in firmware

    module = catalog["factory/dummy-module"]
    assert (module.version, module.release, module.arch) == ("1.0.0-v1.0.0", "v1.0.0", "amd64")
    assert module.kernel_versions == (KVER,)
    files = members(store, module)
    assert f"rootfs/usr/lib/modules/{KVER}/extras/dummy.ko" in files
    assert "rootfs/usr/lib/modules-load.d/dummy-module.conf" in files


def test_module_build_is_bound_to_its_release(
    settings: Settings, store: LocalStore, tmp_path: Path
) -> None:
    for version in ("v1.0.0", "v1.1.0"):
        release = save_fake_release(store, version, tmp_path)
        install_bundled_extensions(settings, store, release, lambda _: None)
    modules = sorted(r.version for r in list_extension_records(store) if r.name == "dummy-module")
    assert modules == ["1.0.0-v1.0.0", "1.0.0-v1.1.0"]
    listed = [r.version for r in catalog_for(store, "v1.0.0", "amd64") if r.name == "dummy-module"]
    assert listed == ["1.0.0-v1.0.0"]


@pytest.mark.integration
def test_dummy_module_from_the_reference_release(
    reference_release: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    store, release = reference_release
    index = module_index(store, release)
    assert "dummy" in index.modules  # a loadable module ...
    assert "dummy" not in index.builtin  # ... not built in
    settings = Settings(data_dir=tmp_path / "data")
    install_bundled_extensions(settings, store, release, lambda _: None)
    record = next(
        r for r in catalog_for(store, release.version, "amd64") if r.name == "dummy-module"
    )
    files = members(store, record)
    ko = files[f"rootfs/usr/lib/modules/{release.kernel_version}/extras/dummy.ko"]
    with (
        tarfile.open(store.path(record.tar_key)) as tar,
        tarfile.open(release.fetch(store, MODULES_TAR, tmp_path / MODULES_TAR)) as tree,
    ):
        shipped = tar.extractfile(ko).read()  # type: ignore[union-attr]
        original = tree.extractfile(  # type: ignore[union-attr]
            f"usr/lib/modules/{release.kernel_version}/{index.modules['dummy'].path}"
        ).read()
    assert shipped == original
    assert shipped.startswith(b"\x7fELF")


def test_module_recipe_is_skipped_when_the_release_lacks_the_module(
    settings: Settings, store: LocalStore, tmp_path: Path
) -> None:
    files = fake_files(tmp_path / "files")
    base = f"usr/lib/modules/{KVER}/"
    with tarfile.open(files[MODULES_TAR], "w") as tar:  # a kernel with dummy built in
        for name, text in (
            ("modules.dep", b"kernel/drivers/other.ko:\n"),
            ("modules.builtin", b"kernel/drivers/net/dummy.ko\n"),
        ):
            info = tarfile.TarInfo(base + name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    release = save_release(store, fake_manifest("v1.0.0", files), files)
    messages: list[str] = []
    install_bundled_extensions(settings, store, release, messages.append)
    assert any(
        m.startswith("skipping bundled extension dummy-module for v1.0.0:") and "built into" in m
        for m in messages
    )
    names = [r.full_name for r in catalog_for(store, "v1.0.0", "amd64")]
    assert names == ["factory/firmware-demo", "factory/hello"]


def test_changing_source_date_epoch_does_not_change_digests(
    store: LocalStore, tmp_path: Path
) -> None:
    release = save_fake_release(store, "v1.0.0", tmp_path)
    for epoch in (1, 1700000000):
        settings = Settings(data_dir=tmp_path / "data", source_date_epoch=epoch)
        install_bundled_extensions(settings, store, release, lambda _: None)
    assert len(list_extension_records(store)) == 3
