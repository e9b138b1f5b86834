"""The factory's asset signing key and the signatures users verify downloads with.

One ECDSA P-256 key (PEM). Each asset gets a Sigstore bundle v0.3 holding a key-based
`messageSignature` over its SHA-256 digest: the signature is plain ECDSA-with-SHA256 over the
asset bytes, so `openssl dgst -sha256 -verify signing-key.pub -signature sig.der ASSET` checks it
as well as `cosign verify-blob --key signing-key.pub --bundle ASSET.sigstore.json
--insecure-ignore-tlog ASSET` does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from workers.settings import Settings

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
DEFAULT_KEY_FILE = Path("keys") / "signing-key.pem"


@dataclass(frozen=True)
class SigningKey:
    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def public_key_hint(self) -> str:
        return public_key_hint(self.public_key_pem)

    def sign_digest(self, sha256_digest: bytes) -> bytes:
        """DER ECDSA signature over data whose SHA-256 is `sha256_digest`."""
        algorithm = ec.ECDSA(utils.Prehashed(hashes.SHA256()))
        return self.private_key.sign(sha256_digest, algorithm)

    def sigstore_bundle(self, sha256_hex: str) -> dict[str, Any]:
        """A Sigstore bundle v0.3 with a key-based message signature over the digest."""
        digest = bytes.fromhex(sha256_hex)
        return {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {"publicKey": {"hint": self.public_key_hint}},
            "messageSignature": {
                "messageDigest": {
                    "algorithm": "SHA2_256",
                    "digest": base64.b64encode(digest).decode(),
                },
                "signature": base64.b64encode(self.sign_digest(digest)).decode(),
            },
        }


def public_key_der(public_key_pem: bytes) -> bytes:
    """The PKIX DER form of a PEM public key (what hints and fingerprints hash)."""
    return serialization.load_pem_public_key(public_key_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_hint(public_key_pem: bytes) -> str:
    """base64(sha256(PKIX DER)), the key hint Sigstore bundles carry."""
    return base64.b64encode(hashlib.sha256(public_key_der(public_key_pem)).digest()).decode()


def key_path(settings: Settings) -> Path:
    return (
        Path(settings.signing_key) if settings.signing_key else settings.data_dir / DEFAULT_KEY_FILE
    )


def load_or_create_signing_key(settings: Settings, create_configured: bool = False) -> SigningKey:
    """Load the configured key; with none configured, create one in the data dir once.
    A configured file that does not exist is an error, unless `create_configured` (what
    `image-factory prepare` asks for) says to create it there."""
    path = key_path(settings)
    if path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != "secp256r1":
            raise ValueError(f"{path}: the signing key must be an ECDSA P-256 private key")
        return SigningKey(loaded)
    if settings.signing_key and not create_configured:
        raise FileNotFoundError(f"IMAGE_FACTORY_SIGNING_KEY points at {path}, which does not exist")
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    # Two processes starting at once: the first rename wins and both then load that key.
    if not path.exists():
        os.replace(tmp, path)
    tmp.unlink(missing_ok=True)
    return load_or_create_signing_key(settings, create_configured)


def checksum_line(hex_digest: str, filename: str) -> str:
    """One line in `sha256sum`/`sha512sum` format."""
    return f"{hex_digest}  {filename}\n"


def bundle_json(bundle: dict[str, Any]) -> bytes:
    return (json.dumps(bundle, indent=2, sort_keys=True) + "\n").encode()
