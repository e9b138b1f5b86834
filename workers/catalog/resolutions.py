"""Builds never change: what a schematic's extension names mean, fixed the first time.

- An unpinned name (`ns/name`) means, per schematic ID, release and architecture, whatever
  the catalog offered the first time anything was planned with it; that choice is recorded
  in `resolutions/<schematic id>/<version>/<arch>.json` (conditional create: the first
  writer wins, everyone after reads it) and used forever after, so uploading a higher
  version never changes what an existing schematic builds.
- A pinned name (`ns/name@1.2.3`) means exactly that version. It is part of the schematic,
  so a pinned schematic has its own ID; upstream IDs of unpinned schematics are unchanged.
- `references/<digest>/<schematic>-<version>-<arch>` (written before the resolution) and
  `pins/<sha256 of "ns/name@version">/<schematic>` (written when a pinned schematic is
  stored) say what uses an extension, so a delete can refuse while anything does.
- A withdrawn extension stays in recorded resolutions (assets built with it stay
  downloadable) but new builds refuse it (`Gone`, 410), and the catalog no longer offers it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from workers.catalog.extensions import (
    list_extension_records,
    resolve_extensions,
    unavailable_message,
)
from workers.catalog.records import (
    EXTENSIONS_PREFIX,
    ExtensionRecord,
    record_from_json,
    version_sort_key,
)
from workers.catalog.withdrawn import withdrawn_digests
from workers.errors import Gone, InvalidRequest
from workers.releases.stored import Release
from workers.store import ObjectNotFound, Store

RESOLUTIONS_PREFIX = "resolutions/"
REFERENCES_PREFIX = "references/"
PINS_PREFIX = "pins/"
PIN_SEPARATOR = "@"


@dataclass(frozen=True)
class Resolved:
    """A schematic's extensions for one release/arch, in schematic order, each once, and the
    names of those withdrawn since (new builds must refuse them)."""

    records: tuple[ExtensionRecord, ...]
    withdrawn: tuple[str, ...] = ()


def split_pin(name: str) -> tuple[str, str]:
    """`ns/name@1.2.3` → (`ns/name`, `1.2.3`); an unpinned name → (name, "")."""
    base, sep, version = name.partition(PIN_SEPARATOR)
    if sep and (not base or not version):
        raise InvalidRequest(f'official extension "{name}": write a pinned name as ns/name@version')
    return base, version


def pin_key(name: str, schematic_id: str) -> str:
    return f"{PINS_PREFIX}{hashlib.sha256(name.encode()).hexdigest()}/{schematic_id}"


def record_pins(store: Store, schematic_id: str, names: Iterable[str]) -> None:
    """Note which pinned extensions schematic `schematic_id` names (before it is stored)."""
    for name in names:
        if split_pin(name)[1]:
            store.put_new(pin_key(name, schematic_id), b"")


def resolution_key(schematic_id: str, version: str, arch: str) -> str:
    return f"{RESOLUTIONS_PREFIX}{schematic_id}/{version}/{arch}.json"


def _load_record(store: Store, digest: str) -> ExtensionRecord:
    return record_from_json(ExtensionRecord, store.get_bytes(f"{EXTENSIONS_PREFIX}{digest}.json"))


def _read_recorded(store: Store, key: str) -> list[str] | None:
    try:
        doc = json.loads(store.get_bytes(key))
    except ObjectNotFound:
        return None
    return [str(entry["digest"]) for entry in doc["extensions"]]


def _pinned(
    store: Store, release: Release, name: str, base: str, version: str, withdrawn: frozenset[str]
) -> ExtensionRecord:
    """The record `base` at exactly `version` for this release (an arch-specific build
    beating an any-arch one); Gone when only withdrawn ones exist."""
    candidates = [
        r
        for r in list_extension_records(store)
        if r.full_name == base
        and r.version == version
        and r.arch in ("", release.arch)
        and r.release in ("", release.version)
    ]
    live = [r for r in candidates if r.digest not in withdrawn]
    if not live:
        if candidates:
            raise Gone(f'official extension "{name}" was withdrawn')
        raise InvalidRequest(unavailable_message(store, name, base, release.version, release.arch))
    return max(live, key=lambda r: (bool(r.arch), r.digest))


def _resolve_now(
    store: Store, release: Release, names: Sequence[str], withdrawn: frozenset[str]
) -> list[ExtensionRecord]:
    """What the catalog offers for `names` right now (schematic order, each once)."""
    resolved: list[ExtensionRecord] = []
    for name in names:
        base, version = split_pin(name)
        if version:
            record = _pinned(store, release, name, base, version, withdrawn)
        else:
            try:
                (record,) = resolve_extensions(store, release.version, release.arch, [name])
            except InvalidRequest:
                _refuse_if_only_withdrawn(store, name, withdrawn)
                raise
        if record not in resolved:
            resolved.append(record)
    return resolved


def _refuse_if_only_withdrawn(store: Store, name: str, withdrawn: frozenset[str]) -> None:
    """An unknown name whose every version was withdrawn is Gone, not just unknown."""
    versions = [r for r in list_extension_records(store) if r.full_name == name]
    if versions and all(r.digest in withdrawn for r in versions):
        newest = max(versions, key=lambda r: version_sort_key(r.version))
        raise Gone(f'official extension "{name}" {newest.version} was withdrawn')


def resolve_durably(
    store: Store, schematic_id: str, release: Release, names: Sequence[str], *, record: bool = True
) -> Resolved:
    """The records `names` mean for this schematic, release and arch: as recorded the first
    time, else resolved now and recorded (`record=False`: resolved now, not recorded).
    InvalidRequest for an unknown name, Gone for a name whose every version was withdrawn
    before it was first resolved."""
    withdrawn = withdrawn_digests(store)
    key = resolution_key(schematic_id, release.version, release.arch)
    digests = _read_recorded(store, key)
    if digests is None:
        records = _resolve_now(store, release, names, withdrawn)
        if not record:
            return Resolved(tuple(records))
        for each in records:
            # References first: a crash between the two leaves a reference too many (a
            # delete refuses), never a resolution without one (a delete would break it).
            store.put_new(
                f"{REFERENCES_PREFIX}{each.digest}/{schematic_id}-{release.version}-{release.arch}",
                b"",
            )
        doc = {"extensions": [{"name": r.full_name, "digest": r.digest} for r in records]}
        data = (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()
        if store.put_new(key, data, "application/json"):
            return Resolved(tuple(records))
        digests = _read_recorded(store, key) or []  # another request recorded it first
    records = [_load_record(store, digest) for digest in digests]
    gone = tuple(f"{r.full_name} {r.version}" for r in records if r.digest in withdrawn)
    return Resolved(tuple(records), gone)


def references_to(store: Store, record: ExtensionRecord) -> list[str]:
    """What still uses `record`: `<schematic>-<version>-<arch>` resolutions and the
    schematics that pin its name and version."""
    refs = [key.rsplit("/", 1)[1] for key in store.list(f"{REFERENCES_PREFIX}{record.digest}/")]
    pinned = f"{record.full_name}{PIN_SEPARATOR}{record.version}"
    prefix = f"{PINS_PREFIX}{hashlib.sha256(pinned.encode()).hexdigest()}/"
    refs += [f"schematic {key.rsplit('/', 1)[1]} pins {pinned}" for key in store.list(prefix)]
    return refs
