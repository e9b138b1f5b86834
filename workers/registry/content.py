"""A repository's records in the store: which content it holds, its tags, its referrers.

Content itself lives once in the shared blob namespace `blobs/sha256/<hex>`; a repository
only records what belongs to it, under `registry/<image>/<schematic-id>/`:
- `manifests/<hex>`: the descriptor of a manifest it serves (index, image, signature);
- `blobs/<hex>`: the descriptor of a config or layer blob it serves;
- `referrers/<subject hex>/<hex>`: the descriptor of a manifest whose `subject` is that digest;
- `tags/<tag>`: `{"descriptor": …, …}`, written after everything it points at.
A client can only fetch what a repository records, never an arbitrary store blob.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from workers.registry.names import Repository
from workers.registry.oci import Descriptor
from workers.store import ObjectNotFound, Store
from workers.store.objects import Content, Objects, blob_key

JSON = "application/json"


@dataclass(frozen=True)
class TagRecord:
    descriptor: Descriptor
    extra: dict[str, Any] = field(default_factory=dict)  # what the tag was made from


def _put(store: Store, key: str, document: dict[str, Any]) -> None:
    store.put_bytes(key, json.dumps(document, sort_keys=True).encode() + b"\n", content_type=JSON)


def _get(store: Store, key: str) -> dict[str, Any] | None:
    try:
        document = json.loads(store.get_bytes(key))
    except (ObjectNotFound, json.JSONDecodeError):
        return None
    return document if isinstance(document, dict) else None


def _descriptor(store: Store, key: str) -> Descriptor | None:
    document = _get(store, key)
    try:
        return Descriptor.from_json(document) if document is not None else None
    except (KeyError, TypeError, ValueError):
        return None


def record_manifest(store: Store, repo: Repository, descriptor: Descriptor) -> None:
    _put(store, f"{repo.store_prefix}manifests/{descriptor.hex}", descriptor.to_json())


def record_blob(store: Store, repo: Repository, descriptor: Descriptor) -> None:
    _put(store, f"{repo.store_prefix}blobs/{descriptor.hex}", descriptor.to_json())


def replace_referrers(
    store: Store, repo: Repository, subject_hex: str, referrer: Descriptor
) -> None:
    """Record `referrer` of `subject_hex`, dropping earlier ones of the same artifact type."""
    prefix = f"{repo.store_prefix}referrers/{subject_hex}/"
    _put(store, f"{prefix}{referrer.hex}", referrer.to_json())
    for key in store.list(prefix):
        old = _descriptor(store, key)
        if old is None or (old.artifact_type == referrer.artifact_type and old != referrer):
            store.delete(key)


def write_tag(store: Store, repo: Repository, tag: str, record: TagRecord) -> None:
    _put(
        store,
        f"{repo.store_prefix}tags/{tag}",
        {"descriptor": record.descriptor.to_json(), **record.extra},
    )


def read_tag(store: Store, repo: Repository, tag: str) -> TagRecord | None:
    document = _get(store, f"{repo.store_prefix}tags/{tag}")
    if document is None or not isinstance(document.get("descriptor"), dict):
        return None
    extra = {k: v for k, v in document.items() if k != "descriptor"}
    return TagRecord(Descriptor.from_json(document["descriptor"]), extra)


def stored_tags(store: Store, repo: Repository) -> list[str]:
    prefix = f"{repo.store_prefix}tags/"
    return [key.removeprefix(prefix) for key in store.list(prefix)]


def manifest_descriptor(store: Store, repo: Repository, digest_hex: str) -> Descriptor | None:
    return _descriptor(store, f"{repo.store_prefix}manifests/{digest_hex}")


def blob_descriptor(store: Store, repo: Repository, digest_hex: str) -> Descriptor | None:
    """A config or layer blob of the repository; manifests are blobs too (spec)."""
    found = _descriptor(store, f"{repo.store_prefix}blobs/{digest_hex}")
    return found or manifest_descriptor(store, repo, digest_hex)


def referrers(store: Store, repo: Repository, subject_hex: str) -> list[Descriptor]:
    prefix = f"{repo.store_prefix}referrers/{subject_hex}/"
    found = (_descriptor(store, key) for key in store.list(prefix))
    return [d for d in found if d is not None]


def put_document(store: Store, descriptor: Descriptor, data: bytes) -> None:
    """Store content under its digest (shared by every repository) unless it is there intact."""
    Objects(store).add_blob_bytes(data, content_type=descriptor.media_type)


def stored_with_size(store: Store, descriptor: Descriptor) -> bool:
    """Whether a (large) blob is stored with its size: cheap, and catches truncation."""
    return Objects(store).has(blob_key(descriptor.hex), _content(descriptor))


def read_verified(store: Store, descriptor: Descriptor) -> bytes | None:
    """A small document's stored bytes, or None when missing or not matching its digest."""
    return Objects(store).read(blob_key(descriptor.hex), _content(descriptor))


def _content(descriptor: Descriptor) -> Content:
    return Content(descriptor.hex, descriptor.size)
