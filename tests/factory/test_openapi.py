"""`GET /openapi.json` is a valid OpenAPI 3.1 document describing exactly the app's routes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from factory import openapi
from factory.openapi import SpecError

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


def _openapi_path(rule: str) -> str:
    """Flask `/image/<id>/<path:rest>` → OpenAPI `/image/{id}/{rest}`."""
    return _VARIABLE.sub(r"{\1}", rule)


def _app_routes(app: Flask) -> dict[tuple[str, str], str]:
    """(OpenAPI path, method) → endpoint, for every route but static files. HEAD and OPTIONS
    are added by Flask to every GET route, so they need no description of their own."""
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            routes[(_openapi_path(rule.rule), method.lower())] = rule.endpoint
    return routes


def _described(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.1.")
    assert document["servers"] == [{"url": "http://localhost"}]  # no external URL: the request's
    validate(document)


def test_every_route_is_described(app: Flask, client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    described = _described(document)

    missing = [
        f"{method.upper()} {path} (endpoint {endpoint})"
        for (path, method), endpoint in sorted(_app_routes(app).items())
        if (path, method) not in described
    ]

    assert not missing, (
        "routes without an OpenAPI description; describe them in "
        f"factory/spec/<blueprint>.yaml: {', '.join(missing)}"
    )


def test_every_description_is_a_route(app: Flask, client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    routes = set(_app_routes(app))
    allowed = {
        (_openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
    }

    stale = [
        f"{method.upper()} {path}"
        for path, method in sorted(_described(document))
        if (path, method) not in routes and (path, method) not in allowed
    ]

    assert not stale, f"described in factory/spec/*.yaml but not served: {', '.join(stale)}"


def test_a_path_described_twice_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "document.yaml").write_text("openapi: 3.1.0\ninfo: {title: t, version: '1'}\n")
    part = "paths:\n  /x:\n    get:\n      responses: {'200': {description: ok}}\n"
    (tmp_path / "a.yaml").write_text(part)
    (tmp_path / "b.yaml").write_text(part)
    monkeypatch.setattr(openapi, "SPEC_DIR", tmp_path)
    openapi.load_document.cache_clear()
    try:
        with pytest.raises(SpecError, match=r"b\.yaml: path /x is described twice"):
            openapi.load_document()
    finally:
        openapi.load_document.cache_clear()
