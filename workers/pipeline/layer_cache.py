"""Cached intermediate files (layers, firmware members) in the store, shared by every worker.

An entry lives under a key prefix: its files at `<prefix>/<name>`, then `<prefix>/entry.json`
listing each file's sha256 and size plus free-form `info`, written last (the commit point).
Reading verifies every file; an entry that is incomplete or whose bytes no longer match is
treated as missing, so it gets rebuilt rather than used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.store import Store
from workers.store.objects import Content, Objects, inputs_key

ENTRY = "entry.json"


@dataclass(frozen=True)
class CachedEntry:
    files: dict[str, Path]  # name → local copy
    info: dict[str, Any]


def cache_key(kind: str, inputs: Mapping[str, Any]) -> str:
    """`layers/<kind>/<sha256 of the canonical JSON of inputs>`."""
    return inputs_key(f"layers/{kind}", inputs)


def load_entry(store: Store, prefix: str, dest: Path) -> CachedEntry | None:
    """Download the entry under `prefix` into the new directory `dest`; None if absent or bad."""
    objects = Objects(store)
    data = objects.document(f"{prefix}/{ENTRY}")
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    parts = {name: Content(f["sha256"], f["size"]) for name, f in doc["files"].items()}
    files = objects.checkout(prefix, parts, dest)
    if files is None:
        return None
    return CachedEntry(files=files, info=doc["info"])


def save_entry(
    store: Store,
    prefix: str,
    files: Mapping[str, Path],
    info: Mapping[str, Any],
    *,
    adopt: bool = False,
) -> None:
    """Upload `files`, then the entry document that makes them visible. `adopt`: the caller
    never writes the files again, so a local store hard-links them instead of copying
    (`Store.adopt_file`)."""
    staged = Objects(store).new(prefix)
    listed = {}
    for name, path in sorted(files.items()):
        content = staged.add_file(name, path, adopt=adopt)
        listed[name] = {"sha256": content.sha256, "size": content.size}
    doc = {"files": listed, "info": dict(info)}
    staged.commit(f"{prefix}/{ENTRY}", json.dumps(doc, sort_keys=True, indent=2).encode() + b"\n")
