"""The SBOM and the signed provenance of each installer image, attached in the registry as OCI
referrers of its platform image manifest (the one built from that installer asset).

- SBOM: an OCI 1.1 artifact manifest, `artifactType: application/spdx+json` (as `oras attach
  --artifact-type application/spdx+json` and syft-made SBOM referrers), the empty config
  (`application/vnd.oci.empty.v1+json`, `{}`), one `application/spdx+json` layer holding the
  build's SBOM as served at `<asset>.spdx.json`, and the image manifest as `subject`;
- provenance: cosign's attestation layout (`specs/ATTESTATION_SPEC.md`): one
  `application/vnd.dsse.envelope.v1+json` layer holding a DSSE envelope signed with the
  factory's key, annotated with its `predicateType`; its statement is the asset's, with the
  image manifest added as the first subject (so `cosign verify-attestation --key
  signing-key.pub --type slsaprovenance1 <repo>@<manifest digest>` matches it). Also tagged
  `sha256-<manifest hex>.att`, the tag cosign looks attestations up by.

`oras discover <repo>@<digest>` (referrers API, `GET /v2/<name>/referrers/<digest>`) lists
both. Deterministic: the same build and key give the same digests.
"""

from __future__ import annotations

import json

from workers.evidence.provenance import PREDICATE_TYPE, sign_statement
from workers.evidence.stored import SBOM_TYPE, load_document
from workers.keys.signing import SigningKey
from workers.outputs.finished_builds import BuiltAsset
from workers.registry import content, oci
from workers.registry.names import Repository
from workers.store import Store

EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
DSSE = "application/vnd.dsse.envelope.v1+json"
PREDICATE_ANNOTATION = "predicateType"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"


def attestation_tag(digest_hex: str) -> str:
    """cosign's tag for the attestations of the manifest `sha256:<digest_hex>`."""
    return f"sha256-{digest_hex}.att"


def attach_evidence(
    store: Store,
    repo: Repository,
    key: SigningKey,
    identity: str,
    image: oci.Descriptor,
    built: BuiltAsset,
) -> None:
    """Attach `built`'s SBOM and provenance to `image` (a platform image manifest of `repo`,
    named `identity`); nothing when the build has none stored."""
    sbom = load_document(store, built.sbom_sha256)
    statement = load_document(store, built.provenance_sha256)
    if sbom is None or statement is None:
        return
    subject = oci.Descriptor(image.media_type, image.digest, image.size)
    _attach(store, repo, subject, SBOM_TYPE, oci.describe(SBOM_TYPE, sbom), sbom)
    envelope = sign_statement(key, _image_statement(statement, identity, image))
    layer = oci.describe(
        DSSE,
        envelope,
        annotations={COSIGN_SIGNATURE_ANNOTATION: "", PREDICATE_ANNOTATION: PREDICATE_TYPE},
    )
    manifest = _attach(store, repo, subject, DSSE, layer, envelope)
    content.write_tag(store, repo, attestation_tag(image.hex), content.TagRecord(manifest))


def _image_statement(statement: bytes, identity: str, image: oci.Descriptor) -> bytes:
    """The asset's statement with the image manifest as its first subject."""
    document = json.loads(statement)
    document["subject"] = [
        {"name": identity, "digest": {"sha256": image.hex}},
        *document["subject"],
    ]
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _attach(
    store: Store,
    repo: Repository,
    subject: oci.Descriptor,
    artifact_type: str,
    layer: oci.Descriptor,
    data: bytes,
) -> oci.Descriptor:
    """Store one artifact manifest (empty config, `layer` holding `data`) referring to
    `subject`, and record it as its referrer (replacing an older one of that type)."""
    config = oci.describe(EMPTY_CONFIG, EMPTY)
    manifest = oci.encode(
        oci.image_manifest(config, [layer], artifact_type=artifact_type, subject=subject)
    )
    descriptor = oci.describe(oci.MANIFEST, manifest, artifact_type=artifact_type)
    content.put_document(store, config, EMPTY)
    content.put_document(store, layer, data)
    content.put_document(store, descriptor, manifest)
    content.record_blob(store, repo, config)
    content.record_blob(store, repo, layer)
    content.record_manifest(store, repo, descriptor)
    content.replace_referrers(store, repo, subject.hex, descriptor)
    return descriptor
