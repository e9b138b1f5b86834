"""The extension upload page: a token holder's upload lands in the catalog; no, a wrong or a
too-weak token is refused in words on the token field; a bad extension is explained in
words on the file field, nothing stored; the catalog links to the page."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.extensions.builders import file, hello_members, manifest, tar_bytes
from tests.workers.releases.fakes import save_fake_release
from workers.catalog import list_extension_records
from workers.store import LocalStore
from workers.tenancy.audit import read_events
from workers.tenancy.tokens import ROLE_READ, ROLE_UPLOAD, create_token


@pytest.fixture
def released(store: LocalStore, tmp_path: Path) -> LocalStore:
    save_fake_release(store, "v1.0.0", tmp_path / "releases")
    return store


@pytest.fixture
def uploader(released: LocalStore) -> str:
    return create_token(released, "uploader", ROLE_UPLOAD)[1]


def extension(name: str = "page-tool", manifest_body: bytes | None = None) -> bytes:
    members = hello_members()
    members[0] = file("manifest.yaml", manifest_body or manifest(name, "1.2.3", ">= v1.0.0"))
    return tar_bytes(members)


def post(
    client: FlaskClient,
    body: bytes | None,
    token: str = "",
    namespace: str = "mine",
    headers: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    form: dict[str, object] = {"token": token, "namespace": namespace, "arch": "amd64"}
    if body is not None:
        form["extension"] = (BytesIO(body), "extension.tar")
    response = client.post(
        "/catalog/upload", data=form, content_type="multipart/form-data", headers=headers or {}
    )
    return response.status_code, response.get_data(as_text=True), response.location or ""


def error_of(html: str) -> tuple[str, str]:
    """(the field the error links to, its words)."""
    found = re.search(r'<p id="error-message"><a href="#([\w-]+)">(.*?)</a></p>', html, re.S)
    assert found is not None, html
    return found.group(1), found.group(2)


def test_an_authorized_upload_lands_in_the_catalog(
    app: Flask, released: LocalStore, uploader: str
) -> None:
    client = app.test_client()
    status, _, location = post(client, extension(), uploader)
    assert status == 303
    (record,) = [r for r in list_extension_records(released) if r.full_name == "mine/page-tool"]
    assert location == f"/catalog/{record.digest}"
    assert record.uploaded_by == "uploader"
    page = client.get(location).get_data(as_text=True)
    assert "mine/page-tool" in page
    catalog = client.get("/catalog?version=v1.0.0&arch=amd64").get_data(as_text=True)
    assert f'href="/catalog/{record.digest}"' in catalog
    events = [(e.actor, e.action, e.subject) for e in read_events(released)]
    assert ("uploader", "extension.upload", "mine/page-tool 1.2.3") in events


def test_a_bearer_header_does_as_well_as_the_token_field(
    app: Flask, released: LocalStore, uploader: str
) -> None:
    headers = {"Authorization": f"Bearer {uploader}"}
    status, _, _ = post(app.test_client(), extension(), headers=headers)
    assert status == 303
    assert [r.full_name for r in list_extension_records(released)] == ["mine/page-tool"]


def test_no_wrong_or_weak_token_is_refused_in_words(app: Flask, released: LocalStore) -> None:
    client = app.test_client()
    status, html, _ = post(client, extension())
    assert status == 401
    assert error_of(html) == (
        "field-token",
        "Enter your upload token: uploading an extension needs one.",
    )
    status, html, _ = post(client, extension(), "not-a-token")
    assert status == 401
    assert error_of(html)[1].startswith("That token is unknown, expired or revoked.")
    reader = create_token(released, "reader", ROLE_READ)[1]
    status, html, _ = post(client, extension(), reader)
    assert status == 403
    assert error_of(html) == (
        "field-token",
        "This token may not upload extensions: that needs the upload role.",
    )
    assert list_extension_records(released) == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            b"this is not an archive",
            "The file is not an extension archive. Upload a tar, tar.gz or tar.zst file, "
            "or an OCI image layout packed as a tar file.",
        ),
        (
            tar_bytes(hello_members()[1:]),
            "The archive has no manifest.yaml at its top. An extension is a manifest.yaml "
            "beside a rootfs/ directory.",
        ),
        (
            extension(manifest_body=b"version: v1alpha1\nmetadata: [\n"),
            "Line 3 of manifest.yaml is not valid YAML.",
        ),
        (
            extension(manifest_body=b"version: v1alpha1\nmetadata:\n  name: x\n  bogus: 2\n"),
            "manifest.yaml has no setting “bogus” inside “metadata”.",
        ),
        (
            tar_bytes(hello_members([file("rootfs/etc/passwd", b"x")])),
            "The archive installs /etc/passwd, outside the places an extension may add files "
            "to (such as /usr/local, /usr/lib/firmware and /usr/lib/modules).",
        ),
        (
            extension(manifest_body=manifest("future", "1.0", ">= v9.0.0")),
            "Extension future 1.0 is for releases &gt;= v9.0.0, and this factory has none of "
            "those (it has v1.0.0).",
        ),
    ],
    ids=["not-an-archive", "no-manifest", "bad-yaml", "unknown-setting", "outside", "no-release"],
)
def test_a_bad_extension_is_explained_in_words(
    app: Flask, released: LocalStore, uploader: str, body: bytes, words: str
) -> None:
    status, html, _ = post(app.test_client(), body, uploader)
    assert status == 400
    assert error_of(html) == ("field-extension", words)
    assert list_extension_records(released) == []
    assert 'id="field-extension"' in html
    assert 'aria-invalid="true"' in html


def test_a_form_without_a_file_or_with_a_foreign_namespace_says_so(
    app: Flask, released: LocalStore, uploader: str
) -> None:
    client = app.test_client()
    status, html, _ = post(client, None, uploader)
    assert (status, error_of(html)) == (
        400,
        ("field-extension", "Choose an extension file to upload."),
    )
    status, html, _ = post(client, extension(), uploader, namespace="siderolabs")
    assert status == 403
    assert error_of(html)[0] == "field-namespace"
    status, html, _ = post(client, extension(), uploader, namespace="Not Valid")
    assert (status, error_of(html)[0]) == (400, "field-namespace")


def test_the_catalog_links_to_the_upload_page(app: Flask, released: LocalStore) -> None:
    client = app.test_client()
    assert 'href="/catalog/upload"' in client.get("/catalog").get_data(as_text=True)
    page = client.get("/catalog/upload")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<form method="post" action="/catalog/upload" enctype="multipart/form-data"' in html
    assert 'name="token"' in html
