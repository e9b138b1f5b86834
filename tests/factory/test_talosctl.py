"""`/talosctl/<version>` as upstream's talosctl test checks it (the listing of absolute URLs,
downloads, `version X is not available`), and served like every asset: checksums and a
signature made when the binaries were imported with the release."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient

from factory.cli import main
from tests.workers.releases.fakes import save_fake_release
from workers.errors import Conflict
from workers.keys.signing import load_or_create_signing_key
from workers.releases.clients import import_clients, load_clients
from workers.releases.manifest import RELEASE_FILES
from workers.releases.stored import Release
from workers.settings import Settings
from workers.store import LocalStore

BINARIES = {
    "talosctl-linux-amd64": b"\x7fELF linux amd64",
    "talosctl-darwin-arm64": b"\xcf\xfa\xed\xfe darwin arm64",
    "talosctl-windows-amd64.exe": b"MZ windows amd64",
}


def _client_dir(tmp: Path, **extra: bytes) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    for name, data in {**BINARIES, **extra}.items():
        (tmp / name).write_bytes(data)
    return tmp


@pytest.fixture
def stocked(store: LocalStore, settings: Settings, tmp_path: Path) -> LocalStore:
    save_fake_release(store, "v1.11.0", tmp_path / "releases")
    save_fake_release(store, "v1.10.0", tmp_path / "releases")
    others = {"README": b"not a client", "talosctl-plan9-amd64": b"no such target"}
    key = load_or_create_signing_key(settings)
    import_clients(store, "v1.11.0", _client_dir(tmp_path / "clients", **others), key)
    return store


def test_listing_is_sorted_absolute_urls(client: FlaskClient, stocked: LocalStore) -> None:
    for version in ("v1.11.0", "1.11.0"):
        response = client.get(f"/talosctl/{version}")
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        assert response.get_json() == [
            f"http://localhost/talosctl/v1.11.0/{name}" for name in sorted(BINARIES)
        ]
    assert client.get("/talosctl/v1.10.0").get_json() == []


@pytest.mark.parametrize("path", ["/talosctl/v9.9.9", "/talosctl/v1.3.0/talosctl-linux-amd64"])
def test_unknown_versions_are_404_in_upstream_words(
    client: FlaskClient, stocked: LocalStore, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.data == f"version {path.split('/')[2][1:]} is not available\n".encode()


@pytest.mark.parametrize("name", sorted(BINARIES))
def test_binaries_download_with_checksums_and_signatures(
    client: FlaskClient, stocked: LocalStore, name: str
) -> None:
    url = f"/talosctl/v1.11.0/{name}"
    response = client.get(url)
    assert response.status_code == 200
    assert response.data == BINARIES[name]
    assert response.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response.headers["Content-Length"] == str(len(BINARIES[name]))
    assert response.headers["ETag"] == f'"{hashlib.sha256(BINARIES[name]).hexdigest()}"'
    head = client.head(url)
    assert (head.status_code, head.data) == (200, b"")
    assert head.headers["Content-Length"] == str(len(BINARIES[name]))

    line = client.get(url + ".sha256").data.decode()
    assert line == f"{hashlib.sha256(BINARIES[name]).hexdigest()}  {name}\n"
    assert client.get(url + ".sha512").data.decode().split()[0] == (
        hashlib.sha512(BINARIES[name]).hexdigest()
    )
    signed = client.get(url + ".sigstore.json").get_json()["messageSignature"]
    key = serialization.load_pem_public_key(client.get("/oci/cosign/signing-key.pub").data)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(base64.b64decode(signed["signature"]), BINARIES[name], ec.ECDSA(hashes.SHA256()))
    # Signed once, at import: the same bundle every time.
    assert client.get(url + ".sigstore.json").data == client.get(url + ".sigstore.json").data


def test_unknown_files_are_404_naming_them(client: FlaskClient, stocked: LocalStore) -> None:
    response = client.get("/talosctl/v1.11.0/talosctl-plan9-amd64")
    assert response.status_code == 404
    assert response.data == b"talosctl-plan9-amd64 is not available for version 1.11.0\n"


def test_reimport_keeps_and_a_different_binary_conflicts(
    stocked: LocalStore, settings: Settings, tmp_path: Path
) -> None:
    key = load_or_create_signing_key(settings)
    before = load_clients(stocked, "v1.11.0")
    import_clients(stocked, "v1.11.0", _client_dir(tmp_path / "again"), key)
    assert load_clients(stocked, "v1.11.0") == before
    changed = _client_dir(tmp_path / "changed", **{"talosctl-linux-amd64": b"\x7fELF other"})
    with pytest.raises(Conflict, match="already has another talosctl-linux-amd64"):
        import_clients(stocked, "v1.11.0", changed, key)


@pytest.mark.integration
def test_release_import_takes_the_clients_beside_the_release(
    reference_release: tuple[LocalStore, Release], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref_store, ref = reference_release
    src = _client_dir(tmp_path / "release")
    for name in RELEASE_FILES:
        ref.fetch(ref_store, name, src / name)
    data = tmp_path / "data"
    monkeypatch.setenv("IMAGE_FACTORY_DATA_DIR", str(data))
    result = CliRunner().invoke(
        main, ["release", "import", str(src), "--version", "v1.12.0", "--arch", "amd64"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(load_clients(LocalStore(data / "store"), "v1.12.0")) == sorted(BINARIES)
    assert "client talosctl-linux-amd64 sha256:" in result.stderr
