"""Keeping the store within bounds: free space, and the budget for built assets.

- **Free space** (`check_free_space`): the local store's filesystem must keep
  `IMAGE_FACTORY_MIN_FREE_BYTES` free; below it a new build or upload is refused with
  `InsufficientStorage` (507) and `/readyz` answers 503. A write that still runs out of space
  fails whole (the local store writes a temp file renamed into place). An S3 store has no
  free space to look at: its own errors answer for it (503).
- **Budget** (`evict_to_budget`, run by a worker after each build it publishes): when the
  distinct blobs of finished builds add up to more than `IMAGE_FACTORY_ASSET_BUDGET_BYTES`,
  the least recently downloaded builds are evicted (a build never downloaded counts from
  when it was built) until they fit. The manifest goes first, so nobody is sent to a blob
  about to go; the blob goes only when no other build manifest and no release references it
  (blobs are stored by digest, so identical bytes are one blob, and a release's kernel is
  the same blob as the `kernel-<arch>` asset). An evicted asset is simply built again when
  asked for.
- **Last download** (`DownloadRecorder`): `builds/<key>/last-download` holds the time of
  the last download, rewritten at most once per `DOWNLOAD_STAMP_SECONDS` per process: coarse,
  and one small write per asset and hour at most.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass

from workers.backends import Backend
from workers.errors import InsufficientStorage
from workers.outputs.finished_builds import BUILDS_PREFIX, build_manifest_key, read_manifest
from workers.releases.stored import MANIFEST_NAME, RELEASES_PREFIX, blob_key, load_release
from workers.store import ObjectNotFound, Store

log = logging.getLogger(__name__)

DOWNLOAD_STAMP_SECONDS = 3600
_REMEMBERED_STAMPS = 10_000


def check_free_space(backend: Backend, min_free_bytes: int) -> None:
    """InsufficientStorage when the local store's filesystem has less than `min_free_bytes`
    free (`Settings.min_free_bytes`)."""
    if backend.objects_in_s3:
        return
    backend.data_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(backend.data_dir).free
    if free < min_free_bytes:
        raise InsufficientStorage(
            f"the store is nearly full ({free} bytes free, it keeps "
            f"{min_free_bytes} free); try again later"
        )


def last_download_key(plan_key: str) -> str:
    return f"{BUILDS_PREFIX}{plan_key}/last-download"


class DownloadRecorder:
    """Writes a build's last-download time, at most once per DOWNLOAD_STAMP_SECONDS here."""

    def __init__(self) -> None:
        self._written: dict[str, float] = {}
        self._guard = threading.Lock()

    def record(self, store: Store, plan_key: str) -> None:
        now = time.monotonic()
        with self._guard:
            if now - self._written.get(plan_key, -DOWNLOAD_STAMP_SECONDS) < DOWNLOAD_STAMP_SECONDS:
                return
            if len(self._written) >= _REMEMBERED_STAMPS:
                self._written.clear()
            self._written[plan_key] = now
        store.put_bytes(last_download_key(plan_key), f"{int(time.time())}\n".encode(), "text/plain")


@dataclass(frozen=True)
class _StoredBuild:
    key: str
    sha256: str
    size: int
    last_used: int


def _last_used(store: Store, plan_key: str, built_at: int) -> int:
    try:
        return int(store.get_bytes(last_download_key(plan_key)).decode().strip())
    except (ObjectNotFound, ValueError):
        return built_at


def _manifest_keys(store: Store) -> set[str]:
    return {k for k in store.list(BUILDS_PREFIX) if k.endswith("/manifest.json")}


def _plan_key(manifest_key: str) -> str:
    return manifest_key.removeprefix(BUILDS_PREFIX).split("/", 1)[0]


def _stored_builds(store: Store, manifest_keys: set[str]) -> list[_StoredBuild]:
    found = []
    for manifest_key in manifest_keys:
        plan_key = _plan_key(manifest_key)
        built = read_manifest(store, plan_key)
        if built is not None:
            last = _last_used(store, plan_key, built.built_at)
            found.append(_StoredBuild(plan_key, built.sha256, built.size, last))
    return found


def _release_blobs(store: Store) -> set[str]:
    digests: set[str] = set()
    for key in store.list(RELEASES_PREFIX):
        parts = key.removeprefix(RELEASES_PREFIX).split("/")
        if len(parts) == 3 and parts[2] == MANIFEST_NAME:
            release = load_release(store, parts[0], parts[1])
            digests.update(entry.sha256 for entry in release.files.values())
    return digests


def evict_to_budget(store: Store, budget: int, keep: str = "") -> list[str]:
    """Evict the least recently downloaded builds until the rest fit in `budget` bytes
    (never build `keep`, the one just made); the evicted plan keys."""
    if budget <= 0:
        return []
    seen = _manifest_keys(store)
    builds = _stored_builds(store, seen)
    sizes = {b.sha256: b.size for b in builds}
    total = sum(sizes.values())
    evicted: list[str] = []
    protected = _release_blobs(store) if total > budget else set()
    for victim in sorted(builds, key=lambda b: (b.last_used, b.key)):
        if total <= budget:
            break
        if victim.key == keep:
            continue
        # The manifest first: from now on nobody is sent to the blob.
        store.delete(build_manifest_key(victim.key))
        store.delete(last_download_key(victim.key))
        evicted.append(victim.key)
        log.info("evicted build %s (%s bytes): over the asset budget", victim.key, victim.size)
        gone = set(evicted)
        still_used = {b.sha256 for b in builds if b.key not in gone}
        # Builds published since the scan may share the blob too.
        new = _manifest_keys(store) - seen
        still_used.update(b.sha256 for b in _stored_builds(store, new))
        if victim.sha256 in still_used or victim.sha256 in protected:
            continue
        store.delete(blob_key(victim.sha256))
        total -= victim.size
    return evicted
