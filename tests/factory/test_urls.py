"""Absolute links follow the configured external URL, else the request (`factory.urls`);
`X-Forwarded-*` count only behind configured proxies; `serve` warns about a port mismatch."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from factory import create_app
from factory.commands.serve import port_mismatch
from tests.workers.releases.fakes import save_fake_release
from workers.catalog import install_bundled_extensions
from workers.settings import Settings
from workers.store import LocalStore

FINAL = "/?target=metal&version=v1.0.0&arch=amd64&extensions=-&modules=-&cmdline-set=true"
BASE = "http://127.0.0.1:9000"
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "factory.example"}


def _quiet(message: str) -> None:
    """Progress sink that shows nothing."""


def _client(tmp_path: Path, **overrides: object) -> FlaskClient:
    settings = Settings(data_dir=tmp_path / "data", **overrides)  # type: ignore[arg-type]
    store = LocalStore(settings.data_dir / "store")
    release = save_fake_release(store, "v1.0.0", tmp_path)
    install_bundled_extensions(settings, store, release, _quiet)
    return create_app(settings, store=store).test_client()


def _links(client: FlaskClient, headers: dict[str, str] | None = None) -> dict[str, str]:
    """The final page's links (and the PXE script's), reached as http://127.0.0.1:9000."""
    html = client.get(FINAL, base_url=BASE, headers=headers or {}).get_data(as_text=True)
    sid = re.search(r'id="schematic-id">([0-9a-f]{64})<', html)
    assert sid is not None, html
    kernel = re.search(r'href="([^"]+/kernel-amd64)"', html)
    pxe = re.search(r'<code id="pxe-url">([^<]+)</code>', html)
    installer = re.search(r'<code id="installer-ref">([^<]+)</code>', html)
    assert kernel is not None, html
    assert pxe is not None, html
    assert installer is not None, html
    script = client.get(urlsplit(pxe.group(1)).path, base_url=BASE, headers=headers or {})
    return {
        "id": sid.group(1),
        "kernel": kernel.group(1),
        "pxe": pxe.group(1),
        "installer": installer.group(1),
        "script": script.get_data(as_text=True),
    }


def test_without_an_external_url_links_follow_the_request(tmp_path: Path) -> None:
    client = _client(tmp_path)

    links = _links(client)

    base = f"http://127.0.0.1:9000/image/{links['id']}/v1.0.0"
    assert links["kernel"] == f"{base}/kernel-amd64"
    assert links["pxe"] == f"http://127.0.0.1:9000/pxe/{links['id']}/v1.0.0/metal-amd64"
    assert f"kernel {base}/kernel-amd64 " in links["script"]
    assert links["installer"] == f"127.0.0.1:9000/metal-installer/{links['id']}:v1.0.0"
    catalog = client.get("/version/v1.0.0/extensions/official", base_url=BASE).get_json()
    assert catalog[0]["ref"].startswith("127.0.0.1:9000/factory/")
    servers = client.get("/openapi.json", base_url=BASE).get_json()["servers"]
    assert servers == [{"url": "http://127.0.0.1:9000"}]


def test_a_configured_external_url_wins_over_the_request(tmp_path: Path) -> None:
    client = _client(tmp_path, external_url="https://factory.example/")

    links = _links(client)

    assert links["kernel"].startswith("https://factory.example/image/")
    assert links["installer"].startswith("factory.example/metal-installer/")
    catalog = client.get("/version/v1.0.0/extensions/official", base_url=BASE).get_json()
    assert catalog[0]["ref"].startswith("factory.example/factory/")


def test_forwarded_headers_are_ignored_unless_a_proxy_is_trusted(tmp_path: Path) -> None:
    untrusting = _client(tmp_path / "a")
    assert _links(untrusting, FORWARDED)["kernel"].startswith("http://127.0.0.1:9000/image/")

    trusting = _client(tmp_path / "b", trusted_proxies=1)
    assert _links(trusting, FORWARDED)["kernel"].startswith("https://factory.example/image/")


@pytest.mark.parametrize(
    ("external_url", "port", "warns"),
    [
        ("", 9000, False),
        ("http://127.0.0.1:9000", 9000, False),
        ("http://factory.example", 80, False),
        ("https://factory.example", 443, False),
        ("http://127.0.0.1:8080", 9000, True),
        ("https://factory.example", 8080, True),
    ],
)
def test_serve_warns_when_the_external_url_names_another_port(
    external_url: str, port: int, warns: bool
) -> None:
    warning = port_mismatch(external_url, port)

    assert bool(warning) == warns
    if warns:
        assert external_url in warning
        assert f"port {port}" in warning
