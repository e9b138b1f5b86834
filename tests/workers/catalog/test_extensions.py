"""Stored extensions: add (validated, nothing stored on failure), catalog per release, resolve."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.extensions.builders import (
    LAYER_TAR,
    OciLayout,
    file,
    gz,
    hello_members,
    manifest,
    tar_bytes,
    write,
    zst,
)
from tests.workers.releases.fakes import KVER, save_fake_release
from workers.catalog import (
    CorruptObject,
    add_extension,
    catalog_for,
    extract_extension,
    fetch_extension,
    list_extension_records,
    resolve_extensions,
)
from workers.catalog.index import change_key
from workers.errors import InvalidRequest, NotFound
from workers.store import LocalStore

EPOCH = 1700000000


@pytest.fixture
def releases(store: LocalStore, tmp_path: Path) -> LocalStore:
    for version in ("v1.0.0", "v1.5.0"):
        save_fake_release(store, version, tmp_path / "releases")
    save_fake_release(store, "v1.5.0", tmp_path / "releases", arch="arm64")
    return store


def source(
    tmp_path: Path,
    name: str = "hello",
    version: str = "1.0.0",
    compat: str = ">= v1.0.0",
    extra: bytes = b"",
) -> Path:
    members = hello_members([file("rootfs/usr/local/share/extra", extra)] if extra else [])
    members[0] = file("manifest.yaml", manifest(name, version, compat))
    return write(tmp_path / f"{name}-{version}-{len(extra)}.tar", tar_bytes(members))


def stored_keys(store: LocalStore) -> list[str]:
    """Extension tars and records."""
    return list(store.list("extensions/"))


def test_add_stores_tar_then_record(releases: LocalStore, tmp_path: Path) -> None:
    record = add_extension(releases, source(tmp_path), "factory", EPOCH)
    assert record.full_name == "factory/hello"
    assert stored_keys(releases) == [
        f"extensions/{record.digest}.json",
        f"extensions/{record.digest}.tar",
    ]
    # Logged last: other processes' indexes read the record from the entry.
    assert json.loads(releases.get_bytes(change_key(1)))["add"]["digest"] == record.digest
    assert json.loads(releases.get_bytes(record.record_key))["digest"] == record.digest
    assert record.arch == ""  # a plain tar says nothing about its architecture
    assert list_extension_records(releases) == [record]


def test_same_content_in_any_container_is_one_extension(
    releases: LocalStore, tmp_path: Path
) -> None:
    plain = source(tmp_path).read_bytes()
    a = add_extension(releases, write(tmp_path / "a.tar", plain), "factory", EPOCH)
    b = add_extension(releases, write(tmp_path / "b", gz(plain)), "factory", EPOCH)
    c = add_extension(releases, write(tmp_path / "c", zst(plain)), "factory", EPOCH)
    assert a == b == c
    assert len(stored_keys(releases)) == 2


def test_oci_layout_record_is_arch_specific(releases: LocalStore, tmp_path: Path) -> None:
    layout = OciLayout()
    layout.image([(source(tmp_path).read_bytes(), LAYER_TAR)], arch="arm64")
    record = add_extension(
        releases, write(tmp_path / "oci.tar", layout.tar()), "factory", EPOCH, arch="arm64"
    )
    assert record.arch == "arm64"
    assert [r.full_name for r in catalog_for(releases, "v1.5.0", "arm64")] == ["factory/hello"]
    assert catalog_for(releases, "v1.5.0", "amd64") == []


@pytest.mark.parametrize(("image_arch", "wanted"), [("arm64", "amd64"), ("amd64", "arm64")])
def test_an_extension_of_the_other_arch_is_refused_by_name(
    releases: LocalStore, tmp_path: Path, image_arch: str, wanted: str
) -> None:
    layout = OciLayout()
    layout.image([(source(tmp_path).read_bytes(), LAYER_TAR)], arch=image_arch)
    oci = write(tmp_path / "oci.tar", layout.tar())
    add_extension(releases, oci, "factory", EPOCH, arch=image_arch)
    message = (
        f'official extension "factory/hello" is built for linux/{image_arch} only, '
        f"not for linux/{wanted} (version v1.5.0)"
    )
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        resolve_extensions(releases, "v1.5.0", wanted, ["factory/hello"])
    with pytest.raises(InvalidRequest, match=r"is not available for version v1\.5\.0"):
        resolve_extensions(releases, "v1.5.0", wanted, ["factory/nothing"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"garbage" * 100, "upload: not a tar archive"),
        (tar_bytes(hello_members([file("rootfs/etc/passwd", b"x")])), "rootfs/etc/passwd"),
        (tar_bytes(hello_members()[1:]), "missing manifest.yaml"),
    ],
)
def test_invalid_source_stores_nothing(
    releases: LocalStore, tmp_path: Path, data: bytes, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        add_extension(releases, write(tmp_path / "x", data), "factory", EPOCH, label="upload")
    assert stored_keys(releases) == []


def test_range_no_release_satisfies_is_refused(releases: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(
        InvalidRequest, match=r'requires version ">= v9.0.0".*available: v1.0.0, v1.5.0'
    ):
        add_extension(releases, source(tmp_path, compat=">= v9.0.0"), "factory", EPOCH)
    assert stored_keys(releases) == []


def test_same_name_and_version_with_other_content_is_refused(
    releases: LocalStore, tmp_path: Path
) -> None:
    first = add_extension(releases, source(tmp_path), "factory", EPOCH)
    with pytest.raises(
        InvalidRequest, match=f"factory/hello 1.0.0 already exists .*{first.digest}"
    ):
        add_extension(releases, source(tmp_path, extra=b"changed"), "factory", EPOCH)
    assert list_extension_records(releases) == [first]
    # Identical content under another name is refused too (one digest, one record).
    with pytest.raises(InvalidRequest, match=re.escape("already stored as factory/hello 1.0.0")):
        add_extension(releases, source(tmp_path), "other", EPOCH)


def test_invalid_namespace(releases: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match='invalid namespace "Bad/NS"'):
        add_extension(releases, source(tmp_path), "Bad/NS", EPOCH)


def test_catalog_lists_compatible_extensions_newest_first(
    releases: LocalStore, tmp_path: Path
) -> None:
    add_extension(releases, source(tmp_path, "hello", "1.2.0"), "factory", EPOCH)
    add_extension(releases, source(tmp_path, "hello", "1.10.0", ">= v1.5.0"), "factory", EPOCH)
    add_extension(releases, source(tmp_path, "old", "1.0.0", "< v1.5.0"), "factory", EPOCH)
    add_extension(releases, source(tmp_path, "gvisor", "1.0.0"), "siderolabs", EPOCH)
    v1 = {r.full_name: r.version for r in catalog_for(releases, "v1.0.0", "amd64")}
    v15 = {r.full_name: r.version for r in catalog_for(releases, "1.5.0", "amd64")}
    assert v1 == {"factory/hello": "1.2.0", "factory/old": "1.0.0", "siderolabs/gvisor": "1.0.0"}
    assert v15 == {"factory/hello": "1.10.0", "siderolabs/gvisor": "1.0.0"}  # 1.10 > 1.2


def test_catalog_unknown_and_malformed_versions(releases: LocalStore) -> None:
    with pytest.raises(NotFound, match=re.escape("v3.0.0 is not available")):
        catalog_for(releases, "v3.0.0", "amd64")
    with pytest.raises(InvalidRequest, match=re.escape('invalid version "1.x"')):
        catalog_for(releases, "1.x", "amd64")


def test_modules_for_another_kernel_are_not_listed(releases: LocalStore, tmp_path: Path) -> None:
    members = hello_members(
        [
            file(f"rootfs/usr/lib/modules/{KVER}/extras/a.ko", b"ko"),
        ]
    )
    members[0] = file("manifest.yaml", manifest("right-kernel"))
    add_extension(releases, write(tmp_path / "r.tar", tar_bytes(members)), "factory", EPOCH)
    members = hello_members([file("rootfs/usr/lib/modules/5.0.0-other/extras/a.ko", b"ko")])
    members[0] = file("manifest.yaml", manifest("wrong-kernel"))
    add_extension(releases, write(tmp_path / "w.tar", tar_bytes(members)), "factory", EPOCH)
    names = [r.full_name for r in catalog_for(releases, "v1.0.0", "amd64")]
    assert names == ["factory/right-kernel"]


def test_resolve_keeps_schematic_order(releases: LocalStore, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        add_extension(releases, source(tmp_path, name), "factory", EPOCH)
    got = resolve_extensions(releases, "v1.0.0", "amd64", ["factory/c", "factory/a", "factory/c"])
    assert [r.full_name for r in got] == ["factory/c", "factory/a"]
    with pytest.raises(
        InvalidRequest,
        match=re.escape(
            'official extension "siderolabs/gvisor" is not available for version v1.0.0'
        ),
    ):
        resolve_extensions(releases, "1.0.0", "amd64", ["factory/a", "siderolabs/gvisor"])


def test_fetch_verifies_and_extract_unpacks(releases: LocalStore, tmp_path: Path) -> None:
    record = add_extension(releases, source(tmp_path), "factory", EPOCH)
    tar = fetch_extension(releases, record.digest, tmp_path / "fetched.tar")
    manifest_ = extract_extension(tar, tmp_path / "unpacked")
    assert manifest_.name == "hello"
    assert (tmp_path / "unpacked/rootfs/usr/local/bin/hello").is_file()
    releases.put_bytes(record.tar_key, b"corrupted")
    with pytest.raises(CorruptObject, match=f"extensions/{record.digest}.tar is corrupt"):
        fetch_extension(releases, record.digest, tmp_path / "again.tar")
    assert not (tmp_path / "again.tar").exists()
    with pytest.raises(NotFound):
        fetch_extension(releases, "0" * 64, tmp_path / "missing.tar")
