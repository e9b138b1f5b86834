"""Load a bundle into a store: every object checked against the index (name, size, sha256,
and a blob's digest against its name) into a work directory first, nothing written to the
store until the whole bundle has checked out; then written in commit order (blobs and records,
then release manifests, build manifests last, as a build writes them), and the catalog
stamp refreshed so every process re-reads the extension records.

An object the store already holds with the same bytes is left alone; one it holds with other
bytes stops the import before anything is written, naming it (a release, schematic or build
means one thing everywhere, so two different versions of one cannot both be right)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.airgap.layout import (
    BUNDLE_FORMAT,
    INDEX_NAME,
    OBJECTS_DIR,
    SECUREBOOT_CERT_NAME,
    SIGNING_KEY_NAME,
)
from workers.airgap.trust import trust_signing_key
from workers.catalog.index import added, log_change, withdrawn
from workers.catalog.records import EXTENSIONS_PREFIX, ExtensionRecord, record_from_json
from workers.catalog.withdrawn import WITHDRAWN_PREFIX
from workers.errors import Conflict, InvalidRequest
from workers.hashing import hash_reader
from workers.outputs.finished_builds import BUILDS_PREFIX
from workers.releases.stored import RELEASES_PREFIX
from workers.store import Store
from workers.store.base import validate_key
from workers.store.objects import BLOBS_PREFIX

_CHUNK = 1 << 20
# It becomes the stored object's Content-Type (an S3 header): a plain media type only.
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")


@dataclass(frozen=True)
class Loaded:
    objects: int  # written now
    present: int  # already held, same bytes
    assets: list[dict[str, str]]
    keys: dict[str, bytes]  # bundle name → PEM (public halves)


def load_bundle(store: Store, bundle: Path, workdir: Path, note: Callable[[str], None]) -> Loaded:
    """Check `bundle` whole, then write it into `store`. InvalidRequest naming what is wrong
    with the bundle, Conflict naming an object the store holds with other bytes."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    try:
        index, keys = _unpack(bundle, workdir)
        if SIGNING_KEY_NAME not in keys:
            raise InvalidRequest(f"bundle: {SIGNING_KEY_NAME} is missing")
        listed: dict[str, dict[str, Any]] = index["objects"]
        present = {key for key in listed if _holds(store, key, listed[key]["sha256"])}
        # Before the build manifests whose signatures it verifies.
        trust_signing_key(store, keys[SIGNING_KEY_NAME])
        written = [key for key in sorted(listed, key=_commit_order) if key not in present]
        for key in written:
            store.put_file(key, workdir / "objects" / key, str(listed[key]["content_type"]))
        announce_catalog_changes(store, written)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    note(f"loaded {len(listed) - len(present)} objects ({len(present)} already held)")
    return Loaded(len(listed) - len(present), len(present), list(index["assets"]), keys)


def announce_catalog_changes(store: Store, written: list[str]) -> None:
    """Enter the extension records and withdrawals just written in the catalog's change log,
    so every process of this factory (which follows the log) offers them."""
    for key in written:
        if key.startswith(EXTENSIONS_PREFIX) and key.endswith(".json"):
            log_change(store, added(record_from_json(ExtensionRecord, store.get_bytes(key))))
        elif key.startswith(WITHDRAWN_PREFIX) and key.endswith(".json"):
            log_change(store, withdrawn(key.removeprefix(WITHDRAWN_PREFIX).removesuffix(".json")))


def _unpack(bundle: Path, workdir: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    index: dict[str, Any] | None = None
    keys: dict[str, bytes] = {}
    seen: set[str] = set()
    try:
        with tarfile.open(bundle, "r|") as tar:
            for member in tar:
                if not member.isfile():
                    raise InvalidRequest(f"bundle: {member.name} is not a regular file")
                reader = tar.extractfile(member)
                assert reader is not None  # a regular file always has one
                if index is None:
                    if member.name != INDEX_NAME:
                        raise InvalidRequest(f"bundle: the first member must be {INDEX_NAME}")
                    index = _parse_index(reader.read(1 << 26))
                elif member.name in (SIGNING_KEY_NAME, SECUREBOOT_CERT_NAME):
                    keys[member.name] = reader.read(1 << 16)
                elif member.name.startswith(OBJECTS_DIR):
                    key = member.name.removeprefix(OBJECTS_DIR)
                    _check_object(key, index["objects"].get(key), member.size)
                    _spool_checked(reader, workdir / "objects" / key, key, index["objects"][key])
                    seen.add(key)
                else:
                    raise InvalidRequest(f"bundle: unexpected member {member.name}")
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidRequest(f"bundle: not a readable tar ({exc})") from None
    if index is None:
        raise InvalidRequest("bundle: empty")
    missing = sorted(set(index["objects"]) - seen)
    if missing:
        raise InvalidRequest(
            f"bundle: {len(missing)} listed objects are missing, e.g. {missing[0]}"
        )
    return index, keys


def _parse_index(data: bytes) -> dict[str, Any]:
    try:
        index = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(f"bundle: {INDEX_NAME} is not JSON") from None
    if not isinstance(index, dict) or index.get("format") != BUNDLE_FORMAT:
        raise InvalidRequest(f"bundle: {INDEX_NAME} is not a format {BUNDLE_FORMAT} index")
    if not isinstance(index.get("objects"), dict) or not isinstance(index.get("assets"), list):
        raise InvalidRequest(f"bundle: {INDEX_NAME} lacks objects or assets")
    fields = ("schematic", "version", "path", "key", "sha256")
    for asset in index["assets"]:
        if not isinstance(asset, dict) or not all(isinstance(asset.get(f), str) for f in fields):
            raise InvalidRequest(f"bundle: {INDEX_NAME} lists a malformed asset")
    return index


def _check_object(key: str, entry: object, size: int) -> None:
    try:
        validate_key(key)
    except ValueError:
        raise InvalidRequest(f"bundle: invalid object name {key!r}") from None
    if not isinstance(entry, dict) or entry.get("size") != size:
        raise InvalidRequest(f"bundle: object {key} is not listed with that size")
    if not _CONTENT_TYPE.match(str(entry.get("content_type"))):
        raise InvalidRequest(f"bundle: object {key} has an invalid content type")


def _spool_checked(reader: Any, dest: Path, key: str, entry: dict[str, Any]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with dest.open("wb") as out:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    got = digest.hexdigest()
    if got != entry.get("sha256"):
        raise InvalidRequest(f"bundle: object {key} has sha256 {got}, the index says otherwise")
    if key.startswith(BLOBS_PREFIX) and key.removeprefix(BLOBS_PREFIX) != got:
        raise InvalidRequest(f"bundle: blob {key} does not hold the bytes its name says")


def _holds(store: Store, key: str, sha256: str) -> bool:
    """Whether the store has `key` with these bytes already; Conflict with other bytes."""
    if not store.exists(key):
        return False
    with store.open(key) as reader:
        held = hash_reader(reader).sha256
    if held != sha256:
        raise Conflict(f"the store already holds {key} with other bytes; nothing was imported")
    return True


def _commit_order(key: str) -> tuple[int, str]:
    """Release manifests after their blobs, build manifests last (their commit points)."""
    if key.startswith(BUILDS_PREFIX):
        return (2, key)
    if key.startswith(RELEASES_PREFIX):
        return (1, key)
    return (0, key)
