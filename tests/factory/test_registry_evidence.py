"""An installer's SBOM and signed provenance in `/v2`: OCI referrers of its platform manifest
(referrers API, artifact types as ORAS and cosign use them), the provenance also under cosign's
`sha256-<hex>.att` tag; the DSSE signature verified by openssl with the served key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.factory.served import Served, served
from tests.workers.evidence.dsse import openssl_verified_statement
from workers.evidence.sbom import check_sbom

SBOM = "application/spdx+json"
DSSE = "application/vnd.dsse.envelope.v1+json"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory) as found:
        yield found


def _platform_digest(srv: Served) -> str:
    index = srv.client.get(f"/v2/installer/{srv.schematic_id}/manifests/v1.0.0")
    assert index.status_code == 200
    (platform,) = index.get_json()["manifests"]
    digest: str = platform["digest"]
    return digest


def _only_layer(client: FlaskClient, sid: str, manifest: dict[str, Any]) -> bytes:
    (layer,) = manifest["layers"]
    response = client.get(f"/v2/installer/{sid}/blobs/{layer['digest']}")
    assert response.status_code == 200
    data: bytes = response.data
    return data


def _referrer(srv: Served, digest: str, artifact_type: str) -> dict[str, Any]:
    sid = srv.schematic_id
    listed = srv.client.get(
        f"/v2/installer/{sid}/referrers/{digest}", query_string={"artifactType": artifact_type}
    ).get_json()["manifests"]
    (referrer,) = listed
    manifest = srv.client.get(f"/v2/installer/{sid}/manifests/{referrer['digest']}").get_json()
    assert manifest["artifactType"] == artifact_type
    assert manifest["subject"]["digest"] == digest
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    found: dict[str, Any] = manifest
    return found


def test_sbom_is_a_referrer_of_the_platform_manifest(srv: Served) -> None:
    digest = _platform_digest(srv)
    manifest = _referrer(srv, digest, SBOM)
    assert manifest["layers"][0]["mediaType"] == SBOM
    sbom = _only_layer(srv.client, srv.schematic_id, manifest)
    document = check_sbom(sbom)
    assert any(p.name == "schematic" for p in document.packages)
    # The same document as the installer asset's `.spdx.json`.
    served_sbom = srv.client.get(srv.url("installer-amd64.tar.spdx.json"))
    assert served_sbom.data == sbom


def test_provenance_is_a_signed_referrer_and_under_the_att_tag(srv: Served, tmp_path: Path) -> None:
    sid = srv.schematic_id
    digest = _platform_digest(srv)
    manifest = _referrer(srv, digest, DSSE)
    layer = manifest["layers"][0]
    assert layer["mediaType"] == DSSE
    assert layer["annotations"]["predicateType"] == "https://slsa.dev/provenance/v1"
    envelope = _only_layer(srv.client, sid, manifest)
    statement = openssl_verified_statement(
        envelope, srv.client.get("/oci/cosign/signing-key.pub").data, tmp_path
    )
    assert statement["subject"][0]["digest"]["sha256"] == digest.removeprefix("sha256:")
    assert statement["subject"][1]["name"] == "installer-amd64.tar"

    tag = "sha256-" + digest.removeprefix("sha256:") + ".att"
    tagged = srv.client.get(f"/v2/installer/{sid}/manifests/{tag}")
    assert tagged.status_code == 200
    assert tagged.get_json() == manifest
