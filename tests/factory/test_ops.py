from __future__ import annotations

import dataclasses
import time

import pytest
from flask.testing import FlaskClient

from factory import create_app
from tests.services import RedisServer, free_ports
from workers.assembly import run
from workers.backends import choose_backend
from workers.dispatch import heartbeat
from workers.settings import Settings
from workers.store import LocalStore


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


def _scaled_client(settings: Settings, store: LocalStore, broker_url: str) -> FlaskClient:
    scaled = dataclasses.replace(settings, broker_url=broker_url)
    return create_app(scaled, store=store).test_client()


@pytest.mark.integration
def test_readyz_needs_a_live_worker_in_the_scaled_mode(
    settings: Settings, store: LocalStore, redis_server: RedisServer
) -> None:
    client = _scaled_client(settings, store, redis_server.url)
    alone = client.get("/readyz")
    assert alone.status_code == 503
    assert alone.data.startswith(b"not ready: no build worker is alive")
    with heartbeat.beating(
        choose_backend(dataclasses.replace(settings, broker_url=redis_server.url)), "w@h"
    ):
        # The first beat is written as the thread starts; give it that moment.
        deadline = time.monotonic() + 5
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert client.get("/readyz").status_code == 503  # a stopped worker's key goes at once


def test_readyz_with_an_unreachable_broker_names_no_address(
    settings: Settings, store: LocalStore
) -> None:
    closed = free_ports(1)[0]
    response = _scaled_client(settings, store, f"redis://127.0.0.1:{closed}/0").get("/readyz")
    assert response.status_code == 503
    assert response.data == b"not ready: the build queue is unavailable\n"
    assert response.headers["Retry-After"].isdigit()
