"""cosign simple-signing signatures, checked the way cosign does with openssl doing the crypto."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

from workers.keys.signing import SigningKey, load_or_create_signing_key
from workers.registry import cosign, oci
from workers.settings import Settings

REFERENCE = "factory.example:8080/metal-installer/" + "ab" * 32
INDEX = oci.describe(oci.INDEX, b'{"schemaVersion":2}')


def _key(tmp_path: Path) -> SigningKey:
    return load_or_create_signing_key(Settings(data_dir=tmp_path / "data"))


def _openssl_verifies(tmp_path: Path, key: SigningKey, payload: bytes, signature: bytes) -> bool:
    (tmp_path / "key.pub").write_bytes(key.public_key_pem)
    (tmp_path / "payload").write_bytes(payload)
    (tmp_path / "sig.der").write_bytes(signature)
    argv = ["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "key.pub")]
    argv += ["-signature", str(tmp_path / "sig.der"), str(tmp_path / "payload")]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def test_payload_is_the_simple_signing_document() -> None:
    payload = json.loads(cosign.payload(REFERENCE, INDEX.digest))
    assert payload == {
        "critical": {
            "identity": {"docker-reference": REFERENCE},
            "image": {"docker-manifest-digest": INDEX.digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }


def test_signature_manifest_verifies_like_cosign(tmp_path: Path) -> None:
    key = _key(tmp_path)
    signature = cosign.signature_for(key, REFERENCE, INDEX)

    manifest = json.loads(signature.manifest)
    assert manifest["mediaType"] == oci.MANIFEST
    assert manifest["subject"] == {
        "mediaType": oci.INDEX,
        "digest": INDEX.digest,
        "size": INDEX.size,
    }
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert layer["digest"] == "sha256:" + hashlib.sha256(signature.payload).hexdigest()
    assert layer["size"] == len(signature.payload)
    assert manifest["config"]["digest"] == "sha256:" + hashlib.sha256(signature.config).hexdigest()
    assert json.loads(signature.config)["rootfs"]["diff_ids"] == [layer["digest"]]
    claimed = json.loads(signature.payload)["critical"]["image"]["docker-manifest-digest"]
    assert claimed == INDEX.digest
    der = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    assert _openssl_verifies(tmp_path, key, signature.payload, der)
    assert not _openssl_verifies(tmp_path, key, signature.payload + b" ", der)
    assert signature.descriptor.digest == "sha256:" + hashlib.sha256(signature.manifest).hexdigest()
    assert signature.descriptor.artifact_type == manifest["artifactType"]


def test_signatures_are_deterministic(tmp_path: Path) -> None:
    key = _key(tmp_path)
    one = cosign.signature_for(key, REFERENCE, INDEX)
    other = cosign.signature_for(key, REFERENCE, INDEX)
    assert one.manifest == other.manifest


def test_another_key_gives_another_signature(tmp_path: Path) -> None:
    one = cosign.signature_for(_key(tmp_path / "a"), REFERENCE, INDEX)
    other = cosign.signature_for(_key(tmp_path / "b"), REFERENCE, INDEX)
    assert one.payload == other.payload
    assert one.manifest != other.manifest
