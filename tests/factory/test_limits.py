"""Per-client upload limits and the free-space floor, through the app (Flask test client)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from flask.testing import FlaskClient

from factory import create_app
from schematics import parse_schematic
from tests.factory.stacks import client_token
from tests.workers.releases.fakes import save_fake_release
from workers.dispatch.celery_app import celery_dirs
from workers.outputs.schematics_store import save_schematic
from workers.settings import Settings
from workers.store import LocalStore
from workers.tenancy.tokens import ROLE_UPLOAD, create_token


def _client(settings: Settings, store: LocalStore) -> FlaskClient:
    return create_app(settings, store=store).test_client()


def _as(store: LocalStore, client: str) -> dict[str, str]:
    """The Authorization header of the uploader named `client` (an `upload` token)."""
    token = client_token(store.root, client, lambda: create_token(store, client, ROLE_UPLOAD)[1])
    return {"Authorization": f"Bearer {token}"}


def _upload(client: FlaskClient, store: LocalStore, who: str, body: bytes = b"x") -> int:
    return client.post(
        f"/extensions?namespace={who}", data=body, headers=_as(store, who)
    ).status_code


def test_uploads_per_hour_are_limited_per_client(settings: Settings, store: LocalStore) -> None:
    client = _client(replace(settings, max_client_uploads=2), store)
    assert [_upload(client, store, "first") for _ in range(2)] == [400, 400]  # refused count
    response = client.post("/extensions?namespace=first", data=b"x", headers=_as(store, "first"))
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert response.mimetype == "text/plain"
    assert b"2 uploads this hour" in response.data
    assert _upload(client, store, "second") == 400  # another client is not held back


def test_upload_bytes_per_hour_are_limited_per_client(
    settings: Settings, store: LocalStore
) -> None:
    client = _client(replace(settings, max_client_upload_bytes=1000), store)
    assert _upload(client, store, "bytes", b"x" * 600) == 400
    response = client.post(
        "/extensions?namespace=bytes", data=b"y" * 600, headers=_as(store, "bytes")
    )
    assert response.status_code == 429
    assert b"1000 bytes" in response.data
    assert _upload(client, store, "bytes", b"z" * 300) == 400  # still within the hour's bytes


def _schematic(store: LocalStore, tmp_path: Path) -> str:
    save_fake_release(store, "v1.0.0", tmp_path / "release")
    return save_schematic(store, parse_schematic(b"customization:\n  extraKernelArgs: [f]\n"))


def test_too_little_free_space_refuses_builds_and_uploads(
    settings: Settings, store: LocalStore, tmp_path: Path
) -> None:
    sid = _schematic(store, tmp_path)
    full = replace(settings, min_free_bytes=1 << 62)
    client = _client(full, store)

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert b"nearly full" in ready.data
    assert ready.headers["Retry-After"]

    body = {"schematic": sid, "version": "v1.0.0", "path": "cmdline-metal-amd64"}
    refused = client.post("/builds", json=body)
    assert refused.status_code == 507
    assert int(refused.headers["Retry-After"]) > 0
    assert b"nearly full" in refused.data
    assert list(celery_dirs(full)["queue"].iterdir()) == []  # nothing was enqueued
    assert _upload(client, store, "full") == 507

    roomy = _client(settings, store)
    assert roomy.get("/readyz").status_code == 200
    assert roomy.post("/builds", json=body).status_code == 202
    assert len(list(celery_dirs(settings)["queue"].iterdir())) == 1
