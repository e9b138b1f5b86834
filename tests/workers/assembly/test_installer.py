"""Installer images as docker archives: tar listing, what skopeo reads, the layer's
contents and metadata, reproducibility."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

import pytest

from workers.assembly.installer import make_installer_image
from workers.assembly.run import run_tool

pytestmark = pytest.mark.integration
EPOCH = 1700000000


def _image(tmp_path: Path, name: str) -> Path:
    work = tmp_path / f"{name}-work"
    work.mkdir()
    assets = {}
    for asset, data in (("vmlinuz", b"kernel" * 5000), ("initramfs.xz", b"initrd" * 9000)):
        assets[asset] = tmp_path / asset
        assets[asset].write_bytes(data)
    return make_installer_image(
        tmp_path / name,
        workdir=work,
        arch="amd64",
        assets=assets,
        repo_tag="factory/installer:v1.0.0",
        epoch=EPOCH,
    )


def test_docker_archive_layout_and_layer(tmp_path: Path) -> None:
    archive = _image(tmp_path, "installer.tar")
    listing = run_tool(["tar", "-tvf", archive]).decode().splitlines()
    assert [line.split()[-1].split(".", 1)[-1] for line in listing] == [
        "json",
        "json",
        "tar.gz",
    ]
    assert listing[0].endswith(" manifest.json")
    assert all(line.split()[1] == "0/0" and "2023-11-14 22:13" in line for line in listing)

    inspect = json.loads(run_tool(["skopeo", "inspect", f"docker-archive:{archive}"]))
    assert inspect["Architecture"] == "amd64"
    assert inspect["Os"] == "linux"
    assert inspect["Created"] == "2023-11-14T22:13:20Z"

    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        assert manifest["RepoTags"] == ["factory/installer:v1.0.0"]
        layer_gz = outer.extractfile(manifest["Layers"][0])
        assert layer_gz is not None
        compressed = layer_gz.read()
    assert manifest["Layers"][0] == hashlib.sha256(compressed).hexdigest() + ".tar.gz"
    assert compressed[4:8] == b"\0\0\0\0"  # gzip mtime 0
    layer = gzip.decompress(compressed)
    assert inspect["Layers"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
        members = inner.getmembers()
        assert [m.name for m in members] == [
            "usr/install/amd64/initramfs.xz",
            "usr/install/amd64/vmlinuz",
        ]
        assert all(m.isfile() and m.uid == 0 and m.mtime == EPOCH for m in members)
        vmlinuz = inner.extractfile("usr/install/amd64/vmlinuz")
        assert vmlinuz is not None
        assert vmlinuz.read() == b"kernel" * 5000

    oci = tmp_path / "oci"
    run_tool(["skopeo", "copy", f"docker-archive:{archive}", f"oci:{oci}:installer"])
    assert json.loads((oci / "index.json").read_text())["manifests"]


def test_reproducible(tmp_path: Path) -> None:
    one = _image(tmp_path, "1.tar")
    time.sleep(1.1)
    two = _image(tmp_path, "2.tar")
    assert one.read_bytes() == two.read_bytes()
