"""Signing keys whose signatures this factory serves as they are: the public keys of the
bundles it imported (`airgap/signing-keys/<sha256 of the DER>.pem`).

An imported asset's `.sigstore.json` was signed on the exporting side at build time; the
importing factory has no private half of that key (a bundle carries public halves only), so
it serves the exporter's signature unchanged, verifiable with the bundle's
`keys/signing-key.pub`, instead of signing the asset again with its own key.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from workers.errors import InvalidRequest
from workers.keys.signing import public_key_hint
from workers.store import Store

TRUSTED_PREFIX = "airgap/signing-keys/"


def trust_signing_key(store: Store, pem: bytes) -> str:
    """Record the public key `pem` (an ECDSA PKIX PEM) as trusted; its Sigstore hint."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise InvalidRequest("bundle: the signing key is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidRequest("bundle: the signing key is not an ECDSA public key")
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    store.put_bytes(f"{TRUSTED_PREFIX}{hashlib.sha256(der).hexdigest()}.pem", pem, "text/plain")
    return public_key_hint(pem)


def trusted_hints(store: Store) -> frozenset[str]:
    """The Sigstore hints of every imported signing key."""
    hints = set()
    for key in store.list(TRUSTED_PREFIX):
        pem = store.get_bytes(key)
        if isinstance(serialization.load_pem_public_key(pem), ec.EllipticCurvePublicKey):
            hints.add(public_key_hint(pem))
    return frozenset(hints)
