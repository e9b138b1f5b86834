from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from workers.assembly import run


def test_healthz_and_readyz(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_common_headers_and_request_id_echo(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["Server"].startswith("Image Factory ")
    assert response.headers["X-Request-ID"] == "abc-123"
    fresh = client.get("/healthz")
    assert len(fresh.headers["X-Request-ID"]) == 36


def test_hostile_request_id_is_replaced(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert response.headers["X-Request-ID"] != "x" * 500


def test_unknown_route_is_plain_404(client: FlaskClient) -> None:
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.data == b"404 page not found\n"
    assert response.mimetype == "text/plain"


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert response.data.endswith(b"\n")


def test_readyz_says_when_builds_cannot_be_sandboxed(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/readyz").data == b"ready\n"
    monkeypatch.setattr(run, "sandbox_problem", lambda: "bubblewrap (bwrap) is not installed")
    response = client.get("/readyz")
    assert response.status_code == 200  # what is built or bundled is still served
    text = response.data.decode()
    assert text.startswith("ready\nWARNING: build tools cannot be sandboxed: bubblewrap")
    assert "IMAGE_FACTORY_ALLOW_UNSANDBOXED=true" in text
