"""`<asset>.spdx.json` and `<asset>.intoto.jsonl` beside `.sha256` and `.sigstore.json`
(`factory.images`): the build's stored SBOM, and its provenance statement in a DSSE envelope
signed with the current signing key (deterministic, so every request gets the same bytes).
"""

from __future__ import annotations

from flask import Response

from factory.delivery import content_disposition
from factory.engine import Engine
from factory.errors import text_error
from workers.builds import BuiltAsset
from workers.evidence.documents import (
    PROVENANCE_SUFFIX,
    SBOM_SUFFIX,
    SBOM_TYPE,
    load_document,
)
from workers.evidence.provenance import sign_statement

SBOM = "sbom"
PROVENANCE = "provenance"
SUFFIXES = ((SBOM_SUFFIX, SBOM), (PROVENANCE_SUFFIX, PROVENANCE))
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"


def evidence_response(eng: Engine, built: BuiltAsset, wanted: str, filename: str) -> Response:
    """The SBOM or the signed provenance of `built`; 404 naming the reason when the build has
    none (published before the factory made them)."""
    digest = built.sbom_sha256 if wanted == SBOM else built.provenance_sha256
    document = load_document(eng.store, digest)
    what = "SBOM" if wanted == SBOM else "provenance"
    if document is None:
        return text_error(
            f"no {what} is stored for this build of {built.filename}; it was built before "
            "the factory recorded them",
            404,
        )
    if wanted == SBOM:
        body, content_type, suffix = document, SBOM_TYPE, SBOM_SUFFIX
    else:
        body, content_type = sign_statement(eng.signing_key, document), DSSE_TYPE
        suffix = PROVENANCE_SUFFIX
    response = Response(body, status=200, content_type=content_type)
    response.headers["Content-Disposition"] = content_disposition(filename + suffix)
    return response
