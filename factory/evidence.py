"""`<asset>.spdx.json` and `<asset>.intoto.jsonl` beside `.sha256` and `.sigstore.json`
(`factory.images`): the build's stored SBOM, and its provenance statement in the DSSE
envelope the worker signed when it published the build (the web side holds no private key).
"""

from __future__ import annotations

from flask import Response

from factory.delivery import content_disposition
from factory.errors import text_error
from workers.engine import Engine
from workers.evidence.stored import (
    DSSE_TYPE,
    PROVENANCE_SUFFIX,
    SBOM_SUFFIX,
    SBOM_TYPE,
    load_document,
)
from workers.outputs.finished_builds import BuiltAsset

SBOM = "sbom"
PROVENANCE = "provenance"
SUFFIXES = ((SBOM_SUFFIX, SBOM), (PROVENANCE_SUFFIX, PROVENANCE))


def evidence_response(eng: Engine, built: BuiltAsset, wanted: str, filename: str) -> Response:
    """The SBOM or the signed provenance of `built`; 404 naming the reason when the build has
    none (published before the factory made them)."""
    digest = built.sbom_sha256 if wanted == SBOM else built.provenance_envelope_sha256
    document = load_document(eng.store, digest)
    what = "SBOM" if wanted == SBOM else "provenance"
    if document is None:
        return text_error(
            f"no {what} is stored for this build of {built.filename}: it was built before "
            "the factory recorded them, or without a signing key",
            404,
        )
    if wanted == SBOM:
        content_type, suffix = SBOM_TYPE, SBOM_SUFFIX
    else:
        content_type, suffix = DSSE_TYPE, PROVENANCE_SUFFIX
    response = Response(document, status=200, content_type=content_type)
    response.headers["Content-Disposition"] = content_disposition(filename + suffix)
    return response
