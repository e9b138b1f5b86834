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
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workers.hashing import hash_file
from workers.keys.signing import SigningKey
from workers.pipeline.progress import StageClock
from workers.planning.asset_kinds import content_type_for
from workers.planning.plans import Plan
from workers.releases.stored import blob_key
from workers.store import ObjectNotFound, Store

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
    if built is None:
        return None
    try:
        if store.size(built.blob) != built.size:
            return None
    except ObjectNotFound:
        return None
    return built


def read_manifest(store: Store, key: str) -> BuiltAsset | None:
    """The build manifest of `key` as written, without looking at its blob."""
    try:
        doc = json.loads(store.get_bytes(build_manifest_key(key)))
    except ObjectNotFound:
        return None
    return BuiltAsset(**{k: doc[k] for k in BuiltAsset.__dataclass_fields__ if k in doc})


def discard_build(store: Store, built: BuiltAsset, reason: str) -> None:
    """Forget a build whose stored bytes are wrong: the manifest first (so nobody is sent to
    the blob any more; unless it was rebuilt meanwhile with other bytes), then the blob (so
    the rebuild uploads it again)."""
    log.error(
        "discarding build %s (%s, blob %s): %s", built.key, built.filename, built.blob, reason
    )
    current = read_manifest(store, built.key)
    if current is not None and current.sha256 == built.sha256:
        store.delete(build_manifest_key(built.key))
    store.delete(built.blob)


def publish_build(
    store: Store,
    plan: Plan,
    path: Path,
    started: float,
    clock: StageClock,
    signing_key: SigningKey | None,
) -> BuiltAsset:
    """Store the built file `path` as the build of `plan`: the blob under its digest (unless
    it is there already), then the manifest, the commit point. `started` is when the build
    began (`time.monotonic()`); `clock` reports the upload stage and gives the seconds each
    stage took."""
    clock("upload", 0)
    hashes = hash_file(path, ("sha256", "sha512"))
    sha256, sha512, size = hashes.sha256, hashes.hexdigests["sha512"], hashes.size
    content_type = content_type_for(plan.profile.path)
    if not store.exists(blob_key(sha256)):
        store.put_file(blob_key(sha256), path, content_type=content_type)
    clock("upload", 100)
    built = BuiltAsset(
        key=plan.key,
        filename=plan.profile.path,
        size=size,
        sha256=sha256,
        sha512=sha512,
        content_type=content_type,
        seconds=round(time.monotonic() - started, 3),
        built_at=int(time.time()),
        stages=clock.finish(),
        sigstore_bundle=None if signing_key is None else signing_key.sigstore_bundle(sha256),
    )
    doc: dict[str, Any] = {**asdict(built), "plan": plan.to_json()}
    store.put_bytes(
        build_manifest_key(plan.key),
        json.dumps(doc, sort_keys=True, indent=2).encode() + b"\n",
        content_type="application/json",
    )
    if not store.exists(blob_key(sha256)):
        # Evicted (`workers.outputs.storage_budget`) between the check above and the manifest:
        # put it back.
        store.put_file(blob_key(sha256), path, content_type=content_type)
    return built
