"""The public halves of the deployment's keys: what the web side serves, plans and checks with.

Signing happens where builds happen (the workers); the web side holds no private key. It
needs only the public halves: the asset signing key (`GET /oci/cosign/signing-key.pub`, the
hint a signature must carry) and the SecureBoot certificate (`GET
/secureboot/signing-cert.pem`, the fingerprint a SecureBoot plan records). They come from:

- scaled: the store. `image-factory prepare` records them there (`deployment/keys.json`,
  next to their fingerprints), so a web container is given no key file at all;
- embedded default: one machine and one data directory shared by `serve` and its worker,
  so the public halves are read off the keys there (generated on first use, as before).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from workers.backends import choose_backend
from workers.errors import FactoryError
from workers.keys.secureboot_key import load_or_create_secureboot_key
from workers.keys.signing import load_or_create_signing_key, public_key_der, public_key_hint
from workers.settings import Settings
from workers.store import ObjectNotFound, Store

RECORD = "deployment/keys.json"
PREPARE_HINT = (
    "run `image-factory prepare` once for the deployment (it writes the keys and records "
    "them in the store) and give every worker its key files"
)


class KeyProblem(FactoryError):
    """The keys this process would sign or check with are missing, unreadable or not the
    deployment's."""


@dataclass(frozen=True)
class PublicKeys:
    signing_key_pem: bytes  # PKIX PEM
    secureboot_cert_pem: bytes  # X.509 PEM

    @property
    def signing_key_hint(self) -> str:
        return public_key_hint(self.signing_key_pem)

    @property
    def signing_key_fingerprint(self) -> str:
        """sha256 of the public key (PKIX DER)."""
        return hashlib.sha256(public_key_der(self.signing_key_pem)).hexdigest()

    @property
    def secureboot_cert_fingerprint(self) -> str:
        """sha256 of the DER certificate."""
        cert = x509.load_pem_x509_certificate(self.secureboot_cert_pem)
        return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """The record `prepare` writes: the fingerprints (what processes compare) and the
        public halves (what the web side serves)."""
        return {
            "signing_key": self.signing_key_fingerprint,
            "secureboot_cert": self.secureboot_cert_fingerprint,
            "signing_public_key_pem": self.signing_key_pem.decode(),
            "secureboot_cert_pem": self.secureboot_cert_pem.decode(),
        }


def read_record(store: Store) -> dict[str, Any] | None:
    """The deployment's key record, None when `prepare` never ran on this store."""
    try:
        found: dict[str, Any] = json.loads(store.get_bytes(RECORD))
    except ObjectNotFound:
        return None
    return found


def record_public_keys(store: Store, keys: PublicKeys) -> None:
    body = json.dumps(keys.to_json(), indent=2, sort_keys=True) + "\n"
    store.put_bytes(RECORD, body.encode(), content_type="application/json")


def recorded_public_keys(store: Store) -> PublicKeys:
    """The public halves `prepare` recorded; `KeyProblem` saying what to run when none are."""
    record = read_record(store)
    if record is None:
        raise KeyProblem(f"the store records no deployment keys ({RECORD}): {PREPARE_HINT}")
    if "signing_public_key_pem" not in record or "secureboot_cert_pem" not in record:
        raise KeyProblem(
            f"the store records the deployment keys' fingerprints but not their public halves "
            f"({RECORD} from an older version): run `image-factory prepare` again with the "
            "deployment's key files to record them"
        )
    return PublicKeys(
        str(record["signing_public_key_pem"]).encode(), str(record["secureboot_cert_pem"]).encode()
    )


def load_public_keys(settings: Settings, store: Store) -> PublicKeys:
    """The deployment's public halves: recorded in the store (scaled), or read off the keys
    in the data directory (embedded default)."""
    if choose_backend(settings).scaled:
        return recorded_public_keys(store)
    signing = load_or_create_signing_key(settings)
    return PublicKeys(signing.public_key_pem, load_or_create_secureboot_key(settings).cert_pem)
