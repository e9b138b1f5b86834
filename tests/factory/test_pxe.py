"""`GET /pxe/...`: upstream's iPXE scripts byte for byte, on a synthetic release."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from factory import create_app
from factory.pxe import render_script
from tests.workers.build_worker import build_worker
from tests.workers.releases.fakes import save_fake_release
from workers.planning.profiles import parse_profile
from workers.settings import Settings
from workers.store import LocalStore

SCHEMATIC = b"""customization:
  extraKernelArgs:
    - foo=bar
    - -console=tty0
  meta:
    - key: 0xa
      value: '{"externalIPs":["1.2.3.4"]}'
"""
META_ARG = "talos.environment=INSTALLER_META_BASE64=MHhhPXsiZXh0ZXJuYWxJUHMiOlsiMS4yLjMuNCJdfQ=="
# The fake release: metal args `console=tty0`, defaults `console=tty0 console=ttyS0,115200`;
# the schematic then removes every `console=tty0` and appends `foo=bar`.
METAL_CMDLINE = f"talos.platform=metal console=ttyS0,115200 {META_ARG} foo=bar"


def _client(tmp_path: Path, **settings: str) -> tuple[FlaskClient, str]:
    config = Settings(data_dir=tmp_path / "data", **settings)  # type: ignore[arg-type]
    store = LocalStore(config.data_dir / "store")
    save_fake_release(store, "v1.0.0", tmp_path)
    client = create_app(config, store=store).test_client()
    created = client.post("/schematics", data=SCHEMATIC)
    assert created.status_code == 201
    return client, created.get_json()["id"]


@pytest.mark.parametrize("path", ["metal-amd64", "metal-x86_64", "metal-i386"])
def test_standard_script_is_upstreams_byte_for_byte(tmp_path: Path, path: str) -> None:
    client, sid = _client(tmp_path, external_url="http://factory.example:8080")

    response = client.get(f"/pxe/{sid}/1.0.0/{path}")

    assert response.status_code == 200
    base = f"http://factory.example:8080/image/{sid}/v1.0.0"
    assert response.data.decode() == (
        "#!ipxe\n"
        "\n"
        "imgfree\n"
        f"kernel {base}/kernel-amd64 {METAL_CMDLINE}\n"
        f"initrd {base}/initramfs-amd64.xz\n"
        "boot\n"
    )
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=3600"


def test_pxe_url_takes_precedence_and_the_platform_shapes_the_cmdline(tmp_path: Path) -> None:
    client, sid = _client(
        tmp_path, external_url="http://factory.example", pxe_url="http://pxe.example/boot/"
    )

    response = client.get(f"/pxe/{sid}/v1.0.0/aws-amd64")

    base = f"http://pxe.example/boot/image/{sid}/v1.0.0"
    cmdline = f"talos.platform=aws console=ttyS0 console=ttyS0,115200 {META_ARG} foo=bar"
    assert response.data.decode() == (
        f"#!ipxe\n\nimgfree\nkernel {base}/kernel-amd64 {cmdline}\n"
        f"initrd {base}/initramfs-amd64.xz\nboot\n"
    )


def test_pxe_cmdline_is_the_cmdline_asset(tmp_path: Path) -> None:
    """The script and `/image/.../cmdline-<platform>-<arch>` come from one plan."""
    client, sid = _client(tmp_path)

    script = client.get(f"/pxe/{sid}/v1.0.0/metal-amd64").data.decode()
    with build_worker(Settings(data_dir=tmp_path / "data")):
        asset = client.get(f"/image/{sid}/v1.0.0/cmdline-metal-amd64").data.decode()

    assert asset == METAL_CMDLINE
    assert f"/kernel-amd64 {asset}\n" in script


def test_secureboot_script_boots_the_signed_uki(tmp_path: Path) -> None:
    client, sid = _client(tmp_path, external_url="http://factory.example")

    response = client.get(f"/pxe/{sid}/v1.0.0/metal-amd64-secureboot")

    uki = f"http://factory.example/image/{sid}/v1.0.0/metal-amd64-secureboot-uki.efi"
    assert response.status_code == 200
    assert response.data.decode() == f"#!ipxe\n\nimgfree\nkernel {uki} {METAL_CMDLINE}\nboot\n"


def test_secureboot_script_shape() -> None:
    profile = parse_profile("cmdline-metal-amd64-secureboot")

    script = render_script("http://f/image/abc/v1.2.3", profile, "talos.platform=metal a=b")

    assert script == (
        "#!ipxe\n\nimgfree\n"
        "kernel http://f/image/abc/v1.2.3/metal-amd64-secureboot-uki.efi talos.platform=metal a=b\n"
        "boot\n"
    )


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        (
            "/pxe/{missing}/v1.0.0/metal-amd64",
            404,
            'schematic ID "{missing}" not found\n',
        ),
        ("/pxe/not-an-id/v1.0.0/metal-amd64", 404, 'schematic ID "not-an-id" not found\n'),
        (
            "/pxe/{sid}/v1.0.0/metal-mips",
            400,
            'error parsing profile from path: invalid architecture: "mips"\n',
        ),
        (
            "/pxe/{sid}/v1.0.0/metal",
            400,
            'error parsing profile from path: invalid platform-arch: "metal"\n',
        ),
        ("/pxe/{sid}/latest/metal-amd64", 400, 'invalid version "latest"\n'),
        ("/pxe/{sid}/v9.9.9/metal-amd64", 404, "version v9.9.9 is not available for amd64\n"),
        ("/pxe/{sid}/v1.0.0/metal-aarch64", 404, "version v1.0.0 is not available for arm64\n"),
    ],
)
def test_errors_are_those_of_the_image_route(
    tmp_path: Path, path: str, status: int, body: str
) -> None:
    client, sid = _client(tmp_path)
    names = {"sid": sid, "missing": "0" * 64}

    response = client.get(path.format(**names))

    assert response.status_code == status
    assert response.data.decode() == body.format(**names)
    assert "Cache-Control" not in response.headers
