"""Stored overlays: adding, the per-release overlay catalog, resolving a schematic's overlay,
and preparing one for assembly (ESP files with rendered templates, raw blob, GPT skip).

An overlay is listed for a version when its compatibility range accepts it; names are the
manifest names (upstream's overlay `name`), `image` is `<namespace>/<name>`. Several stored
overlays with one name: the highest version wins. Same name + version with other content is
refused.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from extensions.compat import parse_range
from extensions.errors import ExtensionError
from extensions.limits import DEFAULT_LIMITS, Limits
from extensions.overlay import PreparedOverlay, pack_overlay
from extensions.overlay import prepare_overlay as prepare_overlay_tar
from workers.catalog.extensions import fetch_verified
from workers.catalog.records import (
    CANONICAL_EPOCH,
    ORIGIN_UPLOAD,
    OVERLAYS_PREFIX,
    OverlayRecord,
    check_namespace,
    record_from_json,
    record_to_json,
    version_sort_key,
)
from workers.errors import InvalidRequest, NotFound
from workers.releases.stored import list_versions
from workers.releases.versions import normalize_version
from workers.store import ObjectNotFound, Store


def list_overlay_records(store: Store) -> list[OverlayRecord]:
    return [
        record_from_json(OverlayRecord, store.get_bytes(key))
        for key in store.list(OVERLAYS_PREFIX)
        if key.endswith(".json")
    ]


def _check_conflicts(store: Store, record: OverlayRecord) -> OverlayRecord | None:
    try:
        existing = record_from_json(OverlayRecord, store.get_bytes(record.record_key))
    except ObjectNotFound:
        existing = None
    if existing is not None:
        if (existing.image, existing.version) != (record.image, record.version):
            raise InvalidRequest(
                f"identical content is already stored as overlay {existing.image} "
                f"{existing.version} (sha256:{record.digest})"
            )
        return existing
    for other in list_overlay_records(store):
        if (other.name, other.version) == (record.name, record.version):
            raise InvalidRequest(
                f"overlay {record.name} {record.version} already exists with different content "
                f"(sha256:{other.digest}); give the new one another version"
            )
    return None


def add_overlay(
    store: Store,
    source_path: Path,
    namespace: str,
    epoch: int = CANONICAL_EPOCH,
    *,
    origin: str = ORIGIN_UPLOAD,
    label: str = "",
    require_compatible: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> OverlayRecord:
    """Validate and normalise overlay `source_path`, store it, return its record."""
    check_namespace(namespace)
    with tempfile.TemporaryDirectory(prefix="overlay-") as tmp:
        try:
            packed = pack_overlay(
                source_path,
                Path(tmp) / "overlay.tar",
                epoch=epoch,
                label=label or source_path.name,
                limits=limits,
            )
        except ExtensionError as exc:
            raise InvalidRequest(str(exc)) from None
        manifest = packed.manifest
        if require_compatible:
            versions = list_versions(store)
            if not any(parse_range(manifest.compatibility).accepts(v) for v in versions):
                raise InvalidRequest(
                    f'overlay {manifest.name} {manifest.version} requires version "'
                    f'{manifest.compatibility}", which no available version satisfies '
                    f"(available: {', '.join(versions) or 'none'})"
                )
        record = OverlayRecord(
            namespace=namespace,
            name=manifest.name,
            version=manifest.version,
            description=manifest.description,
            compatibility=manifest.compatibility,
            digest=packed.tar.digest,
            size=packed.tar.size,
            kernel_args=manifest.kernel_args,
            partition_offset=manifest.partition_offset,
            options=manifest.option_names,
            origin=origin,
        )
        existing = _check_conflicts(store, record)
        if existing is not None:
            return existing
        store.put_file(record.tar_key, packed.tar.path, content_type="application/x-tar")
        store.put_bytes(record.record_key, record_to_json(record), "application/json")
    return record


def overlay_catalog_for(store: Store, version: str) -> list[OverlayRecord]:
    """Overlays available for `version`, one per name, sorted by name.

    NotFound when no release of that version is stored.
    """
    version = normalize_version(version)
    if version not in list_versions(store):
        raise NotFound(f"version {version} is not available")
    best: dict[str, OverlayRecord] = {}
    for record in list_overlay_records(store):
        if not parse_range(record.compatibility).accepts(version):
            continue
        current = best.get(record.name)
        if current is None or version_sort_key(record.version) > version_sort_key(current.version):
            best[record.name] = record
    return [best[name] for name in sorted(best)]


def resolve_overlay(store: Store, version: str, name: str) -> OverlayRecord:
    """The overlay a schematic names; InvalidRequest `overlay "<name>" is not available for
    version <v>` when there is none."""
    version = normalize_version(version)
    for record in overlay_catalog_for(store, version):
        if record.name == name:
            return record
    raise InvalidRequest(f'overlay "{name}" is not available for version {version}')


def check_overlay_options(record: OverlayRecord, options: Mapping[str, object]) -> None:
    """Plan-time check of `overlay.options`: only the names the overlay declares, strings."""
    for key, value in sorted(options.items()):
        if key not in record.options:
            known = ", ".join(record.options) or "none"
            raise InvalidRequest(
                f'overlay "{record.name}" has no option "{key}" (options: {known})'
            )
        if not isinstance(value, str):
            raise InvalidRequest(f'overlay "{record.name}" option "{key}" must be a string')


def fetch_overlay(store: Store, digest: str, dest: Path) -> Path:
    """The canonical tar of overlay `digest`, downloaded to the file `dest` and verified."""
    return fetch_verified(store, f"{OVERLAYS_PREFIX}{digest}.tar", digest, dest)


def prepare_overlay(
    tar: Path, options: Mapping[str, object], dest: Path, limits: Limits = DEFAULT_LIMITS
) -> PreparedOverlay:
    """Render overlay `tar` with the schematic's `overlay.options` into the new dir `dest`.

    Unknown options or non-string values → InvalidRequest naming them.
    """
    try:
        return prepare_overlay_tar(tar, options, dest, limits)
    except ExtensionError as exc:
        raise InvalidRequest(str(exc)) from None
