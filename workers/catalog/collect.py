"""Garbage collection of uploads nobody uses: extensions and overlays, audited.

The rule (README "Storage"): an uploaded extension or overlay (never a bundled one) is
**unused** when
- no release stored now offers it in its catalog: it was withdrawn, a higher version
  superseded it, or no stored release accepts its compatibility range — so no schematic
  that names it without a version can resolve to it from now on; and
- (extensions) no recorded resolution names it (`references/<digest>/…`: every schematic
  that ever planned with it, whatever release) and no stored schematic pins its name and
  version (`pins/…`), so nothing an existing schematic builds, or will build, is it;
- (tars) a tar without its record (an upload that stopped before its commit point) at
  least `ORPHAN_MIN_AGE` old.

An unused upload is marked (`unused/<kind>/<digest>`, the time it was first seen unused)
and deleted by the first run at least `IMAGE_FACTORY_UPLOAD_GRACE_SECONDS` later if it is
still unused then; one that is used again in between loses its mark. The record goes first
(the extension stops existing, the change log tells every process), then what uses it is
looked at once more: a plan or schematic that took it in that instant gets it back, record
and log entry. Only then the tar goes. Each deletion is an audit event.

Run by the embedded default's hourly housekeeping and by `image-factory extension collect`
(the scaled mode: from cron or a timer on one machine; two runs at once only repeat
deletions).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from workers.catalog.extensions import catalog_for, list_extension_records
from workers.catalog.index import added, log_change, removed
from workers.catalog.overlays import list_overlay_records, overlay_catalog_for
from workers.catalog.records import (
    EXTENSIONS_PREFIX,
    ORIGIN_UPLOAD,
    OVERLAYS_PREFIX,
    ExtensionRecord,
    OverlayRecord,
    record_to_json,
)
from workers.catalog.resolutions import references_to
from workers.catalog.withdrawn import withdrawn_key
from workers.releases.stored import list_arches, list_versions
from workers.store import ObjectNotFound, Store
from workers.tenancy.audit import record_event

UNUSED_PREFIX = "unused/"
# A tar without a record is an upload in progress for at least this long after it is written.
ORPHAN_MIN_AGE = 3600.0


@dataclass(frozen=True)
class Collected:
    """One deleted upload: `kind` "extension", "overlay" or "orphan" (a tar without a
    record), `subject` its name and version (or its key)."""

    kind: str
    subject: str
    digest: str


def _unused_extensions(store: Store) -> list[ExtensionRecord]:
    offered = {
        record.digest
        for version in list_versions(store)
        for arch in list_arches(store, version)
        for record in catalog_for(store, version, arch)
    }
    return [
        record
        for record in list_extension_records(store)
        if record.origin == ORIGIN_UPLOAD
        and record.digest not in offered
        and not references_to(store, record)
    ]


def _unused_overlays(store: Store) -> list[OverlayRecord]:
    offered = {
        record.digest
        for version in list_versions(store)
        for record in overlay_catalog_for(store, version)
    }
    return [
        record
        for record in list_overlay_records(store)
        if record.origin == ORIGIN_UPLOAD and record.digest not in offered
    ]


def _orphan_tars(store: Store, now: float) -> list[str]:
    orphans = []
    for prefix in (EXTENSIONS_PREFIX, OVERLAYS_PREFIX):
        keys = set(store.list(prefix))
        for key in sorted(keys):
            if not key.endswith(".tar") or key.removesuffix(".tar") + ".json" in keys:
                continue
            try:
                modified = store.stat(key).modified
            except ObjectNotFound:
                continue
            if now - modified >= ORPHAN_MIN_AGE:
                orphans.append(key)
    return orphans


def _mark_key(kind: str, digest: str) -> str:
    return f"{UNUSED_PREFIX}{kind}/{digest}"


def _unused_since(store: Store, key: str, now: float) -> float:
    """When the upload under mark `key` was first seen unused (now, if this is the first)."""
    store.put_new(key, f"{now}\n".encode(), "text/plain")
    try:
        return float(store.get_bytes(key).decode())
    except (ObjectNotFound, ValueError):
        return now


def _delete_extension(store: Store, record: ExtensionRecord) -> bool:
    """Delete an unused extension, record first; False when something took it meanwhile."""
    store.delete(record.record_key)
    log_change(store, removed(record.digest))
    if references_to(store, record):
        store.put_bytes(record.record_key, record_to_json(record), "application/json")
        log_change(store, added(record))
        return False
    store.delete(record.tar_key)
    store.delete(withdrawn_key(record.digest))
    return True


def _delete_overlay(store: Store, record: OverlayRecord) -> bool:
    store.delete(record.record_key)
    store.delete(record.tar_key)
    return True


def collect_unused_uploads(
    store: Store, grace: float, actor: str, now: float | None = None
) -> list[Collected]:
    """Mark what is unused now, delete what has been unused for `grace` seconds (audited as
    `actor`), drop the marks of what is used again; what was deleted."""
    now = time.time() if now is None else now
    candidates: dict[str, tuple[Collected, object]] = {}
    for ext in _unused_extensions(store):
        found = Collected("extension", f"{ext.full_name} {ext.version}", ext.digest)
        candidates[_mark_key("extension", ext.digest)] = (found, ext)
    for overlay in _unused_overlays(store):
        found = Collected("overlay", f"{overlay.image} {overlay.version}", overlay.digest)
        candidates[_mark_key("overlay", overlay.digest)] = (found, overlay)
    for key in _orphan_tars(store, now):
        digest = key.rsplit("/", 1)[1].removesuffix(".tar")
        candidates[_mark_key("orphan", digest)] = (Collected("orphan", key, digest), key)
    for mark in store.list(UNUSED_PREFIX):
        if mark not in candidates:
            store.delete(mark)  # used again (or gone): its grace starts over next time
    collected = []
    for mark, (found, what) in sorted(candidates.items()):
        if now - _unused_since(store, mark, now) < grace:
            continue
        if isinstance(what, ExtensionRecord):
            deleted = _delete_extension(store, what)
        elif isinstance(what, OverlayRecord):
            deleted = _delete_overlay(store, what)
        else:
            store.delete(str(what))
            deleted = True
        store.delete(mark)
        if deleted:
            record_event(store, actor, f"{found.kind}.collect", found.subject, found.digest)
            collected.append(found)
    return collected
