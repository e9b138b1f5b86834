from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.workers.releases.fakes import fake_files, fake_manifest
from workers.releases.manifest import GRUB_FILES, Manifest, ManifestError


def test_manifest_json_is_sorted_indented_and_round_trips(tmp_path: Path) -> None:
    manifest = fake_manifest("v1.0.0", fake_files(tmp_path))
    data = manifest.to_json()

    assert data.endswith(b"}\n")
    doc = json.loads(data)
    assert data == (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()
    assert doc["schema"] == 1
    assert doc["files"]["vmlinuz"]["size"] == (tmp_path / "vmlinuz").stat().st_size
    assert Manifest.from_json(data) == manifest


def test_manifest_without_every_contract_file_is_invalid(tmp_path: Path) -> None:
    manifest = fake_manifest("v1.0.0", fake_files(tmp_path))
    files = dict(manifest.files)
    del files["grub-i386-pc.tar"]
    with pytest.raises(ManifestError, match=r"missing \['grub-i386-pc.tar'\]"):
        replace(manifest, files=files).validate()


def test_an_arm64_release_has_no_grub_files(tmp_path: Path) -> None:
    arm64 = fake_manifest("v1.0.0", fake_files(tmp_path / "arm64", arch="arm64"), "arm64")
    assert Manifest.from_json(arm64.to_json()) == arm64
    assert not set(GRUB_FILES) & set(arm64.files)
    with_grub = fake_manifest("v1.0.0", fake_files(tmp_path / "amd64"), "arm64")
    with pytest.raises(ManifestError, match=r"unexpected \['grub-i386-pc.tar'"):
        with_grub.validate()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("schema", 2, "unsupported release manifest schema"),
        ("version", "1.0.0", "must start with v"),
        ("arch", "sparc", "invalid arch"),
        ("kernel_args", "console=tty0", "kernel_args must be a list"),
        ("platform_args", {"aws": []}, "platform_args must include metal"),
        ("source_date_epoch", "now", "source_date_epoch must be an integer"),
    ],
)
def test_malformed_manifests_are_rejected(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    doc = json.loads(fake_manifest("v1.0.0", fake_files(tmp_path)).to_json())
    doc[field] = value
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(json.dumps(doc).encode())


def test_unknown_manifest_fields_are_rejected(tmp_path: Path) -> None:
    doc = json.loads(fake_manifest("v1.0.0", fake_files(tmp_path)).to_json())
    doc["extra"] = 1
    with pytest.raises(ManifestError, match="fields must be"):
        Manifest.from_json(json.dumps(doc).encode())


def test_garbage_is_not_a_manifest() -> None:
    with pytest.raises(ManifestError, match="not JSON"):
        Manifest.from_json(b"\xff{")
