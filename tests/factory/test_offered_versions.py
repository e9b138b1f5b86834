"""Broken and minimum versions as upstream's `build.brokenTalosVersions` and
`build.minTalosVersion` (its `TestBrokenVersions`): left out of `/versions`, listed by
`?broken=true`, and 404 `version X is not available` on every route naming them."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from factory import create_app
from schematics import parse_schematic
from tests.workers.releases.fakes import save_fake_release
from workers.outputs.schematics_store import save_schematic
from workers.releases.availability import VersionPolicy
from workers.settings import Settings
from workers.store import LocalStore

STORED = ("v1.0.0", "v1.1.0", "v1.2.0")


@pytest.fixture
def stocked(store: LocalStore, tmp_path: Path) -> str:
    for version in STORED:
        save_fake_release(store, version, tmp_path / "releases")
    return save_schematic(store, parse_schematic(b"{}"))


def _client(settings: Settings, store: LocalStore, **options: str) -> FlaskClient:
    configured = Settings(data_dir=settings.data_dir, **options)  # type: ignore[arg-type]
    return create_app(configured, store=store).test_client()


def test_broken_versions_are_hidden_and_listed_apart(
    settings: Settings, store: LocalStore, stocked: str
) -> None:
    client = _client(settings, store, broken_versions="1.1.0, v9.9.9")
    for path in ("/versions", "/versions?broken=true"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.mimetype == "application/json"
    assert client.get("/versions").get_json() == ["v1.0.0", "v1.2.0"]
    assert client.get("/versions?broken=true").get_json() == ["v1.1.0", "v9.9.9"]


def test_a_minimum_version_hides_older_releases(
    settings: Settings, store: LocalStore, stocked: str
) -> None:
    client = _client(settings, store, min_version="v1.1.0")
    assert client.get("/versions").get_json() == ["v1.1.0", "v1.2.0"]
    assert client.get("/versions?broken=true").get_json() == []


@pytest.mark.parametrize(
    "path",
    [
        "/image/{sid}/v1.1.0/kernel-amd64",
        "/image/{sid}/1.1.0/metal-amd64.iso",
        "/pxe/{sid}/v1.1.0/metal-amd64",
        "/version/v1.1.0/extensions/official",
        "/version/1.1.0/overlays/official",
        "/version/v1.1.0/kernel-modules/amd64",
        "/image/{sid}/v1.0.0/kernel-amd64",
    ],
)
def test_routes_naming_a_version_not_offered_are_404(
    settings: Settings, store: LocalStore, stocked: str, path: str
) -> None:
    client = _client(settings, store, broken_versions="v1.1.0", min_version="1.0.1")
    version = "1.0.0" if "v1.0.0" in path else "1.1.0"
    response = client.get(path.format(sid=stocked))
    assert response.status_code == 404
    assert response.data == f"version {version} is not available\n".encode()
    # An offered version still answers.
    assert client.get("/version/v1.2.0/extensions/official").status_code == 200


def test_builds_and_registry_refuse_them(
    settings: Settings, store: LocalStore, stocked: str
) -> None:
    client = _client(settings, store, broken_versions="v1.2.0")
    body = {"schematic": stocked, "version": "v1.2.0", "path": "kernel-amd64"}
    response = client.post("/builds", json=body)
    assert response.status_code == 404
    assert response.data == b"version 1.2.0 is not available\n"
    pulled = client.get(f"/v2/installer/{stocked}/manifests/v1.2.0")
    assert pulled.status_code == 404
    # `latest` is the newest release offered, not the broken one.
    tags = client.get(f"/v2/installer/{stocked}/tags/list").get_json()["tags"]
    assert "v1.2.0" not in tags
    assert {"v1.0.0", "v1.1.0", "latest"} <= set(tags)


def test_the_wizard_offers_only_those_versions(
    settings: Settings, store: LocalStore, stocked: str
) -> None:
    page = _client(settings, store, broken_versions="v1.2.0").get("/?target=metal").data
    assert b"v1.1.0" in page
    assert b"v1.2.0" not in page


def test_policy_from_settings() -> None:
    policy = VersionPolicy.from_settings(
        Settings(min_version=" 1.1.0 ", broken_versions="1.2.0,,v1.3.0+build")
    )
    assert policy == VersionPolicy(minimum="v1.1.0", broken=("v1.2.0", "v1.3.0+build"))
    assert policy.offered(["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0-rc.0"]) == [
        "v1.1.0",
        "v1.4.0-rc.0",
    ]
    assert not VersionPolicy(minimum="v1.1.0").offers("v1.1.0-rc.1")


@pytest.mark.parametrize(
    ("options", "variable"),
    [
        ({"min_version": "1.x"}, "IMAGE_FACTORY_MIN_VERSION"),
        ({"broken_versions": "v1.0.0,latest"}, "IMAGE_FACTORY_BROKEN_VERSIONS"),
    ],
)
def test_a_bad_version_setting_stops_the_start(
    tmp_path: Path, options: dict[str, str], variable: str
) -> None:
    with pytest.raises(ValueError, match=variable):
        create_app(Settings(data_dir=tmp_path, **options))  # type: ignore[arg-type]
