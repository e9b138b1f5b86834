"""`/v2/…`: the read-only OCI registry's answers, headers and errors (fake release)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from schematics import parse_schematic
from tests.factory.served import Served, served
from workers.outputs.schematics_store import save_schematic
from workers.registry.cosign import ARTIFACT_TYPE
from workers.releases.stored import load_release
from workers.store import LocalStore, StoreUnavailable

SCHEMATIC = b"customization:\n  extraKernelArgs: [console=ttyS0]\n"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HEX = "ab" * 32


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """An app on a fake release with a real build worker, shared by the module."""
    with served(tmp_path_factory) as found:
        yield found


@pytest.fixture
def client(srv: Served) -> FlaskClient:
    return srv.client


@pytest.fixture
def store(srv: Served) -> LocalStore:
    return srv.store


@pytest.fixture
def sid(srv: Served) -> str:
    return srv.schematic_id


def _new_schematic(store: LocalStore, marker: str) -> str:
    """A schematic of its own: a repository no other test has published into."""
    body = f"customization:\n  extraKernelArgs: [factory.registry={marker}]\n".encode()
    return save_schematic(store, parse_schematic(body))


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _error(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    (error,) = response.get_json()["errors"]
    assert error["code"] == code
    assert error["message"]
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    found: dict[str, Any] = error
    return found


def _index(client: FlaskClient, sid: str, tag: str = "v1.0.0") -> TestResponse:
    return client.get(f"/v2/installer/{sid}/manifests/{tag}")


def test_ping(client: FlaskClient) -> None:
    for response in (client.get("/v2/"), client.head("/v2/")):
        assert response.status_code == 200
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert client.get("/v2/").get_json() == {}


def test_ping_without_the_slash_answers_too(client: FlaskClient) -> None:
    """Upstream routes `/v2` itself (Docker's and containerd's probe): 200, no redirect."""
    for response in (client.get("/v2"), client.head("/v2")):
        assert response.status_code == 200
        assert "Location" not in response.headers
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_manifest_by_tag_is_an_oci_index(client: FlaskClient, sid: str) -> None:
    response = _index(client, sid)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == INDEX
    assert response.headers["Docker-Content-Digest"] == _digest(response.data)
    assert response.headers["Content-Length"] == str(len(response.data))
    assert response.headers["ETag"] == f'"{_digest(response.data)}"'
    index = json.loads(response.data)
    assert index["mediaType"] == INDEX
    assert [m["platform"] for m in index["manifests"]] == [{"architecture": "amd64", "os": "linux"}]


@pytest.mark.parametrize("image", ["metal-installer", "installer"])
@pytest.mark.parametrize("tag", ["1.0.0", "latest"])
def test_tag_aliases_and_image_names_share_the_index(
    client: FlaskClient, sid: str, image: str, tag: str
) -> None:
    expected = _index(client, sid).headers["Docker-Content-Digest"]
    response = client.get(f"/v2/{image}/{sid}/manifests/{tag}")
    assert response.headers["Docker-Content-Digest"] == expected


def test_head_has_the_headers_and_no_body(client: FlaskClient, sid: str) -> None:
    full = _index(client, sid)
    head = client.head(f"/v2/installer/{sid}/manifests/v1.0.0")
    assert head.status_code == 200
    assert head.data == b""
    for name in ("Content-Type", "Content-Length", "Docker-Content-Digest", "ETag"):
        assert head.headers[name] == full.headers[name]


def test_if_none_match_gives_304(client: FlaskClient, sid: str) -> None:
    etag = _index(client, sid).headers["ETag"]
    response = client.get(f"/v2/installer/{sid}/manifests/v1.0.0", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""


def test_manifests_and_blobs_by_digest(client: FlaskClient, sid: str) -> None:
    index = _index(client, sid)
    by_digest = client.get(
        f"/v2/installer/{sid}/manifests/{index.headers['Docker-Content-Digest']}"
    )
    assert by_digest.data == index.data
    entry = json.loads(index.data)["manifests"][0]
    image = client.get(f"/v2/installer/{sid}/manifests/{entry['digest']}")
    assert image.headers["Content-Type"] == MANIFEST
    assert _digest(image.data) == entry["digest"]
    assert len(image.data) == entry["size"]
    for blob in (image.get_json()["config"], *image.get_json()["layers"]):
        response = client.get(f"/v2/installer/{sid}/blobs/{blob['digest']}")
        assert response.status_code == 200
        assert _digest(response.data) == blob["digest"] == response.headers["Docker-Content-Digest"]
        assert response.headers["Content-Length"] == str(blob["size"])
        head = client.head(f"/v2/installer/{sid}/blobs/{blob['digest']}")
        assert head.data == b""
        assert head.headers["Content-Length"] == str(blob["size"])


def test_blobs_outside_the_repository_are_not_served(
    client: FlaskClient, sid: str, store: LocalStore
) -> None:
    """The store holds release files under the same blob namespace; a repository serves only
    what it recorded."""
    _index(client, sid)
    kernel = load_release(store, "v1.0.0", "amd64").files["vmlinuz"].sha256
    _error(client.get(f"/v2/installer/{sid}/blobs/sha256:{kernel}"), 404, "BLOB_UNKNOWN")
    _error(client.get(f"/v2/installer/{sid}/manifests/sha256:{kernel}"), 404, "MANIFEST_UNKNOWN")


def test_other_repository_does_not_serve_unpublished_content(client: FlaskClient, sid: str) -> None:
    digest = _index(client, sid).headers["Docker-Content-Digest"]
    response = client.get(f"/v2/aws-installer/{sid}/manifests/{digest}")
    _error(response, 404, "MANIFEST_UNKNOWN")


def test_signature_tag_and_referrers(client: FlaskClient, sid: str) -> None:
    digest = _index(client, sid).headers["Docker-Content-Digest"]
    tag = "sha256-" + digest.removeprefix("sha256:") + ".sig"
    signature = client.get(f"/v2/installer/{sid}/manifests/{tag}")
    assert signature.status_code == 200
    assert signature.headers["Content-Type"] == MANIFEST
    assert signature.get_json()["subject"]["digest"] == digest

    referrers = client.get(f"/v2/installer/{sid}/referrers/{digest}")
    assert referrers.status_code == 200
    assert referrers.headers["Content-Type"] == INDEX
    (referrer,) = referrers.get_json()["manifests"]
    assert referrer["digest"] == signature.headers["Docker-Content-Digest"]
    assert referrer["artifactType"] == ARTIFACT_TYPE

    filtered = client.get(
        f"/v2/installer/{sid}/referrers/{digest}", query_string={"artifactType": ARTIFACT_TYPE}
    )
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert filtered.get_json()["manifests"] == [referrer]
    other = client.get(
        f"/v2/installer/{sid}/referrers/{digest}", query_string={"artifactType": "x/y"}
    )
    assert other.get_json()["manifests"] == []


def test_every_platform_manifest_is_signed_as_well_as_the_index(
    client: FlaskClient, sid: str
) -> None:
    """containers/image (podman, CRI-O) looks up the signature of the platform manifest it
    pulls, cosign verify that of the index: both are there, as `cosign sign --recursive`."""
    index = _index(client, sid)
    entries = index.get_json()["manifests"]
    assert entries
    identity = f"localhost/installer/{sid}"
    for digest in (index.headers["Docker-Content-Digest"], *(e["digest"] for e in entries)):
        tag = "sha256-" + digest.removeprefix("sha256:") + ".sig"
        signature = client.get(f"/v2/installer/{sid}/manifests/{tag}")
        assert signature.status_code == 200, tag
        assert signature.get_json()["subject"]["digest"] == digest
        (layer,) = signature.get_json()["layers"]
        payload = json.loads(client.get(f"/v2/installer/{sid}/blobs/{layer['digest']}").data)
        assert payload["critical"]["image"]["docker-manifest-digest"] == digest
        assert payload["critical"]["identity"]["docker-reference"] == identity
        referrers = client.get(f"/v2/installer/{sid}/referrers/{digest}").get_json()["manifests"]
        # Platform manifests also have their SBOM and provenance as referrers.
        assert signature.headers["Docker-Content-Digest"] in [r["digest"] for r in referrers]


def test_referrers_of_an_unknown_digest_is_an_empty_index(client: FlaskClient, sid: str) -> None:
    response = client.get(f"/v2/installer/{sid}/referrers/sha256:{HEX}")
    assert response.status_code == 200
    assert response.get_json() == {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}


def test_tags_list(client: FlaskClient, store: LocalStore) -> None:
    sid = _new_schematic(store, "tags")
    before = client.get(f"/v2/installer/{sid}/tags/list").get_json()
    assert before == {"name": f"installer/{sid}", "tags": ["latest", "v1.0.0"]}
    index = _index(client, sid)
    platforms = [entry["digest"] for entry in index.get_json()["manifests"]]
    sigs = sorted(
        "sha256-" + digest.removeprefix("sha256:") + ".sig"
        for digest in (index.headers["Docker-Content-Digest"], *platforms)
    )
    # The platform manifests' attestations (SBOM and provenance), cosign's `.att` tag.
    atts = ["sha256-" + digest.removeprefix("sha256:") + ".att" for digest in platforms]

    after = client.get(f"/v2/installer/{sid}/tags/list").get_json()["tags"]
    assert after == ["latest", *sorted(sigs + atts), "v1.0.0"]
    page = client.get(f"/v2/installer/{sid}/tags/list", query_string={"n": "1", "last": "latest"})
    assert page.get_json()["tags"] == sorted(sigs + atts)[:1]
    for bad in ("-1", "x", "\u00b2"):
        response = client.get(f"/v2/installer/{sid}/tags/list", query_string={"n": bad})
        _error(response, 400, "PAGINATION_NUMBER_INVALID")


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v2/installer/{sid}/manifests/v9.9.9", 404, "MANIFEST_UNKNOWN"),
        ("/v2/installer/{sid}/manifests/nightly", 404, "MANIFEST_UNKNOWN"),
        ("/v2/installer/{sid}/manifests/sha256-{hex}.sig", 404, "MANIFEST_UNKNOWN"),
        ("/v2/installer/{sid}/manifests/sha256:{hex}", 404, "MANIFEST_UNKNOWN"),
        ("/v2/installer/{sid}/manifests/sha256:xyz", 400, "DIGEST_INVALID"),
        ("/v2/installer/{sid}/manifests/-bad", 400, "TAG_INVALID"),
        ("/v2/installer/{sid}/manifests/" + "a" * 200, 400, "TAG_INVALID"),
        ("/v2/installer/{sid}/blobs/sha256:{hex}", 404, "BLOB_UNKNOWN"),
        ("/v2/installer/{sid}/blobs/sha512:{hex}", 400, "DIGEST_INVALID"),
        ("/v2/installer/{sid}/blobs/..", 400, "DIGEST_INVALID"),
        ("/v2/installer/{sid}/referrers/latest", 400, "DIGEST_INVALID"),
        ("/v2/installer/{zero}/manifests/v1.0.0", 404, "NAME_UNKNOWN"),
        ("/v2/installer/{zero}/blobs/sha256:{hex}", 404, "NAME_UNKNOWN"),
        ("/v2/installer/{zero}/tags/list", 404, "NAME_UNKNOWN"),
        ("/v2/installer/abc/manifests/v1.0.0", 404, "NAME_UNKNOWN"),
        ("/v2/talos/{sid}/manifests/v1.0.0", 404, "NAME_UNKNOWN"),
        ("/v2/moon-installer/{sid}/manifests/v1.0.0", 404, "NAME_UNKNOWN"),
        ("/v2/Installer/{sid}/manifests/v1.0.0", 400, "NAME_INVALID"),
        ("/v2/installer/../manifests/v1.0.0", 400, "NAME_INVALID"),
        ("/v2/installer/%2e%2e/manifests/v1.0.0", 400, "NAME_INVALID"),
        ("/v2/" + "a" * 300 + "/{sid}/manifests/v1.0.0", 400, "NAME_INVALID"),
        ("/v2/installer/{sid}/manifests", 404, "NAME_UNKNOWN"),
        ("/v2/siderolabs/installer/manifests/v1.0.0", 404, "NAME_UNKNOWN"),
        ("/v2/a/b/c/manifests/v1.0.0", 404, "NAME_UNKNOWN"),
        ("/v2/_catalog", 404, "NAME_UNKNOWN"),
    ],
)
def test_errors_are_oci_json(
    client: FlaskClient, sid: str, path: str, status: int, code: str
) -> None:
    url = path.format(sid=sid, hex=HEX, zero="0" * 64)
    _error(client.get(url), status, code)
    head = client.head(url)
    assert head.status_code == status
    assert head.data == b""


def test_unbuildable_schematic_is_a_400(client: FlaskClient, store: LocalStore, sid: str) -> None:
    schematic = parse_schematic(
        b"customization:\n  systemExtensions:\n    officialExtensions: [factory/absent]\n"
    )
    other = save_schematic(store, schematic)
    error = _error(_index(client, other), 400, "UNKNOWN")
    assert client.get(f"/v2/installer/{other}/tags/list").get_json()["tags"] == [
        "latest",
        "v1.0.0",
    ]
    assert "factory/absent" in error["message"]


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "path",
    [
        "/v2/",
        "/v2/installer/{sid}/manifests/v1.0.0",
        "/v2/installer/{sid}/blobs/uploads/",
        "/v2/installer/{sid}/blobs/sha256:{hex}",
    ],
)
def test_writes_are_refused(client: FlaskClient, sid: str, method: str, path: str) -> None:
    response = client.open(path.format(sid=sid, hex=HEX), method=method, data=b"x")
    _error(response, 405, "UNSUPPORTED")
    assert response.headers["Allow"] == "GET, HEAD"


def test_store_outage_is_503_with_retry_after(
    client: FlaskClient, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = _new_schematic(store, "outage")

    def unavailable(key: str) -> bytes:
        raise StoreUnavailable("store down")

    monkeypatch.setattr(store, "get_bytes", unavailable)
    response = _index(client, sid)
    _error(response, 503, "UNAVAILABLE")
    assert response.headers["Retry-After"]
