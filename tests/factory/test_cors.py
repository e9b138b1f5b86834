"""CORS as upstream's integration test checks it (`checkCors`): a preflight for GET with
`cache-control`, then GET and HEAD of a real asset exposing the three download headers;
and the allowed-origins setting (exact names, one-wildcard patterns, everything else
refused)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from factory import create_app
from factory.cors import Origins
from tests.factory.served import Served, served
from workers.settings import Settings
from workers.store import LocalStore

ORIGIN = "https://foo.com"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "cache-control",
}
CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Expose-Headers",
)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory) as found:
        yield found


def test_preflight_answers_as_upstream(srv: Served) -> None:
    response = srv.client.options(srv.url("metal-amd64.raw.xz"), headers=PREFLIGHT)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "GET"
    assert response.headers["Access-Control-Allow-Headers"] == "cache-control"
    assert set(response.vary) >= {"Origin", "Access-Control-Request-Method"}
    assert response.data == b""


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_downloads_expose_the_download_headers(srv: Served, method: str) -> None:
    response = srv.client.open(srv.url("kernel-amd64"), method=method, headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    exposed = [h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")]
    assert set(exposed) == {"Content-Disposition", "Content-Length", "Content-Type"}
    assert "Origin" in response.vary


def test_same_origin_requests_get_no_cors_headers(srv: Served) -> None:
    response = srv.client.get("/versions")
    assert not any(name in response.headers for name in CORS_HEADERS)
    assert "Origin" in response.vary


def test_writes_are_not_offered_cross_origin(srv: Served) -> None:
    response = srv.client.post("/schematics", data=b"{}", headers={"Origin": ORIGIN})
    assert response.status_code == 201
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = srv.client.options(
        "/schematics", headers={**PREFLIGHT, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert not any(name in preflight.headers for name in CORS_HEADERS)


def test_other_request_headers_are_refused(srv: Served) -> None:
    headers = {**PREFLIGHT, "Access-Control-Request-Headers": "authorization"}
    response = srv.client.options("/versions", headers=headers)
    assert response.status_code == 204
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.fixture
def picky(settings: Settings, store: LocalStore) -> FlaskClient:
    allowed = "https://factory.example, https://*.example.org"
    app = create_app(Settings(data_dir=settings.data_dir, allowed_origins=allowed), store=store)
    return app.test_client()


@pytest.mark.parametrize("origin", ["https://factory.example", "https://a.b.example.org"])
def test_configured_origins_are_named_back(picky: FlaskClient, origin: str) -> None:
    preflight = picky.options("/versions", headers={**PREFLIGHT, "Origin": origin})
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    actual = picky.get("/versions", headers={"Origin": origin})
    assert actual.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize("origin", [ORIGIN, "https://example.org", "http://factory.example"])
def test_other_origins_are_refused(picky: FlaskClient, origin: str) -> None:
    preflight = picky.options("/versions", headers={**PREFLIGHT, "Origin": origin})
    assert preflight.status_code == 204
    assert not any(name in preflight.headers for name in CORS_HEADERS)
    actual = picky.get("/versions", headers={"Origin": origin})
    assert actual.status_code == 200
    assert not any(name in actual.headers for name in CORS_HEADERS)


def test_origin_patterns() -> None:
    assert Origins.parse("").allows("https://anything")
    assert Origins.parse("https://a.example, *").allows("https://b.example")
    pattern = Origins.parse("https://*.example.org")
    assert pattern.allows("https://X.Example.org")
    assert not pattern.allows("https://example.org")
    assert not pattern.allows("https://x.example.org.evil")


def test_preflights_need_no_token_in_a_private_factory(
    settings: Settings, store: LocalStore
) -> None:
    """A browser sends no credentials with a preflight: it is answered before the token check
    (upstream's CORS handler wraps its router), the actual request still needs one."""
    private = create_app(Settings(data_dir=settings.data_dir, auth="all"), store=store)
    client = private.test_client()
    preflight = client.options("/versions", headers=PREFLIGHT)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    actual = client.get("/versions", headers={"Origin": ORIGIN})
    assert actual.status_code == 401
    assert actual.headers["Access-Control-Allow-Origin"] == "*"
