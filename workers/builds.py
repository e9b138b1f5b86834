"""Finished builds in the store: build once per plan key, then serve the stored bytes.

Keys: the asset at `blobs/sha256/<hex>`, then `builds/<plan key>/manifest.json` (the commit
point, written last) with the file name, size, sha256, sha512, content type, the plan's
canonical JSON and the build time. `ensure_built` is what the CLI, the web service and (later)
the Celery workers call, so every caller builds through the same code.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from workers.build import Progress, build_asset
from workers.plans import Plan
from workers.releases.catalog import blob_key
from workers.secureboot import Signer
from workers.store import ObjectNotFound, Store

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

    @property
    def blob(self) -> str:
        return blob_key(self.sha256)


def build_manifest_key(plan_key: str) -> str:
    return f"{BUILDS_PREFIX}{plan_key}/manifest.json"


def load_built(store: Store, plan: Plan) -> BuiltAsset | None:
    """The finished build of `plan`, or None when there is none (or its blob went missing)."""
    try:
        doc = json.loads(store.get_bytes(build_manifest_key(plan.key)))
    except ObjectNotFound:
        return None
    built = BuiltAsset(**{k: doc[k] for k in BuiltAsset.__dataclass_fields__})
    try:
        if store.size(built.blob) != built.size:
            return None
    except ObjectNotFound:
        return None
    return built


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


def ensure_built(
    store: Store,
    plan: Plan,
    work_root: Path,
    progress: Progress = _quiet,
    signer: Signer | None = None,
) -> BuiltAsset:
    """The stored build of `plan`, building and storing it first when needed.

    `signer`: the SecureBoot key material (`plan.signer(settings)`) for SecureBoot plans."""
    existing = load_built(store, plan)
    if existing is not None:
        return existing
    work_root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="build-", dir=work_root) as tmp:
        path = build_asset(plan, store, Path(tmp), progress, signer)
        sha256, sha512, size = _hashes(path)
        built = BuiltAsset(
            key=plan.key,
            filename=plan.profile.path,
            size=size,
            sha256=sha256,
            sha512=sha512,
            content_type=content_type_for(plan.profile.path),
            seconds=round(time.monotonic() - started, 3),
        )
        if not store.exists(built.blob):
            store.put_file(built.blob, path, content_type=built.content_type)
    doc: dict[str, Any] = {**asdict(built), "plan": plan.to_json()}
    store.put_bytes(
        build_manifest_key(plan.key),
        json.dumps(doc, sort_keys=True, indent=2).encode() + b"\n",
        content_type="application/json",
    )
    return built
