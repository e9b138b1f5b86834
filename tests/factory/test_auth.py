"""Who may do what over HTTP (Flask client): the private factory, bad settings, the web
form's origin note. The real-server tests are in test_tenancy.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory import create_app
from tests.extensions.builders import hello_members, tar_bytes
from tests.workers.releases.fakes import save_fake_release
from workers.catalog import install_bundled_extensions
from workers.settings import Settings
from workers.store import LocalStore
from workers.tenancy.tokens import create_token


def test_a_private_factory_asks_every_request_for_a_token(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", auth="all")
    store = LocalStore(settings.data_dir / "store")
    client = create_app(settings, store=store).test_client()
    _, reader = create_token(store, "reader", "read")

    for path in ("/versions", "/", "/schematics/" + "0" * 64, "/v2/"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == (
            'Bearer realm="image-factory", error="invalid_request", scope="read"'
        )
    assert "GET /versions (private factory) needs a token with the read role" in (
        client.get("/versions").text
    )
    assert client.get("/v2/").get_json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    headers = {"Authorization": f"Bearer {reader}"}
    assert client.get("/versions", headers=headers).status_code == 200
    upload = client.post("/extensions?namespace=x", data=b"", headers=headers)
    assert upload.status_code == 403
    assert 'needs the upload role; token "reader" has the read role' in upload.text


def test_an_unknown_auth_mode_stops_the_service(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="IMAGE_FACTORY_AUTH must be one of writes, all"):
        create_app(Settings(data_dir=tmp_path / "data", auth="open"))


def test_reads_schematics_and_the_catalog_stay_open_by_default(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    store = LocalStore(settings.data_dir / "store")
    save_fake_release(store, "v1.0.0", tmp_path / "release")
    client = create_app(settings, store=store).test_client()
    assert client.get("/versions").status_code == 200
    assert client.post("/schematics", data=b"customization: {}\n").status_code == 201
    assert client.get("/version/v1.0.0/extensions/official").status_code == 200
    assert client.get("/audit").status_code == 401
    bad = client.get("/audit", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert bad.status_code == 401
    assert "must be 'Bearer <token>'" in bad.text


def test_the_web_form_says_where_each_extension_came_from(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    store = LocalStore(settings.data_dir / "store")
    release = save_fake_release(store, "v1.0.0", tmp_path / "release")
    install_bundled_extensions(settings, store, release, lambda message: None)
    client = create_app(settings, store=store).test_client()
    _, token = create_token(store, "alice", "upload")
    uploaded = client.post(
        "/extensions?namespace=alice",
        data=tar_bytes(hello_members()),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert uploaded.status_code == 201, uploaded.text
    html = client.get("/?target=metal&version=v1.0.0&arch=amd64").text
    assert "(bundled)" in html
    assert f"(uploaded by alice, {uploaded.get_json()['uploaded_at'][:10]})" in html
