"""Check a downloaded asset against everything the factory publishes for it.

Given the asset's bytes (its sha256), its `.sha256` line, `.sigstore.json` bundle, `.spdx.json`
SBOM and `.intoto.jsonl` provenance, and the factory's public key, `verify_documents` checks:
1. the checksum line names the asset's sha256;
2. the Sigstore bundle's digest is the asset's and its ECDSA signature verifies with the key;
3. the provenance envelope's DSSE signature verifies with the key, it is an in-toto statement
   with a SLSA provenance v1 predicate, and its subject is the asset's sha256;
4. the SBOM is valid SPDX 2.3 (`spdx-tools` validator), describes the asset's sha256, and its
   own sha256 is the one the signed provenance lists as its byproduct.
Each passed check is one line of the result; the first failure raises `VerificationFailed`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from workers.evidence.provenance import PREDICATE_TYPE, InvalidProvenance, open_envelope
from workers.evidence.sbom import InvalidSbom, asset_sha256, check_sbom


class VerificationFailed(Exception):
    """One check did not pass; the message says which and why."""


@dataclass(frozen=True)
class Published:
    """What the factory publishes beside an asset, as fetched (bytes as served)."""

    checksum: bytes
    bundle: bytes
    sbom: bytes
    provenance: bytes


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as error:
        raise VerificationFailed(f"the public key is not a PEM public key ({error})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise VerificationFailed("the public key is not an ECDSA key")
    return key


def verify_documents(
    sha256: str, published: Published, public_key: ec.EllipticCurvePublicKey
) -> list[str]:
    """Every check in order (see the module docstring); the lines saying what was verified."""
    verified = [_checksum(sha256, published.checksum)]
    verified.append(_bundle(sha256, published.bundle, public_key))
    statement = _provenance(sha256, published.provenance, public_key)
    verified.append(
        f"provenance: DSSE signature verified, subject sha256 {sha256}, build key "
        f"{statement['predicate']['buildDefinition']['externalParameters'].get('buildKey')}"
    )
    sbom_sha256 = hashlib.sha256(published.sbom).hexdigest()
    listed = [
        b.get("digest", {}).get("sha256")
        for b in statement["predicate"].get("runDetails", {}).get("byproducts", [])
    ]
    if sbom_sha256 not in listed:
        raise VerificationFailed(
            f"SBOM: its sha256 {sbom_sha256} is not the one the signed provenance lists "
            f"({', '.join(str(x) for x in listed) or 'none'}); the SBOM was altered"
        )
    try:
        document = check_sbom(published.sbom)
    except InvalidSbom as error:
        raise VerificationFailed(f"SBOM: not valid SPDX 2.3: {error}") from None
    described = asset_sha256(document)
    if described != sha256:
        raise VerificationFailed(f"SBOM: describes sha256 {described}, the file is {sha256}")
    verified.append(
        f"SBOM: valid SPDX 2.3, {len(document.packages)} packages and {len(document.files)} "
        "files, describes this file, digest signed in the provenance"
    )
    return verified


def _checksum(sha256: str, line: bytes) -> str:
    listed = line.decode(errors="replace").split()[:1]
    if listed != [sha256]:
        raise VerificationFailed(
            f"checksum: the file's sha256 is {sha256}, the .sha256 file says "
            f"{listed[0] if listed else 'nothing'}"
        )
    return f"checksum: sha256 {sha256} matches"


def _bundle(sha256: str, data: bytes, public_key: ec.EllipticCurvePublicKey) -> str:
    try:
        bundle: Any = json.loads(data)
        message = bundle["messageSignature"]
        digest = base64.b64decode(message["messageDigest"]["digest"], validate=True)
        signature = base64.b64decode(message["signature"], validate=True)
    except (ValueError, KeyError, TypeError) as error:
        raise VerificationFailed(f"signature: not a Sigstore bundle ({error})") from None
    if digest.hex() != sha256:
        raise VerificationFailed(f"signature: the bundle signs sha256 {digest.hex()}, not {sha256}")
    try:
        public_key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise VerificationFailed("signature: the bundle's signature does not verify") from None
    return "signature: Sigstore bundle signature verified with the factory's key"


def _provenance(
    sha256: str, envelope: bytes, public_key: ec.EllipticCurvePublicKey
) -> dict[str, Any]:
    try:
        statement = open_envelope(envelope, public_key)
    except InvalidProvenance as error:
        raise VerificationFailed(f"provenance: {error}") from None
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise VerificationFailed(f"provenance: predicate is not {PREDICATE_TYPE}")
    subjects = [s.get("digest", {}).get("sha256") for s in statement.get("subject", [])]
    if sha256 not in subjects:
        raise VerificationFailed(
            f"provenance: its subject is sha256 {', '.join(map(str, subjects))}, "
            f"the file is {sha256}"
        )
    return statement
