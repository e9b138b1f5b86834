"""OCI image-spec documents: media types, descriptors and the JSON bytes that get digested.

Every document is encoded once, compactly and with keys in a fixed order, and stored under
the sha256 of exactly those bytes; the registry serves the stored bytes, never a re-encoding,
so the digest a client computes always matches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MANIFEST_TYPES = frozenset({INDEX, MANIFEST})


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (`mediaType`, `digest`, `size`, optional extras)."""

    media_type: str
    digest: str  # "sha256:<hex>"
    size: int
    platform: Mapping[str, str] | None = None
    artifact_type: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def hex(self) -> str:
        return self.digest.removeprefix("sha256:")

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform:
            doc["platform"] = dict(self.platform)
        if self.artifact_type:
            doc["artifactType"] = self.artifact_type
        if self.annotations:
            doc["annotations"] = dict(sorted(self.annotations.items()))
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Descriptor:
        return cls(
            media_type=str(doc["mediaType"]),
            digest=str(doc["digest"]),
            size=int(doc["size"]),
            platform=doc.get("platform"),
            artifact_type=str(doc.get("artifactType", "")),
            annotations=doc.get("annotations") or {},
        )


def encode(document: Mapping[str, Any]) -> bytes:
    """The bytes of a document: compact JSON, keys in the order the document was built."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def describe(media_type: str, data: bytes, **extra: Any) -> Descriptor:
    return Descriptor(media_type, "sha256:" + hashlib.sha256(data).hexdigest(), len(data), **extra)


def image_manifest(
    config: Descriptor,
    layers: Sequence[Descriptor],
    *,
    artifact_type: str = "",
    subject: Descriptor | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": MANIFEST}
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["config"] = config.to_json()
    doc["layers"] = [layer.to_json() for layer in layers]
    if subject is not None:
        doc["subject"] = subject.to_json()
    return doc


def image_index(manifests: Sequence[Descriptor]) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [m.to_json() for m in manifests],
    }
