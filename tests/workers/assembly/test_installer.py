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


def _base(tmp_path: Path) -> tuple[dict[str, object], list[Path]]:
    """A two-layer base (one gzip, one plain tar, as registries ship either) and its config."""
    tree = tmp_path / "base-tree"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/bin/installer").write_text("#!/bin/sh\necho install\n")
    plain = tmp_path / "base-1.tar"
    run_tool(["tar", "-cf", plain, "-C", tree, "usr"])
    gz = tmp_path / "base-0.tar.gz"
    run_tool(["tar", "-czf", gz, "-C", tree, "usr/bin"])
    diff_ids = [
        "sha256:" + hashlib.sha256(gzip.decompress(gz.read_bytes())).hexdigest(),
        "sha256:" + hashlib.sha256(plain.read_bytes()).hexdigest(),
    ]
    config: dict[str, object] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/usr/bin/installer"], "Env": ["VERSION=v1.0.0"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return config, [gz, plain]


def test_composed_on_the_installer_base(tmp_path: Path) -> None:
    config, layers = _base(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"kernel")
    archive = make_installer_image(
        tmp_path / "installer.tar",
        workdir=work,
        arch="amd64",
        assets={"vmlinuz": kernel},
        repo_tag="factory/installer:v1.0.0",
        epoch=EPOCH,
        base_config=config,
        base_layers=layers,
    )
    inspect = json.loads(run_tool(["skopeo", "inspect", f"docker-archive:{archive}"]))
    image_config = json.loads(
        run_tool(["skopeo", "inspect", "--config", f"docker-archive:{archive}"])
    )
    # Base layers first, byte for byte, then the assets layer; the base's entrypoint kept.
    assert len(inspect["Layers"]) == 3
    assert inspect["Layers"][:2] == config["rootfs"]["diff_ids"]  # type: ignore[index]
    assert image_config["config"]["Entrypoint"] == ["/usr/bin/installer"]
    assert image_config["config"]["Env"] == ["VERSION=v1.0.0"]
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        stored = [outer.extractfile(name).read() for name in manifest["Layers"][:2]]  # type: ignore[union-attr]
    assert stored == [p.read_bytes() for p in layers]
    assert [name.split(".", 1)[1] for name in manifest["Layers"]] == ["tar.gz", "tar", "tar.gz"]

    again = tmp_path / "again"
    again.mkdir()
    same = make_installer_image(
        tmp_path / "again.tar",
        workdir=again,
        arch="amd64",
        assets={"vmlinuz": kernel},
        repo_tag="factory/installer:v1.0.0",
        epoch=EPOCH,
        base_config=config,
        base_layers=layers,
    )
    assert same.read_bytes() == archive.read_bytes()
