"""`<asset>.intoto.jsonl`: an in-toto Statement v1 with a SLSA provenance v1 predicate, in a DSSE
envelope signed with the factory's signing key (the key of `/oci/cosign/signing-key.pub`).

The statement names the asset (file name + sha256) as its subject; the predicate's
`buildDefinition` has the build key as `externalParameters.buildKey`, the asset path and
parameters (kind, arch, version, schematic-relevant fields) and the resolved inputs
(`resolvedDependencies`: the release manifest and every release file, extension, overlay with
their sha256); `runDetails` names the builder (`builder.id` and the factory version) and lists
the SBOM as a byproduct, so its digest is covered by the signature.

The envelope is one JSON line (`.jsonl`, as `cosign verify-attestation` and in-toto tooling
read it). The signature is ECDSA-P256-SHA256 over DSSE's pre-authentication encoding
`PAE(payloadType, payload)`, deterministic (RFC 6979), so the same key and statement give the
same bytes; `openssl dgst -sha256 -verify signing-key.pub -signature sig.der pae.bin` checks it.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from workers.evidence.identity import BUILDER_ID, FACTORY_NAME, factory_version
from workers.keys.signing import SigningKey

if TYPE_CHECKING:  # web processes reach this module through the registry: no build inputs
    from workers.evidence.inputs import BuildInputs

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:image-factory:build-type:asset:v1"


class InvalidProvenance(ValueError):
    """An envelope that is malformed or whose signature does not verify."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature is over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def make_statement(
    inputs: BuildInputs, filename: str, sha256: str, sbom_name: str, sbom_sha256: str
) -> bytes:
    """The statement's canonical JSON (sorted keys, compact), the DSSE payload."""
    plan = inputs.plan
    release = inputs.release
    dependencies: list[dict[str, Any]] = [
        {
            "name": f"release {release.version}/{release.arch} manifest",
            "digest": {"sha256": release.digest},
        },
        *(
            {"name": f"release {release.version}/{name}", "digest": {"sha256": entry.sha256}}
            for name, entry in sorted(release.files.items())
            if name in inputs.release_files
        ),
        *(
            {
                "name": f"extension {layer.name}",
                "digest": {"sha256": layer.digest},
                "annotations": {"version": layer.version, "origin": layer.origin},
            }
            for layer in inputs.layers
        ),
    ]
    if plan.overlay is not None:
        dependencies.append(
            {
                "name": f"overlay {plan.overlay.name}",
                "digest": {"sha256": plan.overlay.digest},
                "annotations": {"version": plan.overlay.version},
            }
        )
    schematic = inputs.schematic
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": filename, "digest": {"sha256": sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "buildKey": plan.key,
                    "asset": filename,
                    "version": plan.version,
                    "schematic": schematic.version if schematic is not None else None,
                },
                "internalParameters": {"plan": plan.to_json()},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": {FACTORY_NAME: factory_version()},
                },
                "metadata": {"invocationId": plan.key},
                "byproducts": [{"name": sbom_name, "digest": {"sha256": sbom_sha256}}],
            },
        },
    }
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def sign_statement(key: SigningKey, statement: bytes) -> bytes:
    """The DSSE envelope (one JSON line + newline) carrying `statement`, signed by `key`."""
    signature = key.private_key.sign(
        pae(PAYLOAD_TYPE, statement), ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
    )
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(statement).decode(),
        "signatures": [{"keyid": key.public_key_hint, "sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def open_envelope(envelope: bytes, public_key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """The statement of a DSSE envelope whose signature `public_key` verifies, else
    InvalidProvenance saying why."""
    try:
        doc = json.loads(envelope)
        payload_type = doc["payloadType"]
        payload = base64.b64decode(doc["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in doc["signatures"]]
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidProvenance(f"the provenance is not a DSSE envelope ({error})") from None
    if payload_type != PAYLOAD_TYPE:
        raise InvalidProvenance(f"the provenance's payload type is {payload_type!r}")
    message = pae(payload_type, payload)
    for signature in signatures:
        try:
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        break
    else:
        raise InvalidProvenance("the provenance's signature does not verify with the key")
    statement = json.loads(payload)
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise InvalidProvenance("the provenance's payload is not an in-toto statement v1")
    return statement
