"""Client binaries a release carries (`talosctl-<os>-<arch>[.exe]`, as upstream serves them
from `siderolabs/talosctl-all`), taken by `release import` from a Talos release's files.

Stored as blobs by digest plus one index per version, `talosctl/<version>/index.json`:
`{"files": {name: {size, sha256, sha512, sigstore_bundle}}}`, each file signed once, when
imported, as a build is when it is published. A version that carries none has no index:
its list is empty (as upstream's for Talos before 1.11; the reference OS has no client of its
own to offer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workers.errors import Conflict
from workers.hashing import hash_file
from workers.keys.signing import SigningKey
from workers.releases.stored import blob_key, put_blob
from workers.releases.versions import normalize_version
from workers.store import ObjectNotFound, Store

CLIENTS_PREFIX = "talosctl/"
# Upstream's set: darwin/freebsd/linux on amd64 and arm64, linux armv7, windows `.exe`.
CLIENT_NAME = re.compile(
    r"^talosctl-(?:(?:darwin|freebsd|linux)-(?:amd64|arm64)|linux-armv7|windows-(?:amd64|arm64)\.exe)$"
)


@dataclass(frozen=True)
class ClientFile:
    name: str
    size: int
    sha256: str
    sha512: str
    sigstore_bundle: Mapping[str, Any] | None = None

    @property
    def blob(self) -> str:
        return blob_key(self.sha256)


def clients_key(version: str) -> str:
    return f"{CLIENTS_PREFIX}{normalize_version(version)}/index.json"


def load_clients(store: Store, version: str) -> dict[str, ClientFile]:
    """The client binaries of `version` by name (none: an empty mapping)."""
    try:
        doc = json.loads(store.get_bytes(clients_key(version)))
    except ObjectNotFound:
        return {}
    return {name: ClientFile(name=name, **entry) for name, entry in doc["files"].items()}


def import_clients(
    store: Store, version: str, directory: Path, signing_key: SigningKey
) -> list[ClientFile]:
    """Store every `talosctl-<os>-<arch>[.exe]` file directly in `directory` as clients of
    `version` (added to those it has); Conflict when one it has differs. Returns those found."""
    found = sorted(p for p in directory.iterdir() if p.is_file() and CLIENT_NAME.match(p.name))
    if not found:
        return []
    have = load_clients(store, version)
    added = []
    for path in found:
        sha512 = hash_file(path, ("sha512",)).hexdigests["sha512"]
        entry = put_blob(store, path)
        known = have.get(path.name)
        if known is not None and known.sha256 != entry.sha256:
            raise Conflict(f"release {version} already has another {path.name}")
        bundle = known.sigstore_bundle if known else signing_key.sigstore_bundle(entry.sha256)
        client = ClientFile(path.name, entry.size, entry.sha256, sha512, bundle)
        have[path.name] = client
        added.append(client)
    files = {
        name: {k: v for k, v in asdict(c).items() if k != "name"}
        for name, c in sorted(have.items())
    }
    data = json.dumps({"files": files}, sort_keys=True, indent=2).encode() + b"\n"
    store.put_bytes(clients_key(version), data, content_type="application/json")
    return added
