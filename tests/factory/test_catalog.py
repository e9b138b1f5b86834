"""HTTP: the per-release catalogs and custom extension uploads, hostile ones included."""

from __future__ import annotations

import io
import tarfile
import zlib
from pathlib import Path

import pytest
import zstandard
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, run_wsgi_app

from factory import create_app
from tests.extensions.builders import (
    LAYER_GZIP,
    LAYER_TAR,
    Member,
    OciLayout,
    deeply_nested_json,
    directory,
    file,
    gz,
    gz_without_trailer,
    hardlink,
    hello_members,
    layered_bomb,
    manifest,
    symlink,
    tar_bytes,
    without_end_marker,
    zst,
    zst_unfinished,
)
from tests.extensions.test_sources import _bomb_tar_stream
from tests.workers.releases.fakes import save_fake_release
from workers.catalog import install_bundled_extensions
from workers.releases.stored import load_release
from workers.settings import Settings
from workers.store import LocalStore
from workers.tenancy.tokens import ROLE_ADMIN, create_token

HELLO = tar_bytes(hello_members())


@pytest.fixture
def client(app: Flask, store: LocalStore) -> FlaskClient:
    """A client sending an admin token: the default namespace is the bundled one, which
    only admins may publish into."""
    return with_token(app.test_client(), store)


def with_token(client: FlaskClient, store: LocalStore, role: str = ROLE_ADMIN) -> FlaskClient:
    _, token = create_token(store, f"test-{role}", role)
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


@pytest.fixture
def releases(store: LocalStore, tmp_path: Path) -> LocalStore:
    for version in ("v1.0.0", "v1.5.0"):
        save_fake_release(store, version, tmp_path / "releases")
    return store


def listed(client: FlaskClient, version: str) -> list[str]:
    response = client.get(f"/version/{version}/extensions/official")
    assert response.status_code == 200
    return [entry["name"] for entry in response.get_json()]


def with_manifest(body: bytes, *extra: Member) -> bytes:
    members = hello_members(extra)
    members[0] = file("manifest.yaml", body)
    return tar_bytes(members)


def oci_with_bad_digest() -> bytes:
    layout = OciLayout()
    layout.image([(HELLO, LAYER_TAR)])
    victim = next(d for d, b in layout.blobs.items() if b == HELLO)
    return layout.tar(override={f"blobs/sha256/{victim}": HELLO.replace(b"hello", b"HELLO")})


def oci_of(layers: list[tuple[bytes, str]]) -> bytes:
    layout = OciLayout()
    layout.image(layers)
    return layout.tar()


HOSTILE: dict[str, tuple[bytes, str]] = {
    "dotdot": (tar_bytes(hello_members([file("rootfs/usr/local/../../../etc/x")])), '".."'),
    "absolute": (tar_bytes(hello_members([file("/etc/passwd")])), "/etc/passwd: absolute"),
    "symlink-escape": (
        tar_bytes(hello_members([symlink("rootfs/usr/local/bin/x", "../../../../etc")])),
        "rootfs/usr/local/bin/x: symlink to '../../../../etc' resolves outside rootfs/",
    ),
    "hardlink-outside": (
        tar_bytes(hello_members([hardlink("rootfs/usr/local/bin/x", "/etc/shadow")])),
        "rootfs/usr/local/bin/x: hard link to '/etc/shadow'",
    ),
    "device": (
        tar_bytes(hello_members([Member("rootfs/usr/local/kmem", kind=tarfile.CHRTYPE)])),
        "rootfs/usr/local/kmem: device nodes are not allowed",
    ),
    "fifo": (
        tar_bytes(hello_members([Member("rootfs/usr/local/p", kind=tarfile.FIFOTYPE)])),
        "rootfs/usr/local/p: FIFOs are not allowed",
    ),
    "world-writable": (
        tar_bytes(hello_members([file("rootfs/usr/local/w", b"", 0o646)])),
        "rootfs/usr/local/w: world-writable entries are not allowed",
    ),
    "setuid": (
        tar_bytes(hello_members([file("rootfs/usr/local/bin/s", b"", 0o4755)])),
        "rootfs/usr/local/bin/s: setuid/setgid bits are not allowed",
    ),
    "outside-prefixes": (
        tar_bytes(hello_members([directory("rootfs/etc"), file("rootfs/etc/passwd")])),
        "rootfs/etc/passwd: /etc/passwd is outside the allowed paths",
    ),
    "no-manifest": (tar_bytes(hello_members()[1:]), "missing manifest.yaml"),
    "unparsable-manifest": (with_manifest(b"version: [v1\n"), "manifest.yaml: invalid YAML"),
    "wrong-manifest-version": (
        with_manifest(b"version: v1beta1\nmetadata: {name: a, version: '1'}\n"),
        'manifest.yaml: version: unsupported "v1beta1", expected "v1alpha1"',
    ),
    "incompatible-range": (
        with_manifest(manifest(compat=">= v2.0.0")),
        'requires version ">= v2.0.0", which no available version satisfies',
    ),
    "malformed-range": (
        with_manifest(manifest(compat="~> 1.0")),
        'invalid compatibility range "~> 1.0"',
    ),
    "oci-bad-digest": (oci_with_bad_digest(), "does not match its content"),
    "gzip-bomb": (
        _bomb_tar_stream(zlib.compressobj(1, zlib.DEFLATED, 31), 64 * 1024 * 1024),
        "gzip data expands more than 100:1",
    ),
    "zstd-bomb": (
        _bomb_tar_stream(zstandard.ZstdCompressor(level=1).compressobj(), 64 * 1024 * 1024),
        "zstd data expands more than 100:1",
    ),
    "tar-cut-at-block": (without_end_marker(HELLO), "upload: truncated tar archive"),
    "tgz-cut-at-block": (gz(without_end_marker(HELLO)), "upload: truncated tar archive"),
    "zst-cut-at-block": (zst(without_end_marker(HELLO)), "upload: truncated tar archive"),
    "oci-layer-cut-at-block": (
        oci_of([(gz(without_end_marker(HELLO)), LAYER_GZIP)]),
        "layer 0 (sha256:",
    ),
    "gzip-without-trailer": (gz_without_trailer(HELLO), "upload: corrupt gzip data"),
    "zstd-unfinished": (zst_unfinished(HELLO), "upload: corrupt zstd data"),
    "oci-repeated-layer": (
        oci_of([(HELLO, LAYER_TAR), (HELLO, LAYER_TAR)]),
        "upload: layer 1: repeats layer 0 (sha256:",
    ),
    "oci-layers-add-up-to-a-bomb": (
        layered_bomb().tar(),
        "upload: layer 1 (sha256:",
    ),
    "oci-deep-json": (
        OciLayout().tar(override={"index.json": deeply_nested_json()}),
        "upload: index.json: JSON nested too deeply",
    ),
    "garbage": (b"\x00\xffnot an archive" * 64, "upload: not a tar archive"),
    "empty": (b"", "upload: not a tar archive"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_upload_is_refused_and_nothing_is_stored(
    client: FlaskClient, releases: LocalStore, case: str
) -> None:
    body, reason = HOSTILE[case]
    response = client.post("/extensions", data=body)
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert reason in response.get_data(as_text=True)
    assert list(releases.list("extensions/")) == []
    assert listed(client, "v1.0.0") == []
    assert listed(client, "v1.5.0") == []


def test_oversized_upload_is_413(releases: LocalStore, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_extension_bytes=1000)
    app = create_app(settings, store=releases)
    client = with_token(app.test_client(), releases)
    response = client.post("/extensions", data=HELLO)
    assert response.status_code == 413
    assert "larger than 1000 bytes" in response.get_data(as_text=True)

    # No Content-Length (a chunked upload): the limit is enforced while reading.
    environ = EnvironBuilder(
        path="/extensions",
        method="POST",
        input_stream=io.BytesIO(HELLO),
        environ_overrides={
            "wsgi.input_terminated": True,
            "HTTP_AUTHORIZATION": client.environ_base["HTTP_AUTHORIZATION"],
        },
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    body, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert status.startswith("413")
    assert b"larger than 1000 bytes" in b"".join(body)
    assert list(releases.list("extensions/")) == []


def test_upload_is_listed_for_compatible_versions_only(
    client: FlaskClient, releases: LocalStore
) -> None:
    body = with_manifest(manifest("legacy", "2.1.0", "< v1.5.0"))
    response = client.post("/extensions", data=body)
    assert response.status_code == 201
    created = response.get_json()
    digest = created["digest"]
    assert created == {
        "name": "factory/legacy",
        "version": "2.1.0",
        "digest": digest,
        "ref": "localhost/factory/legacy:2.1.0",
        "author": "Test Author",
        "description": "A test extension",
        "compatibility": "< v1.5.0",
        "arch": "",
        "size": created["size"],
        "origin": "upload",
        "uploaded_by": "test-admin",
        "uploaded_at": created["uploaded_at"],
    }
    assert digest.startswith("sha256:")
    assert releases.exists(f"extensions/{digest[7:]}.tar")
    catalog = client.get("/version/1.0.0/extensions/official").get_json()
    assert catalog == [
        {
            "name": "factory/legacy",
            "ref": "localhost/factory/legacy:2.1.0",
            "digest": digest,
            "author": "Test Author",
            "description": "A test extension",
            "version": "2.1.0",
            "origin": "upload",
            "uploaded_by": "test-admin",
            "uploaded_at": created["uploaded_at"],
        }
    ]
    assert listed(client, "v1.5.0") == []


def test_every_container_format_gives_one_digest(client: FlaskClient, releases: LocalStore) -> None:
    oci = OciLayout()
    oci.image([(gz(HELLO), LAYER_GZIP)])
    digests = set()
    for body in (HELLO, gz(HELLO), zst(HELLO), oci.tar(), zst(oci.tar())):
        response = client.post("/extensions", data=body)
        assert response.status_code == 201, response.get_data(as_text=True)
        digests.add(response.get_json()["digest"])
    assert len(digests) == 1
    assert listed(client, "v1.0.0") == ["factory/hello"]


def test_namespace_and_conflicts(client: FlaskClient, releases: LocalStore) -> None:
    response = client.post("/extensions?namespace=siderolabs", data=HELLO)
    assert response.status_code == 201
    assert response.get_json()["name"] == "siderolabs/hello"
    changed = tar_bytes(hello_members([file("rootfs/usr/local/share/x", b"new")]))
    response = client.post("/extensions?namespace=siderolabs", data=changed)
    assert response.status_code == 400
    assert "siderolabs/hello 1.0.0 already exists with different content" in response.text
    response = client.post("/extensions?namespace=Not/Valid", data=changed)
    assert response.status_code == 400
    assert 'invalid namespace "Not/Valid"' in response.text
    assert listed(client, "v1.0.0") == ["siderolabs/hello"]


def test_versions_malformed_and_unknown(client: FlaskClient, releases: LocalStore) -> None:
    for route in ("extensions", "overlays"):
        bad = client.get(f"/version/not-a-version/{route}/official")
        assert bad.status_code == 400
        assert 'invalid version "not-a-version"' in bad.text
        missing = client.get(f"/version/v9.9.9/{route}/official")
        assert missing.status_code == 404
        assert "v9.9.9 is not available" in missing.text


def test_bundled_catalog_and_overlays(
    client: FlaskClient, releases: LocalStore, settings: Settings
) -> None:
    release = load_release(releases, "v1.0.0", "amd64")
    install_bundled_extensions(settings, releases, release, lambda _: None)
    assert listed(client, "v1.0.0") == [
        "factory/dummy-module",
        "factory/firmware-demo",
        "factory/hello",
    ]
    assert listed(client, "v1.5.0") == [
        "factory/firmware-demo",
        "factory/hello",
    ]  # module: v1.0.0 only
    overlays = client.get("/version/v1.0.0/overlays/official").get_json()
    assert len(overlays) == 1
    assert overlays[0]["name"] == "testboard"
    assert overlays[0]["image"] == "factory/testboard"
    assert overlays[0]["ref"] == "localhost/factory/testboard:1.0.0"
    assert overlays[0]["digest"].startswith("sha256:")
