"""`GET|HEAD /image/<id>/<version>/<path>`: errors as upstream words them, headers, caching."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from schematics import parse_schematic
from tests.workers.releases.fakes import save_fake_release
from workers import builds as builds_module
from workers.builds import BUILDS_PREFIX
from workers.schematics_store import save_schematic
from workers.store import LocalStore

SCHEMATIC = b"customization:\n  extraKernelArgs: [console=ttyS0, -console=tty0]\n"


@pytest.fixture
def schematic_id(store: LocalStore, tmp_path: Path) -> str:
    save_fake_release(store, "v1.0.0", tmp_path / "releases")
    return save_schematic(store, parse_schematic(SCHEMATIC))


def test_kernel_is_streamed_with_upstream_headers(client: FlaskClient, schematic_id: str) -> None:
    response = client.get(f"/image/{schematic_id}/v1.0.0/kernel-amd64")
    assert response.status_code == 200
    assert response.data.startswith(b"MZ fake vmlinuz")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Length"] == str(len(response.data))
    assert response.headers["Content-Disposition"] == 'attachment; filename="kernel-amd64"'


def test_version_without_v_and_arch_alias(client: FlaskClient, schematic_id: str) -> None:
    one = client.get(f"/image/{schematic_id}/v1.0.0/kernel-amd64")
    other = client.get(f"/image/{schematic_id}/1.0.0/kernel-x86_64")
    assert other.status_code == 200
    assert other.data == one.data
    assert other.headers["Content-Disposition"] == 'attachment; filename="kernel-x86_64"'


def test_cmdline(client: FlaskClient, schematic_id: str) -> None:
    response = client.get(f"/image/{schematic_id}/v1.0.0/cmdline-metal-amd64")
    assert response.status_code == 200
    assert response.data == b"talos.platform=metal console=ttyS0"


def test_head_sends_headers_only(client: FlaskClient, schematic_id: str) -> None:
    response = client.head(f"/image/{schematic_id}/v1.0.0/cmdline-aws-amd64")
    assert response.status_code == 200
    assert response.data == b""
    full = client.get(f"/image/{schematic_id}/v1.0.0/cmdline-aws-amd64")
    assert response.headers["Content-Length"] == str(len(full.data))


def test_second_request_is_served_from_the_store(
    client: FlaskClient, schematic_id: str, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = client.get(f"/image/{schematic_id}/v1.0.0/kernel-amd64")
    assert list(store.list(BUILDS_PREFIX))

    def no_builds(*args: object, **kwargs: object) -> Path:
        raise AssertionError("built twice")

    monkeypatch.setattr(builds_module, "build_asset", no_builds)
    again = client.get(f"/image/{schematic_id}/v1.0.0/kernel-amd64")
    assert again.status_code == 200
    assert again.data == first.data


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        (
            "/image/{id}/v1.0.0/kernel-foo",
            400,
            'error parsing profile from path: invalid architecture: "foo"\n',
        ),
        (
            "/image/{id}/v1.0.0/metal-amd64.vmdk",
            400,
            'error parsing profile from path: invalid profile path: "metal-amd64.vmdk"\n',
        ),
        ("/image/{id}/1.x/kernel-amd64", 400, 'invalid version "1.x"\n'),
        ("/image/{id}/v9.9.9/kernel-amd64", 404, "version v9.9.9 is not available for amd64\n"),
        ("/image/{id}/v1.0.0/metal-arm64.iso", 501, "arm64 assets are not built yet"),
        ("/image/{id}/v1.0.0/extensions-arm64.sqsh", 501, "arm64 assets are not built yet"),
        (
            f"/image/{'0' * 64}/v1.0.0/kernel-amd64",
            404,
            f'schematic ID "{"0" * 64}" not found\n',
        ),
    ],
)
def test_errors(client: FlaskClient, schematic_id: str, path: str, status: int, body: str) -> None:
    response = client.get(path.format(id=schematic_id))
    assert response.status_code == status
    assert body in response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.integration
def test_initramfs_content_type(client: FlaskClient, schematic_id: str) -> None:
    response = client.get(f"/image/{schematic_id}/v1.0.0/initramfs-amd64.xz")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-xz"
    assert response.data.startswith(b"MZ fake initramfs.xz")
