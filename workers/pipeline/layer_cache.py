"""Cached intermediate files (layers, firmware members) in the store, shared by every worker.

An entry lives under a key prefix: its files at `<prefix>/<name>`, then `<prefix>/entry.json`
listing each file's sha256 and size plus free-form `info`, written last (the commit point).
Reading verifies every file; an entry that is incomplete or whose bytes no longer match is
treated as missing, so it gets rebuilt rather than used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.hashing import sha256_file
from workers.store import ObjectNotFound, Store

ENTRY = "entry.json"


@dataclass(frozen=True)
class CachedEntry:
    files: dict[str, Path]  # name → local copy
    info: dict[str, Any]


def cache_key(kind: str, inputs: Mapping[str, Any]) -> str:
    """`layers/<kind>/<sha256 of the canonical JSON of inputs>`."""
    data = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return f"layers/{kind}/{hashlib.sha256(data).hexdigest()}"


def load_entry(store: Store, prefix: str, dest: Path) -> CachedEntry | None:
    """Download the entry under `prefix` into the new directory `dest`; None if absent or bad."""
    try:
        doc = json.loads(store.get_bytes(f"{prefix}/{ENTRY}"))
    except (ObjectNotFound, ValueError):
        return None
    dest.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for name, expected in sorted(doc["files"].items()):
        local = dest / name
        try:
            store.download(f"{prefix}/{name}", local)
        except ObjectNotFound:
            return None
        if local.stat().st_size != expected["size"] or sha256_file(local) != expected["sha256"]:
            return None
        files[name] = local
    return CachedEntry(files=files, info=doc["info"])


def save_entry(
    store: Store, prefix: str, files: Mapping[str, Path], info: Mapping[str, Any]
) -> None:
    """Upload `files`, then the entry document that makes them visible."""
    listed = {}
    for name, path in sorted(files.items()):
        store.put_file(f"{prefix}/{name}", path)
        listed[name] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    doc = {"files": listed, "info": dict(info)}
    store.put_bytes(
        f"{prefix}/{ENTRY}",
        json.dumps(doc, sort_keys=True, indent=2).encode() + b"\n",
        content_type="application/json",
    )
