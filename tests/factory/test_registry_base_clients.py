"""skopeo against a live factory's `siderolabs/installer-base`: the reference release's
installer base, pulled as an air-gapped cluster's mirror would, is the release's own blobs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.factory.live import LiveFactory
from tests.factory.test_registry_clients import _ok, _skopeo
from workers.releases.stored import load_release
from workers.store import LocalStore

pytestmark = pytest.mark.integration

INDEX = "application/vnd.oci.image.index.v1+json"


def _ref(live: LiveFactory, tag: str) -> str:
    return f"docker://127.0.0.1:{live.port}/siderolabs/installer-base:{tag}"


def test_skopeo_pulls_the_release_installer_base(live_factory: LiveFactory, tmp_path: Path) -> None:
    release = load_release(LocalStore(live_factory.data_dir / "store"), "v1.0.0", "amd64")
    base = release.installer_base
    assert base is not None, "the amd64 reference release builds an installer base"

    raw = _ok(_skopeo("inspect", "--raw", "--tls-verify=false", _ref(live_factory, "v1.0.0")))
    index = json.loads(raw)
    assert index["mediaType"] == INDEX
    assert [m["platform"] for m in index["manifests"]] == [{"architecture": "amd64", "os": "linux"}]
    again = _skopeo("inspect", "--raw", "--tls-verify=false", _ref(live_factory, "1.0.0"))
    assert _ok(again) == raw

    dest = tmp_path / "oci"
    ref = _ref(live_factory, "v1.0.0")
    _ok(_skopeo("copy", "--src-tls-verify=false", ref, f"oci:{dest}:v1.0.0"))
    (entry,) = json.loads((dest / "index.json").read_text())["manifests"]
    blobs = dest / "blobs" / "sha256"
    manifest = json.loads((blobs / entry["digest"].removeprefix("sha256:")).read_bytes())
    assert entry["digest"] == index["manifests"][0]["digest"]
    assert manifest["config"]["digest"] == "sha256:" + base.config.sha256
    assert [layer["digest"] for layer in manifest["layers"]] == [
        "sha256:" + layer.sha256 for layer in base.layers
    ]
    for layer in base.layers:
        assert hashlib.sha256((blobs / layer.sha256).read_bytes()).hexdigest() == layer.sha256

    tags = _ok(_skopeo("list-tags", "--tls-verify=false", _ref(live_factory, "v1.0.0")[:-7]))
    assert json.loads(tags)["Tags"] == ["v1.0.0"]


def test_skopeo_reports_an_unknown_base_version(live_factory: LiveFactory) -> None:
    missing = _skopeo("inspect", "--raw", "--tls-verify=false", _ref(live_factory, "v9.9.9"))
    assert missing.returncode != 0
    assert "manifest unknown" in missing.stderr.lower()
