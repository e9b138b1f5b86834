"""Finished builds in the store: build once per plan key, then serve the stored bytes.

Keys: the asset at `blobs/sha256/<hex>`, then `builds/<plan key>/manifest.json` (the commit
point, written last) with the file name, size, sha256, sha512, content type, the Sigstore
bundle (signed once, here, when a signing key is given), the plan's canonical JSON, when it
was built and how long each stage took. `ensure_built` is what the CLI and the Celery workers
call, so every caller builds through the same code. `discard_build` removes a build whose
blob no longer matches its digest, so the next request rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from workers.assembly.run import DEFAULT_TIMEOUT, sandboxed, tool_timeout
from workers.build import Progress, build_asset
from workers.evidence.documents import describe_build, store_evidence
from workers.plans import Plan
from workers.releases.catalog import blob_key
from workers.secureboot import Signer
from workers.signing import SigningKey
from workers.store import ObjectNotFound, Store
from workers.workdirs import build_workdir

log = logging.getLogger(__name__)

BUILDS_PREFIX = "builds/"
_CHUNK = 1 << 20

# Upstream `internal/mime`: a few fixed types, then Go's extension table.
_CONTENT_TYPES = {
    ".efi": "application/efi",
    ".iso": "application/x-iso9660-image",
    ".xz": "application/x-xz",
    ".gz": "application/gzip",
    ".qcow2": "application/x-qemu-disk",
    ".tar": "application/x-tar",
    ".zst": "application/zstd",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def content_type_for(path: str) -> str:
    """The Content-Type upstream sends for an asset path (decided by the path's suffix)."""
    return _CONTENT_TYPES.get(PurePosixPath(path).suffix, DEFAULT_CONTENT_TYPE)


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
    # published before they existed, or without the inputs to describe (`publish_build`).
    sbom_sha256: str = ""
    provenance_sha256: str = ""

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


def _hashes(path: Path) -> tuple[str, str, int]:
    sha256, sha512, size = hashlib.sha256(), hashlib.sha512(), 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            sha256.update(chunk)
            sha512.update(chunk)
            size += len(chunk)
    return sha256.hexdigest(), sha512.hexdigest(), size


def _quiet(stage: str, percent: int) -> None:
    """Progress sink that shows nothing."""


class StageClock:
    """Passes progress on and notes how long each stage ran (first to last report)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._current = ""
        self._since = time.monotonic()
        self.stages: dict[str, float] = {}

    def __call__(self, stage: str, percent: int) -> None:
        now = time.monotonic()
        if stage != self._current:
            self._close(now)
            self._current, self._since = stage, now
        self._progress(stage, percent)

    def _close(self, now: float) -> None:
        if self._current:
            spent = self.stages.get(self._current, 0.0) + now - self._since
            self.stages[self._current] = round(spent, 3)

    def finish(self) -> dict[str, float]:
        self._close(time.monotonic())
        self._current = ""
        return self.stages


def ensure_built(
    store: Store,
    plan: Plan,
    work_root: Path,
    progress: Progress = _quiet,
    signer: Signer | None = None,
    signing_key: SigningKey | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> BuiltAsset:
    """The stored build of `plan`, building and storing it first when needed.

    The build runs in its own locked `build-*` directory under `work_root`, and every tool it
    runs is sandboxed to that directory and stopped after `timeout` seconds
    (`Settings.tool_timeout`).
    `signer`: the SecureBoot key material (`plan.signer(settings)`) for SecureBoot plans.
    `signing_key`: the asset signing key; the manifest then carries the asset's Sigstore
    bundle, so it is signed once per build rather than once per download."""
    existing = load_built(store, plan)
    if existing is not None:
        return existing
    started = time.monotonic()
    clock = StageClock(progress)
    with build_workdir(work_root) as workdir, tool_timeout(timeout), sandboxed(workdir):
        path = build_asset(plan, store, workdir, clock, signer)
        return publish_build(store, plan, path, started, clock, signing_key, workdir / "evidence")


def publish_build(
    store: Store,
    plan: Plan,
    path: Path,
    started: float,
    clock: StageClock,
    signing_key: SigningKey | None,
    evidence_dir: Path | None = None,
) -> BuiltAsset:
    """Store the built file `path` as the build of `plan`: the blob under its digest (unless
    it is there already), its SBOM and provenance statement (made in the new directory
    `evidence_dir`; none without it), then the manifest, the commit point. `started` is when
    the build began (`time.monotonic()`); `clock` reports the upload stage and gives the
    seconds each stage took."""
    clock("upload", 0)
    sha256, sha512, size = _hashes(path)
    content_type = content_type_for(plan.profile.path)
    evidence = None
    if evidence_dir is not None:
        evidence = describe_build(store, plan, evidence_dir, plan.profile.path, sha256, sha512)
        store_evidence(store, evidence)
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
        sbom_sha256=evidence.sbom_sha256 if evidence is not None else "",
        provenance_sha256=evidence.statement_sha256 if evidence is not None else "",
    )
    doc: dict[str, Any] = {**asdict(built), "plan": plan.to_json()}
    store.put_bytes(
        build_manifest_key(plan.key),
        json.dumps(doc, sort_keys=True, indent=2).encode() + b"\n",
        content_type="application/json",
    )
    if not store.exists(blob_key(sha256)):
        # Evicted (`workers.storage`) between the check above and the manifest: put it back.
        store.put_file(blob_key(sha256), path, content_type=content_type)
    return built
