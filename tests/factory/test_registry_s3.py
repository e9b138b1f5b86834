"""Registry blobs in an S3 store: 307 to a presigned URL (GET), or streamed when redirects
are off; HEAD always answers itself. The tag is published beforehand (in-process build):
serving blobs needs no worker."""

from __future__ import annotations

import hashlib
import urllib.request
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from factory import create_app
from schematics import parse_schematic
from tests.services import S3Server
from tests.workers.releases.fakes import save_fake_release
from workers.backends import choose_backend
from workers.dispatch.coordination import make_coordination
from workers.keys.deployment_keys import record_keys
from workers.keys.secureboot_key import load_or_create_secureboot_key
from workers.keys.signing import load_or_create_signing_key
from workers.outputs.schematics_store import save_schematic
from workers.registry.names import parse_repository
from workers.registry.publish import ensure_published
from workers.store import make_store

pytestmark = pytest.mark.integration

SCHEMATIC = b"customization:\n  extraKernelArgs: [console=ttyS0]\n"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_s3_blobs_redirect_to_presigned_urls(s3_server: S3Server, tmp_path: Path) -> None:
    settings = s3_server.settings(tmp_path / "data", f"registry-{uuid.uuid4().hex[:12]}")
    store = make_store(choose_backend(settings))
    save_fake_release(store, "v1.0.0", tmp_path / "releases")
    schematic = parse_schematic(SCHEMATIC)
    sid = save_schematic(store, schematic)
    # What `prepare` does for the scaled web side: record the keys' public halves.
    signing = load_or_create_signing_key(settings)
    record_keys(store, signing, load_or_create_secureboot_key(settings))
    ensure_published(
        store,
        settings,
        make_coordination(choose_backend(settings)),
        parse_repository("installer", sid),
        schematic,
        "v1.0.0",
    )
    redirecting = create_app(settings, store=store).test_client()
    streaming = create_app(replace(settings, s3_redirect=False), store=store).test_client()
    index = redirecting.get(f"/v2/installer/{sid}/manifests/v1.0.0").get_json()
    image = redirecting.get(f"/v2/installer/{sid}/manifests/{index['manifests'][0]['digest']}")
    layer = image.get_json()["layers"][0]
    url = f"/v2/installer/{sid}/blobs/{layer['digest']}"

    redirect = redirecting.get(url)
    assert redirect.status_code == 307
    assert redirect.headers["Docker-Content-Digest"] == layer["digest"]
    with urllib.request.urlopen(redirect.headers["Location"], timeout=30) as presigned:
        assert _digest(presigned.read()) == layer["digest"]

    streamed = streaming.get(url)
    assert streamed.status_code == 200
    assert _digest(streamed.data) == layer["digest"]

    for client in (redirecting, streaming):
        head = client.head(url)
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(layer["size"])
