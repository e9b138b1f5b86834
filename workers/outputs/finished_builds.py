"""Finished builds in the store: build once per plan key, then serve the stored bytes.

Keys: the asset at `blobs/sha256/<hex>`, then `builds/<plan key>/manifest.json` (the commit
point, written last) with the file name, size, sha256, sha512, content type, the Sigstore
bundle (signed once, here, when a signing key is given), the plan's canonical JSON, when it
was built and how long each stage took. `ensure_built` is what the CLI and the Celery workers
call, so every caller builds through the same code. `discard_build` removes a build whose
blob no longer matches its digest, so the next request rebuilds it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.planning.plans import Plan
from workers.store import Store
from workers.store.objects import Content, Objects, blob_key

log = logging.getLogger(__name__)

BUILDS_PREFIX = "builds/"


@dataclass(frozen=True)
class BuiltAsset:
    key: str  # the plan key
    filename: str
    size: int
    sha256: str
    sha512: str
    content_type: str
    seconds: float
    # Manifests written before these fields existed load with the defaults.
    built_at: int = 0  # seconds since the epoch, when the manifest was written
    stages: Mapping[str, float] = field(default_factory=dict)  # seconds per progress stage
    sigstore_bundle: Mapping[str, Any] | None = None
    # The build's SBOM and provenance statement blobs (`workers.evidence`); "" for builds
    # published before they existed, or without the inputs to describe
    # (`workers.pipeline.build_once.publish_build`).
    sbom_sha256: str = ""
    provenance_sha256: str = ""
    # The statement signed into a DSSE envelope when published (where the key is); "" when
    # published without a signing key.
    provenance_envelope_sha256: str = ""

    @property
    def blob(self) -> str:
        return blob_key(self.sha256)


def build_manifest_key(plan_key: str) -> str:
    return f"{BUILDS_PREFIX}{plan_key}/manifest.json"


def load_built(store: Store, plan: Plan) -> BuiltAsset | None:
    """The finished build of `plan`, or None when there is none (or its blob went missing)."""
    return load_build(store, plan.key)


def load_build(store: Store, key: str) -> BuiltAsset | None:
    """The finished build with plan key `key`, or None (no manifest, or its blob is gone or
    has the wrong size)."""
    built = read_manifest(store, key)
    if built is None or not Objects(store).has(built.blob, Content(built.sha256, built.size)):
        return None
    return built


def read_manifest(store: Store, key: str) -> BuiltAsset | None:
    """The build manifest of `key` as written, without looking at its blob."""
    data = Objects(store).document(build_manifest_key(key))
    if data is None:
        return None
    doc = json.loads(data)
    return BuiltAsset(**{k: doc[k] for k in BuiltAsset.__dataclass_fields__ if k in doc})


def discard_build(store: Store, built: BuiltAsset, reason: str) -> None:
    """Forget a build whose stored bytes are wrong: the manifest first (so nobody is sent to
    the blob any more; unless it was rebuilt meanwhile with other bytes), then the blob (so
    the rebuild uploads it again)."""
    log.error(
        "discarding build %s (%s, blob %s): %s", built.key, built.filename, built.blob, reason
    )
    objects = Objects(store)
    current = read_manifest(store, built.key)
    if current is not None and current.sha256 == built.sha256:
        objects.remove(build_manifest_key(built.key))
    objects.remove(built.blob)
