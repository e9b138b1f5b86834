"""Signatures are checked with the real `openssl` binary, not with our own code."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from workers.keys.signing import bundle_json, checksum_line, load_or_create_signing_key
from workers.settings import Settings


def test_key_is_created_once_and_reloaded(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = load_or_create_signing_key(settings)
    second = load_or_create_signing_key(settings)
    assert first.public_key_pem == second.public_key_pem
    key_file = tmp_path / "keys" / "signing-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_configured_key_must_exist(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, signing_key=str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError, match=r"missing\.pem"):
        load_or_create_signing_key(settings)


def test_rsa_key_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "rsa.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    with pytest.raises(ValueError, match="P-256"):
        load_or_create_signing_key(Settings(data_dir=tmp_path, signing_key=str(key)))


@pytest.mark.integration
def test_bundle_signature_verifies_with_openssl(tmp_path: Path) -> None:
    key = load_or_create_signing_key(Settings(data_dir=tmp_path))
    asset = tmp_path / "asset.bin"
    asset.write_bytes(b"bootable bytes\n" * 1000)
    digest = hashlib.sha256(asset.read_bytes()).hexdigest()
    bundle = json.loads(bundle_json(key.sigstore_bundle(digest)))

    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    message = bundle["messageSignature"]
    assert base64.b64decode(message["messageDigest"]["digest"]).hex() == digest
    (tmp_path / "sig.der").write_bytes(base64.b64decode(message["signature"]))
    (tmp_path / "key.pub").write_bytes(key.public_key_pem)

    def verify(path: Path) -> subprocess.CompletedProcess[bytes]:
        argv = ["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "key.pub")]
        argv += ["-signature", str(tmp_path / "sig.der"), str(path)]
        return subprocess.run(argv, capture_output=True, check=False)

    assert verify(asset).returncode == 0
    tampered = tmp_path / "tampered.bin"
    tampered.write_bytes(asset.read_bytes() + b"x")
    assert verify(tampered).returncode != 0


def test_checksum_line_is_sha256sum_format() -> None:
    assert checksum_line("ab" * 32, "metal-amd64.iso") == "ab" * 32 + "  metal-amd64.iso\n"
