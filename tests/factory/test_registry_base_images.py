"""`/v2/siderolabs/installer-base/…`: each release's installer base as an OCI image (index
over the arches that have one), its blobs, tags and errors; on hand-made releases."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.workers.releases.fakes import save_release_with_base
from workers.store import LocalStore

BASE = "/v2/siderolabs/installer-base"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def releases(store: LocalStore, tmp_path: Path) -> LocalStore:
    """v1.0.0: amd64 and arm64 with a base; v1.1.0: amd64 only, no base."""
    save_release_with_base(store, tmp_path, "v1.0.0", "amd64", with_base=True)
    save_release_with_base(store, tmp_path, "v1.0.0", "arm64", with_base=True)
    save_release_with_base(store, tmp_path, "v1.1.0", "amd64", with_base=False)
    return store


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_index_over_the_arches_with_a_base(client: FlaskClient, releases: LocalStore) -> None:
    response = client.get(f"{BASE}/manifests/v1.0.0")
    assert response.status_code == 200
    assert response.mimetype == INDEX
    assert response.headers["Docker-Content-Digest"] == _digest(response.data)
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    index = response.get_json()
    platforms = [m["platform"] for m in index["manifests"]]
    assert platforms == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]
    assert client.get(f"{BASE}/manifests/1.0.0").data == response.data
    head = client.head(f"{BASE}/manifests/v1.0.0")
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Length"] == str(len(response.data))


def test_platform_manifest_config_and_layers_are_the_release_blobs(
    client: FlaskClient, releases: LocalStore
) -> None:
    index = client.get(f"{BASE}/manifests/v1.0.0").get_json()
    amd64 = index["manifests"][0]
    response = client.get(f"{BASE}/manifests/{amd64['digest']}")
    assert response.status_code == 200
    assert response.mimetype == MANIFEST
    assert _digest(response.data) == amd64["digest"]
    manifest = response.get_json()
    base = json.loads(releases.get_bytes("releases/v1.0.0/amd64/manifest.json"))["installer_base"]
    assert manifest["config"]["digest"] == "sha256:" + base["config"]["sha256"]
    assert [layer["digest"] for layer in manifest["layers"]] == [
        "sha256:" + layer["sha256"] for layer in base["layers"]
    ]
    # The media type follows the bytes as shipped: gzip, then plain tar.
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar",
    ]
    for descriptor in (manifest["config"], *manifest["layers"]):
        blob = client.get(f"{BASE}/blobs/{descriptor['digest']}")
        assert blob.status_code == 200
        assert _digest(blob.data) == descriptor["digest"]
        assert len(blob.data) == descriptor["size"]
    assert (
        json.loads(client.get(f"{BASE}/blobs/{manifest['config']['digest']}").data)["architecture"]
        == "amd64"
    )


def test_same_releases_same_bytes(client: FlaskClient, releases: LocalStore) -> None:
    first = client.get(f"{BASE}/manifests/v1.0.0").data
    assert client.get(f"{BASE}/manifests/v1.0.0").data == first


def test_tags_are_the_versions_with_a_base(client: FlaskClient, releases: LocalStore) -> None:
    response = client.get(f"{BASE}/tags/list")
    assert response.get_json() == {"name": "siderolabs/installer-base", "tags": ["v1.0.0"]}


@pytest.mark.parametrize("tag", ["v1.1.0", "v9.9.9", "latest", "sha256-" + "ab" * 32 + ".sig"])
def test_unknown_version_is_manifest_unknown(
    client: FlaskClient, releases: LocalStore, tag: str
) -> None:
    response = client.get(f"{BASE}/manifests/{tag}")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_only_base_blobs_are_served(client: FlaskClient, releases: LocalStore) -> None:
    release = json.loads(releases.get_bytes("releases/v1.0.0/amd64/manifest.json"))
    vmlinuz = release["files"]["vmlinuz"]["sha256"]
    for digest in ("sha256:" + vmlinuz, "sha256:" + "ab" * 32):
        response = client.get(f"{BASE}/blobs/{digest}")
        assert response.status_code == 404
        assert response.get_json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    bad = client.get(f"{BASE}/blobs/md5:00")
    assert bad.status_code == 400
    assert bad.get_json()["errors"][0]["code"] == "DIGEST_INVALID"


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH", "DELETE"])
def test_writes_are_refused(client: FlaskClient, releases: LocalStore, method: str) -> None:
    response = client.open(f"{BASE}/manifests/v1.0.0", method=method)
    assert response.status_code == 405
    assert response.get_json()["errors"][0]["code"] == "UNSUPPORTED"
