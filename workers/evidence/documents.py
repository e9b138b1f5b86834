"""The evidence of one build, made when the build is published and stored beside its asset.

`describe_build` writes the SBOM and the provenance statement from the plan and the inputs
the build used; `store_evidence` puts both in the content-addressed blob store, and the build
manifest records their digests (`sbom_sha256`, `provenance_sha256`). The statement is signed
there too, into a DSSE envelope (`sign_statement`, deterministic: the same key gives the same
bytes) stored beside them (`provenance_envelope_sha256`): signing happens where builds happen,
the web side holds no private key and serves the stored envelope.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from workers.evidence.inputs import collect_inputs
from workers.evidence.provenance import make_statement, sign_statement
from workers.evidence.sbom import make_sbom
from workers.evidence.stored import DSSE_TYPE, SBOM_SUFFIX, SBOM_TYPE, STATEMENT_TYPE
from workers.keys.signing import SigningKey
from workers.planning.plans import Plan
from workers.releases.stored import blob_key, load_release
from workers.store import Store


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


def store_evidence(store: Store, evidence: Evidence, signing_key: SigningKey | None) -> str:
    """Both documents under their digests (unless there already) and, with `signing_key`,
    the statement signed into a DSSE envelope stored the same way; the envelope's digest ("":
    no key, nothing signed)."""
    documents = [
        (evidence.sbom, evidence.sbom_sha256, SBOM_TYPE),
        (evidence.statement, evidence.statement_sha256, STATEMENT_TYPE),
    ]
    envelope_sha256 = ""
    if signing_key is not None:
        envelope = sign_statement(signing_key, evidence.statement)
        envelope_sha256 = hashlib.sha256(envelope).hexdigest()
        documents.append((envelope, envelope_sha256, DSSE_TYPE))
    for data, digest, content_type in documents:
        if not store.exists(blob_key(digest)):
            store.put_bytes(blob_key(digest), data, content_type=content_type)
    return envelope_sha256
