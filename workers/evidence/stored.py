"""Names, media types and reading of the stored evidence documents (`workers.evidence`), kept
apart from making them, so the web side can serve them without importing the build code."""

from __future__ import annotations

import hashlib

from workers.releases.stored import blob_key
from workers.store import Store

SBOM_SUFFIX = ".spdx.json"
PROVENANCE_SUFFIX = ".intoto.jsonl"
SBOM_TYPE = "application/spdx+json"
STATEMENT_TYPE = "application/vnd.in-toto+json"
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"


def load_document(store: Store, digest: str) -> bytes | None:
    """A stored evidence document, or None when it is missing or does not match `digest`."""
    if not digest or not store.exists(blob_key(digest)):
        return None
    data = store.get_bytes(blob_key(digest))
    return data if hashlib.sha256(data).hexdigest() == digest else None
