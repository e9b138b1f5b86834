from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.workers.releases.fakes import save_fake_release
from workers.store import LocalStore


def test_versions_are_listed_ascending(
    client: FlaskClient, store: LocalStore, tmp_path: Path
) -> None:
    assert client.get("/versions").get_json() == []
    for version in ("v1.10.0", "v1.2.0"):
        save_fake_release(store, version, tmp_path)

    response = client.get("/versions")
    assert response.status_code == 200
    assert response.get_json() == ["v1.2.0", "v1.10.0"]
    assert client.get("/versions?broken=true").get_json() == []


def test_kernel_modules_lists_every_loadable_module(
    client: FlaskClient, store: LocalStore, tmp_path: Path
) -> None:
    save_fake_release(store, "v1.0.0", tmp_path)

    for version in ("v1.0.0", "1.0.0"):
        response = client.get(f"/version/{version}/kernel-modules/amd64")
        assert response.status_code == 200
        assert response.get_json() == [
            "crc64",
            "crc64_rocksoft",
            "dummy",
            "sd_mod",
            "t10_pi",
            "zram",
            "zsmalloc",
            "zstd_common",
        ]


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        (
            "/version/v9.9.9/kernel-modules/amd64",
            404,
            "version v9.9.9 is not available for amd64\n",
        ),
        (
            "/version/v1.0.0/kernel-modules/arm64",
            404,
            "version v1.0.0 is not available for arm64\n",
        ),
        ("/version/latest/kernel-modules/amd64", 400, 'invalid version "latest"\n'),
        (
            "/version/v1.0.0/kernel-modules/mips",
            400,
            'invalid arch "mips": expected one of amd64, arm64\n',
        ),
    ],
)
def test_kernel_modules_errors(
    client: FlaskClient, store: LocalStore, tmp_path: Path, path: str, status: int, body: str
) -> None:
    save_fake_release(store, "v1.0.0", tmp_path)
    response = client.get(path)
    assert (response.status_code, response.get_data(as_text=True)) == (status, body)
