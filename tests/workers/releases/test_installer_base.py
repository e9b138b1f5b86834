"""A Talos installer-base image read from a docker-archive or an OCI layout, stored by digest
and fetched back; wrong inputs are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workers.assembly.test_installer import _base
from workers.assembly.installer import make_installer_image
from workers.assembly.run import run_tool
from workers.errors import InvalidRequest
from workers.releases.installer_base import read_installer_base, store_installer_base
from workers.releases.stored import blob_key
from workers.store import LocalStore

pytestmark = pytest.mark.integration


def _archive(tmp_path: Path, arch: str = "amd64") -> Path:
    config, layers = _base(tmp_path)
    config["architecture"] = arch
    work = tmp_path / "work"
    work.mkdir()
    tool = tmp_path / "installer"
    tool.write_bytes(b"#!/bin/sh\n")
    return make_installer_image(
        tmp_path / "installer-base.tar",
        workdir=work,
        arch=arch,
        assets={"tool": tool},
        repo_tag="ghcr.io/siderolabs/installer-base:v1.10.0",
        epoch=0,
        base_config=config,
        base_layers=layers,
    )


def test_docker_archive_and_oci_layout_give_the_same_base(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    from_archive = read_installer_base(archive, "amd64", tmp_path / "a")
    layout = tmp_path / "oci"
    run_tool(["skopeo", "copy", f"docker-archive:{archive}", f"oci:{layout}:base"])
    from_layout = read_installer_base(layout, "amd64", tmp_path / "b")

    assert len(from_archive.layers) == 3
    assert from_archive.config_json()["config"]["Entrypoint"] == ["/usr/bin/installer"]
    # skopeo may recompress layers; the uncompressed layers (diff_ids) are the same.
    assert from_layout.config_json()["rootfs"] == from_archive.config_json()["rootfs"]
    assert len(from_layout.layers) == 3

    store = LocalStore(tmp_path / "store")
    base = store_installer_base(store, from_archive, tmp_path)
    assert store.get_bytes(blob_key(base.config.sha256)) == from_archive.config
    assert [store.get_bytes(blob_key(e.sha256)) for e in base.layers] == [
        p.read_bytes() for p in from_archive.layers
    ]


def test_refuses_another_arch_and_other_files(tmp_path: Path) -> None:
    archive = _archive(tmp_path, arch="arm64")
    with pytest.raises(InvalidRequest, match="installer base is linux/arm64, expected linux/amd64"):
        read_installer_base(archive, "amd64", tmp_path / "a")
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("hello")
    with pytest.raises(InvalidRequest, match="OCI layout directory or a docker-archive"):
        read_installer_base(not_an_image, "amd64", tmp_path / "b")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidRequest, match=r"index\.json of the installer base"):
        read_installer_base(empty, "amd64", tmp_path / "c")
