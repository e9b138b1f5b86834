"""The evidence of one build, made when the build is published and stored beside its asset.

`describe_build` writes the SBOM and the provenance statement from the plan and the inputs
the build used; `store_evidence` puts both in the content-addressed blob store, and the build
manifest records their digests (`sbom_sha256`, `provenance_sha256`). The DSSE envelope is
made when served (`sign_statement`, deterministic), so it always carries the current key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from workers.evidence.inputs import collect_inputs
from workers.evidence.provenance import make_statement
from workers.evidence.sbom import make_sbom
from workers.plans import Plan
from workers.releases.catalog import blob_key, load_release
from workers.store import Store

SBOM_SUFFIX = ".spdx.json"
PROVENANCE_SUFFIX = ".intoto.jsonl"
SBOM_TYPE = "application/spdx+json"
STATEMENT_TYPE = "application/vnd.in-toto+json"


@dataclass(frozen=True)
class Evidence:
    sbom: bytes
    statement: bytes

    @property
    def sbom_sha256(self) -> str:
        return hashlib.sha256(self.sbom).hexdigest()

    @property
    def statement_sha256(self) -> str:
        return hashlib.sha256(self.statement).hexdigest()


def describe_build(
    store: Store, plan: Plan, workdir: Path, filename: str, sha256: str, sha512: str
) -> Evidence:
    """SBOM and provenance statement of the build of `plan` (asset `filename` with these
    digests); `workdir` is scratch space for the inputs it reads."""
    release = load_release(store, plan.version, plan.arch)
    inputs = collect_inputs(plan, release, store, workdir)
    sbom = make_sbom(inputs, filename, sha256, sha512)
    sbom_sha256 = hashlib.sha256(sbom).hexdigest()
    statement = make_statement(inputs, filename, sha256, filename + SBOM_SUFFIX, sbom_sha256)
    return Evidence(sbom, statement)


def store_evidence(store: Store, evidence: Evidence) -> None:
    """Both documents under their digests (unless there already)."""
    for data, digest, content_type in (
        (evidence.sbom, evidence.sbom_sha256, SBOM_TYPE),
        (evidence.statement, evidence.statement_sha256, STATEMENT_TYPE),
    ):
        if not store.exists(blob_key(digest)):
            store.put_bytes(blob_key(digest), data, content_type=content_type)


def load_document(store: Store, digest: str) -> bytes | None:
    """A stored evidence document, or None when it is missing or does not match `digest`."""
    if not digest or not store.exists(blob_key(digest)):
        return None
    data = store.get_bytes(blob_key(digest))
    return data if hashlib.sha256(data).hexdigest() == digest else None
