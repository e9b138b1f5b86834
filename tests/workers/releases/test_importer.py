from __future__ import annotations

from pathlib import Path

import pytest

from tests.reference_release import DEB_CACHE
from tests.workers.releases.fakes import fake_files
from workers.errors import InvalidRequest
from workers.releases.importer import import_release
from workers.releases.manifest import RELEASE_FILES, release_files
from workers.releases.modules import module_index
from workers.releases.platforms import talos_default_args, upstream_platform_args
from workers.releases.stored import Release, list_versions
from workers.store import LocalStore

EPOCH = 1700000000


def _import(store: LocalStore, src: Path, version: str, tmp_path: Path) -> Release:
    return import_release(
        store,
        src,
        version=version,
        arch="amd64",
        default_source_date_epoch=EPOCH,
        cache_dir=DEB_CACHE,
        work_dir=tmp_path / "work",
    )


def _export(store: LocalStore, release: Release, dest: Path, names: tuple[str, ...]) -> Path:
    dest.mkdir(parents=True)
    for name in names:
        release.fetch(store, name, dest / name)
    return dest


@pytest.mark.integration
def test_our_layout_imports_byte_for_byte_with_release_yaml(
    reference_release: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    ref_store, ref = reference_release
    src = _export(ref_store, ref, tmp_path / "src", RELEASE_FILES)
    (src / "release.yaml").write_text(
        "kernel_args: [console=ttyS0]\nplatform_args:\n  metal: [console=tty0]\n"
        "origin: {note: re-imported}\n"
    )
    store = LocalStore(tmp_path / "store")

    imported = _import(store, src, "1.0.1", tmp_path)

    assert imported.version == "v1.0.1"
    assert imported.files == ref.files
    assert imported.kernel_version == ref.kernel_version
    assert imported.kernel_args == ("console=ttyS0",)
    assert dict(imported.platform_args) == {"metal": ("console=tty0",)}
    assert imported.origin == {"note": "re-imported", "imported_layout": "factory"}
    assert "dummy" in module_index(store, imported).modules


@pytest.mark.integration
def test_talos_imager_layout_gets_modules_from_the_root_and_grub_from_debian(
    reference_release: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    ref_store, ref = reference_release
    talos_names = ("vmlinuz", "initramfs.xz", "systemd-boot.efi", "systemd-stub.efi")
    _export(ref_store, ref, tmp_path / "imager/usr/install/amd64", talos_names)
    store = LocalStore(tmp_path / "store")

    imported = _import(store, tmp_path / "imager", "v1.9.0", tmp_path)

    assert list_versions(store) == ["v1.9.0"]
    for name in (*talos_names, "grub-i386-pc.tar", "grub-x86_64-efi.tar"):
        assert imported.files[name] == ref.files[name], name
    # The reference root carries only modules.builtin*/modules.order: no loadable module.
    assert imported.kernel_version == ref.kernel_version
    index = module_index(store, imported)
    assert index.modules == {}
    assert index.builtin, "modules.builtin comes along from the root"
    assert imported.kernel_args == talos_default_args("v1.9.0")
    assert dict(imported.platform_args) == upstream_platform_args("amd64", "v1.9.0")
    assert imported.origin == {"imported_layout": "talos-imager"}


def _fake_talos_dir(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    files = fake_files(src)
    for name in ("modules.tar", "grub-i386-pc.tar", "grub-x86_64-efi.tar"):
        files[name].unlink()
    return src


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "systemd-stub.efi").unlink(), "lacks systemd-stub.efi"),
        (lambda d: (d / "vmlinuz").write_bytes(b"\x7fELF"), "vmlinuz is not an EFI/PE executable"),
        (
            lambda d: (d / "initramfs.xz").write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 64),
            r"initramfs.xz: (truncated|.*cannot be decompressed)",
        ),
        (lambda d: (d / "initramfs.xz").write_bytes(b"garbage"), "neither xz nor zstd"),
        (lambda d: (d / "release.yaml").write_text("kernel_args: 3\n"), "kernel_args must be"),
        (lambda d: (d / "release.yaml").write_text("colour: red\n"), "unknown keys"),
        (lambda d: (d / "release.json").write_text("{"), "release.json is not valid"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_listed(
    tmp_path: Path, damage: object, message: str
) -> None:
    src = _fake_talos_dir(tmp_path)
    damage(src)  # type: ignore[operator]
    store = LocalStore(tmp_path / "store")

    with pytest.raises(InvalidRequest, match=message):
        _import(store, src, "v1.0.0", tmp_path)
    assert list_versions(store) == []
    assert list(store.list("releases/")) == []


def test_a_file_instead_of_a_directory_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidRequest, match="is not a directory"):
        _import(store, tmp_path / "f", "v1.0.0", tmp_path)


@pytest.mark.integration
def test_talos_arm64_imager_layout_imports_without_grub(
    reference_release_arm64: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    ref_store, ref = reference_release_arm64
    talos_names = ("vmlinuz", "initramfs.xz", "systemd-boot.efi", "systemd-stub.efi")
    _export(ref_store, ref, tmp_path / "imager/usr/install/arm64", talos_names)
    store = LocalStore(tmp_path / "store")

    imported = import_release(
        store,
        tmp_path / "imager",
        version="v1.9.0",
        arch="arm64",
        default_source_date_epoch=EPOCH,
        cache_dir=DEB_CACHE,
        work_dir=tmp_path / "work",
    )

    assert imported.arch == "arm64"
    assert sorted(imported.files) == sorted(release_files("arm64"))
    for name in talos_names:
        assert imported.files[name] == ref.files[name], name
    assert imported.kernel_version == ref.kernel_version
    assert imported.platform_args["metal"] == ("console=ttyAMA0", "console=tty0")
