"""Docker archives become OCI blobs byte for byte, with a manifest over them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from workers.assembly.installer import make_installer_image
from workers.registry import oci
from workers.registry.archive import ArchiveError, import_docker_archive
from workers.releases.stored import blob_key
from workers.store import LocalStore

EPOCH = 1700000000


def _installer(tmp_path: Path) -> Path:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "vmlinuz").write_bytes(b"kernel bytes")
    (assets / "initramfs.xz").write_bytes(b"initramfs bytes")
    work = tmp_path / "work"
    work.mkdir()
    return make_installer_image(
        tmp_path / "installer.tar",
        workdir=work,
        arch="amd64",
        assets={"vmlinuz": assets / "vmlinuz", "initramfs.xz": assets / "initramfs.xz"},
        repo_tag="factory/installer:v1.0.0",
        epoch=EPOCH,
    )


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {
            m.name: reader.read()
            for m in tar.getmembers()
            if (reader := tar.extractfile(m)) is not None
        }


def _archive(dest: Path, members: dict[str, bytes], symlink: str = "") -> Path:
    with tarfile.open(dest, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return dest


def _config(arch: str = "amd64", layers: int = 1) -> bytes:
    return json.dumps(
        {"architecture": arch, "os": "linux", "rootfs": {"diff_ids": ["sha256:00"] * layers}}
    ).encode()


def _manifest_json(config: str, layers: list[str]) -> bytes:
    return json.dumps([{"Config": config, "RepoTags": [], "Layers": layers}]).encode()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def test_installer_archive_becomes_oci_content(tmp_path: Path, store: LocalStore) -> None:
    archive = _installer(tmp_path)
    members = _members(archive)
    entry = json.loads(members["manifest.json"])[0]

    image = import_docker_archive(store, archive, "amd64", tmp_path)

    config, layer = image.blobs
    assert store.get_bytes(blob_key(config.hex)) == members[entry["Config"]]
    assert config.media_type == oci.CONFIG
    assert store.get_bytes(blob_key(layer.hex)) == members[entry["Layers"][0]]
    assert layer.digest == "sha256:" + hashlib.sha256(members[entry["Layers"][0]]).hexdigest()
    assert layer.media_type == oci.LAYER_GZIP
    manifest_bytes = store.get_bytes(blob_key(image.manifest.hex))
    assert hashlib.sha256(manifest_bytes).hexdigest() == image.manifest.hex
    assert image.manifest.size == len(manifest_bytes)
    manifest = json.loads(manifest_bytes)
    assert manifest["mediaType"] == oci.MANIFEST
    assert manifest["config"] == config.to_json()
    assert manifest["layers"] == [layer.to_json()]
    assert image.manifest.platform == {"architecture": "amd64", "os": "linux"}


def test_layer_diff_id_matches_config(tmp_path: Path, store: LocalStore) -> None:
    """Clients unpacking into container storage check the uncompressed digest."""
    image = import_docker_archive(store, _installer(tmp_path), "amd64", tmp_path)
    config, layer = image.blobs

    diff_ids = json.loads(store.get_bytes(blob_key(config.hex)))["rootfs"]["diff_ids"]
    uncompressed = gzip.decompress(store.get_bytes(blob_key(layer.hex)))
    assert diff_ids == ["sha256:" + hashlib.sha256(uncompressed).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(uncompressed)) as tar:
        assert sorted(tar.getnames()) == [
            "usr/install/amd64/initramfs.xz",
            "usr/install/amd64/vmlinuz",
        ]


def test_import_is_deterministic(tmp_path: Path) -> None:
    archive = _installer(tmp_path)
    one = import_docker_archive(LocalStore(tmp_path / "a"), archive, "amd64", tmp_path)
    other = import_docker_archive(LocalStore(tmp_path / "b"), archive, "amd64", tmp_path)
    assert one == other


def test_uncompressed_layers_stay_uncompressed(tmp_path: Path, store: LocalStore) -> None:
    layer = b"plain tar bytes"
    archive = _archive(
        tmp_path / "a.tar",
        {"manifest.json": _manifest_json("c.json", ["l.tar"]), "c.json": _config(), "l.tar": layer},
    )
    image = import_docker_archive(store, archive, "amd64", tmp_path)
    assert image.blobs[1].media_type == oci.LAYER_TAR
    assert image.blobs[1].size == len(layer)


@pytest.mark.parametrize(
    ("members", "symlink", "message"),
    [
        ({"manifest.json": b"[]"}, "", "exactly one image"),
        ({"manifest.json": b"{not json"}, "", "not JSON"),
        ({"manifest.json": _manifest_json("c.json", ["l.tar"]), "c.json": _config()}, "", "l.tar"),
        (
            {"manifest.json": _manifest_json("c.json", ["l.tar"]), "c.json": _config("arm64")},
            "",
            "expected linux/amd64",
        ),
        (
            {"manifest.json": _manifest_json("c.json", ["l.tar"]), "c.json": _config(layers=2)},
            "",
            "diff_ids",
        ),
        (
            {"manifest.json": _manifest_json("c.json", ["l.tar"]), "c.json": _config()},
            "l.tar",
            "not a regular file",
        ),
        ({"manifest.json": _manifest_json("c.json", []), "c.json": b"x" * (2 << 20)}, "", "larger"),
    ],
)
def test_bad_archives_are_refused(
    tmp_path: Path, store: LocalStore, members: dict[str, Any], symlink: str, message: str
) -> None:
    archive = _archive(tmp_path / "bad.tar", members, symlink)
    with pytest.raises(ArchiveError, match=message):
        import_docker_archive(store, archive, "amd64", tmp_path)
