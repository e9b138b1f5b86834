from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.workers.releases.fakes import (
    KVER,
    MODULES_BUILTIN,
    MODULES_DEP,
    modules_tar,
    save_fake_release,
)
from workers.errors import InvalidRequest
from workers.releases.modules import (
    ModuleIndex,
    index_from_tar,
    index_key,
    module_index,
    module_name,
    parse_index,
    resolve_modules,
)
from workers.store import LocalStore

INDEX = parse_index(KVER, MODULES_DEP, MODULES_BUILTIN)


def test_names_are_normalised_as_the_kernel_does() -> None:
    assert module_name("kernel/arch/x86/crypto/crct10dif-pclmul.ko") == "crct10dif_pclmul"
    assert module_name("kernel/fs/zonefs/zonefs.ko.xz") == "zonefs"
    assert INDEX.modules["crc64_rocksoft"].path == "kernel/lib/crc64-rocksoft.ko"


def test_resolution_puts_dependencies_first() -> None:
    order = resolve_modules(INDEX, ["sd_mod"], "v1.0.0")
    assert order == ["crc64", "crc64_rocksoft", "t10_pi", "sd_mod"]


def test_resolution_accepts_dashes_and_skips_duplicates() -> None:
    order = resolve_modules(INDEX, ["crc64-rocksoft", "zram", "crc64_rocksoft", "dummy"], "v1")
    assert order == ["crc64", "crc64_rocksoft", "zsmalloc", "zram", "dummy"]


def test_builtin_modules_need_nothing_added() -> None:
    assert resolve_modules(INDEX, ["ext4"], "v1.0.0") == []


@pytest.mark.parametrize("name", ["nosuchmod", "../dummy", "kernel/drivers/net/dummy.ko", ""])
def test_unknown_module_names_the_module_and_the_version(name: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        resolve_modules(INDEX, ["dummy", name], "v1.2.3")
    assert str(info.value) == f'kernel module "{name}" is not available for version v1.2.3'


def test_index_is_read_from_modules_tar(tmp_path: Path) -> None:
    index = index_from_tar(modules_tar(tmp_path / "modules.tar"))
    assert index == INDEX
    assert index.names()[:3] == ["crc64", "crc64_rocksoft", "dummy"]
    assert ModuleIndex.from_json(index.to_json()) == index


def test_tar_without_modules_dep_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(f"usr/lib/modules/{KVER}/kernel/x.ko")
        tar.addfile(info)
    with pytest.raises(ValueError, match=r"no modules\.dep"):
        index_from_tar(path)


def test_module_index_is_cached_by_release_digest(store: LocalStore, tmp_path: Path) -> None:
    release = save_fake_release(store, "v1.0.0", tmp_path)
    assert not store.exists(index_key(release))

    first = module_index(store, release)
    assert store.exists(index_key(release))
    assert index_key(release) == f"module-indexes/{release.digest}.json"
    # The cache answers without the tar: remove the tar blob and ask again.
    store.delete(f"blobs/sha256/{release.files['modules.tar'].sha256}")
    assert module_index(store, release) == first == INDEX
