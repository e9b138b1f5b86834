"""Extension and overlay catalog routes, and custom extension uploads.

- `GET /version/<v>/extensions/official[?arch=amd64]` → `[{name, ref, digest, author,
  description}]` (upstream shape): `name` is `<namespace>/<name>`, `ref` is
  `<host of the external URL>/<namespace>/<name>:<version>` (a tagged reference, as upstream
  gives), `digest` is `sha256:<hex>` of the canonical extension tar; beside those, `version` and
  where it came from: `origin` (`bundled`|`upload`), `uploaded_by`, `uploaded_at`.
- `GET /version/<v>/overlays/official` → `[{name, image, ref, digest}]`, `image` being
  `<namespace>/<name>`.
- `POST /extensions[?namespace=factory][&arch=amd64]`: body = a tar, tar.gz, tar.zst or an
  OCI image layout as tar (`arch` picks its `linux/<arch>` image) → 201 with the stored
  record; 413 over `IMAGE_FACTORY_MAX_EXTENSION_BYTES`; 400 with the reason otherwise, and
  nothing stored. Needs a token with the `upload` role, publishing into a namespace it
  owns (its first upload to a free one claims it) or, for admins, any namespace. 429 with
  `Retry-After` once the client has uploaded `IMAGE_FACTORY_MAX_CLIENT_UPLOADS` extensions
  or `IMAGE_FACTORY_MAX_CLIENT_UPLOAD_BYTES` bytes this hour (checked before the body is
  read, counted once it is received).

A malformed version → 400, a version without a release → 404.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from factory.auth import require
from factory.engine import engine
from factory.extension_uploads import store_upload
from factory.urls import registry_reference_host
from workers.catalog import (
    ExtensionRecord,
    catalog_for,
    overlay_catalog_for,
)
from workers.tenancy.tokens import ROLE_UPLOAD

bp = Blueprint("catalog", __name__)
_CHUNK = 1024 * 1024


def _json(value: object, status: int = 200) -> Response:
    return Response(json.dumps(value) + "\n", status=status, mimetype="application/json")


@bp.route("/version/<version>/extensions/official", methods=["GET"])
def official_extensions(version: str) -> Response:
    eng = engine()
    host = registry_reference_host()
    arch = request.args.get("arch", "amd64")
    return _json(
        [
            {
                "name": record.full_name,
                "ref": record.ref(host),
                "digest": f"sha256:{record.digest}",
                "author": record.author,
                "description": record.description,
                **origin_fields(record),
            }
            for record in catalog_for(eng.store, version, arch)
        ]
    )


@bp.route("/version/<version>/overlays/official", methods=["GET"])
def official_overlays(version: str) -> Response:
    eng = engine()
    host = registry_reference_host()
    return _json(
        [
            {
                "name": record.name,
                "image": record.image,
                "ref": record.ref(host),
                "digest": f"sha256:{record.digest}",
            }
            for record in overlay_catalog_for(eng.store, version)
        ]
    )


def _upload_json(record: ExtensionRecord, host: str) -> dict[str, object]:
    return {
        "name": record.full_name,
        "version": record.version,
        "digest": f"sha256:{record.digest}",
        "ref": record.ref(host),
        "author": record.author,
        "description": record.description,
        "compatibility": record.compatibility,
        "arch": record.arch,
        "size": record.size,
        **origin_fields(record),
    }


def origin_fields(record: ExtensionRecord) -> dict[str, str]:
    """Where a catalog entry came from, beside upstream's fields: `origin` is `bundled` or
    `upload`; uploads name the token (`uploaded_by`, "" when added with the CLI) and when."""
    return {
        "version": record.version,
        "origin": record.origin,
        "uploaded_by": record.uploaded_by,
        "uploaded_at": record.uploaded_at,
    }


@bp.route("/extensions", methods=["POST"])
def upload_extension() -> Response:
    who = require(ROLE_UPLOAD, "uploading an extension")
    namespace = request.args.get("namespace", engine().settings.extensions_namespace)
    arch = request.args.get("arch", "amd64")
    record = store_upload(who, namespace, arch, request.stream)
    return _json(_upload_json(record, registry_reference_host()), status=201)
