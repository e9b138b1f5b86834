"""Write a bundle: the catalog (releases, extensions, overlays), the chosen schematics with
what records how they resolve, and the chosen assets of each, built first when not built yet
(through `ensure_built`, as every build is), with their build manifests (which carry the
signature made at build time) and the public halves of the keys."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from workers.airgap.layout import (
    BUNDLE_FORMAT,
    CATALOG_PREFIXES,
    INDEX_NAME,
    OBJECTS_DIR,
    SECUREBOOT_CERT_NAME,
    SIGNING_KEY_NAME,
)
from workers.catalog.resolutions import PINS_PREFIX, REFERENCES_PREFIX, RESOLUTIONS_PREFIX
from workers.errors import NotFound
from workers.evidence.stored import DSSE_TYPE, SBOM_TYPE, STATEMENT_TYPE
from workers.hashing import hash_reader
from workers.keys.secureboot_key import load_or_create_secureboot_key
from workers.keys.signing import SigningKey, load_or_create_signing_key
from workers.outputs.finished_builds import BuiltAsset, build_manifest_key
from workers.outputs.schematics_store import load_schematic, schematic_key
from workers.pipeline.build_once import ensure_built
from workers.pipeline.workdirs import work_root
from workers.planning.asset_kinds import content_type_for
from workers.planning.plans import make_plan
from workers.planning.profiles import parse_profile
from workers.releases.clients import load_clients
from workers.releases.manifest import Manifest
from workers.releases.stored import RELEASES_PREFIX, blob_key, list_versions
from workers.settings import Settings
from workers.store import Store

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExportedAsset:
    schematic: str
    version: str
    path: str
    built: BuiltAsset

    def to_json(self) -> dict[str, str]:
        return {
            "schematic": self.schematic,
            "version": self.version,
            "path": self.path,
            "key": self.built.key,
            "sha256": self.built.sha256,
        }


def write_bundle(
    store: Store,
    settings: Settings,
    dest: Path,
    schematic_ids: Iterable[str],
    assets: Iterable[tuple[str, str]],
    note: Callable[[str], None],
) -> list[ExportedAsset]:
    """Write the bundle to `dest` (replaced whole at the end): the catalog, each schematic of
    `schematic_ids` and its assets `(version, path)`. NotFound for an unknown schematic;
    build errors as `ensure_built` raises them. Returns what was exported."""
    schematic_ids = sorted(set(schematic_ids))
    exported = [
        _built(store, settings, sid, version, path, note)
        for sid in schematic_ids
        for version, path in assets
    ]
    objects = _catalog_keys(store) | {
        key for sid in schematic_ids for key in _schematic_keys(store, sid)
    }
    content_types = {key: content_type_for(key) for key in objects}
    for asset in exported:
        content_types[build_manifest_key(asset.built.key)] = "application/json"
        content_types[asset.built.blob] = asset.built.content_type
        # Its SBOM and signed provenance (`workers.evidence`), served beside it.
        for digest, content_type in (
            (asset.built.sbom_sha256, SBOM_TYPE),
            (asset.built.provenance_sha256, STATEMENT_TYPE),
            (asset.built.provenance_envelope_sha256, DSSE_TYPE),
        ):
            if digest:
                content_types[blob_key(digest)] = content_type
    keys = {
        SIGNING_KEY_NAME: load_or_create_signing_key(settings).public_key_pem,
        SECUREBOOT_CERT_NAME: load_or_create_secureboot_key(settings).cert_pem,
    }
    partial = dest.with_name(dest.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        index: dict[str, object] = {
            "format": BUNDLE_FORMAT,
            "schematics": schematic_ids,
            "assets": [a.to_json() for a in exported],
            "objects": {},
            "keys": sorted(keys),
        }
        listed: dict[str, dict[str, object]] = {}
        # The index comes first but names every object's digest: hash them in a first pass.
        for key in sorted(content_types):
            sha256, size = _digest(store, key)
            listed[key] = {"sha256": sha256, "size": size, "content_type": content_types[key]}
        index["objects"] = listed
        _add_bytes(tar, INDEX_NAME, _json(index), settings.source_date_epoch)
        for name, data in sorted(keys.items()):
            _add_bytes(tar, name, data, settings.source_date_epoch)
        for key in sorted(listed):
            with store.open(key) as reader:
                size = int(str(listed[key]["size"]))
                tar.addfile(_info(OBJECTS_DIR + key, size, settings.source_date_epoch), reader)
    partial.replace(dest)
    note(f"wrote {dest}: {len(listed)} objects, {len(exported)} assets")
    return exported


def _built(
    store: Store,
    settings: Settings,
    schematic_id: str,
    version: str,
    path: str,
    note: Callable[[str], None],
) -> ExportedAsset:
    schematic = load_schematic(store, schematic_id)
    plan = make_plan(store, schematic, schematic_id, version, parse_profile(path), settings)
    note(f"{schematic_id[:12]} {plan.version} {path}")
    key = load_or_create_signing_key(settings)
    built = ensure_built(
        store,
        plan,
        work_root(settings),
        signer=plan.signer(settings),
        signing_key=key,
        timeout=settings.tool_timeout,
    )
    return ExportedAsset(schematic_id, plan.version, path, _signed(store, built, key))


def _signed(store: Store, built: BuiltAsset, key: SigningKey) -> BuiltAsset:
    """The build with its Sigstore bundle in its manifest: one built before builds were
    signed when published (or by `image-factory build`) gets it now, as a download would
    have been signed, so the bundle carries the exporter's signature across the gap."""
    if built.sigstore_bundle is not None:
        return built
    manifest_key = build_manifest_key(built.key)
    doc = json.loads(store.get_bytes(manifest_key))
    doc["sigstore_bundle"] = key.sigstore_bundle(built.sha256)
    data = json.dumps(doc, sort_keys=True, indent=2).encode() + b"\n"
    store.put_bytes(manifest_key, data, content_type="application/json")
    return replace(built, sigstore_bundle=doc["sigstore_bundle"])


def _catalog_keys(store: Store) -> set[str]:
    keys = {key for prefix in CATALOG_PREFIXES for key in store.list(prefix)}
    # The blobs a release manifest (files, installer base) or client index names, by digest.
    for key in [k for k in keys if k.startswith(RELEASES_PREFIX)]:
        if key.endswith("/manifest.json"):
            manifest = Manifest.from_json(store.get_bytes(key))
            keys |= {blob_key(entry.sha256) for entry in manifest.blob_entries().values()}
    for version in list_versions(store):
        keys |= {client.blob for client in load_clients(store, version).values()}
    return keys


def _schematic_keys(store: Store, schematic_id: str) -> set[str]:
    """The schematic and what records how its names resolve (so the other side resolves
    them to the same extension versions, whatever it holds besides)."""
    if not store.exists(schematic_key(schematic_id)):
        raise NotFound(f"schematic {schematic_id} not found")
    keys = {schematic_key(schematic_id)}
    keys |= set(store.list(f"{RESOLUTIONS_PREFIX}{schematic_id}/"))
    keys |= {k for k in store.list(PINS_PREFIX) if k.endswith("/" + schematic_id)}
    keys |= {
        k
        for k in store.list(REFERENCES_PREFIX)
        if k.rsplit("/", 1)[1].startswith(schematic_id + "-")
    }
    return keys


def _digest(store: Store, key: str) -> tuple[str, int]:
    with store.open(key) as reader:
        hashes = hash_reader(reader)
    return hashes.sha256, hashes.size


def _json(value: object) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2) + "\n").encode()


def _info(name: str, size: int, epoch: int) -> tarfile.TarInfo:
    """A regular file member: mode 0644, owner 0/0, mtime = SOURCE_DATE_EPOCH."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = epoch
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, epoch: int) -> None:
    tar.addfile(_info(name, len(data), epoch), io.BytesIO(data))
