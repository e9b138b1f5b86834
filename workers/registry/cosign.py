"""cosign "simple signing" signatures for manifests, as `cosign sign --key` writes them.

The signature is an OCI image manifest whose one layer is the payload
`{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},
"type":"cosign container image signature"},"optional":null}` (media type
`application/vnd.dev.cosign.simplesigning.v1+json`), with the base64 ECDSA-P256-SHA256
signature over the payload bytes in the layer annotation `dev.cosignproject.cosign/signature`.
It is published under the tag `sha256-<hex>.sig` (cosign's lookup) and, through its
`subject`, as an OCI 1.1 referrer of the signed manifest.

`cosign verify` checks the signature and that `docker-manifest-digest` is the digest it
resolved; it does not compare `docker-reference` (containers/image `signedIdentity` policies
do). We put the factory's public name there (`IMAGE_FACTORY_EXTERNAL_URL`'s host), never a
request's Host header, so one signature serves every client and the bytes stay stable.

Signatures are deterministic ECDSA (RFC 6979): the same key and payload give the same
signature, so re-publishing yields the same signature manifest.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from workers.keys.signing import SigningKey
from workers.registry import oci

PAYLOAD = "application/vnd.dev.cosign.simplesigning.v1+json"
ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PAYLOAD_TYPE = "cosign container image signature"
# ggcr's zero time, which cosign's signature images carry as `created`.
ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Signature:
    """The documents of one signature: payload and config blobs, then the manifest."""

    payload: bytes
    config: bytes
    manifest: bytes
    layer: oci.Descriptor
    config_descriptor: oci.Descriptor
    descriptor: oci.Descriptor  # the signature manifest's, as a referrer


def payload(docker_reference: str, manifest_digest: str) -> bytes:
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": None,
    }
    return oci.encode(document)


def sign_payload(key: SigningKey, data: bytes) -> bytes:
    """DER ECDSA-P256-SHA256 over `data`, deterministic (RFC 6979)."""
    return key.private_key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


def signature_for(key: SigningKey, docker_reference: str, subject: oci.Descriptor) -> Signature:
    """The signature manifest for `subject` in the repository `docker_reference`."""
    body = payload(docker_reference, subject.digest)
    signature = base64.b64encode(sign_payload(key, body)).decode()
    layer = oci.describe(PAYLOAD, body, annotations={SIGNATURE_ANNOTATION: signature})
    config = oci.encode(
        {
            "architecture": "",
            "created": ZERO_TIME,
            "history": [{"created": ZERO_TIME}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
            "config": {},
        }
    )
    config_descriptor = oci.describe(oci.CONFIG, config)
    manifest = oci.encode(
        oci.image_manifest(
            config_descriptor,
            [layer],
            artifact_type=ARTIFACT_TYPE,
            subject=oci.Descriptor(subject.media_type, subject.digest, subject.size),
        )
    )
    descriptor = oci.describe(oci.MANIFEST, manifest, artifact_type=ARTIFACT_TYPE)
    return Signature(body, config, manifest, layer, config_descriptor, descriptor)
