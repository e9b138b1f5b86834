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
import math
import tempfile
import time
from pathlib import Path
from typing import IO

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from factory.auth import require
from factory.clients import client_identity
from factory.engine import engine
from factory.services import services
from factory.urls import registry_reference_host
from workers.catalog import (
    ExtensionRecord,
    add_extension,
    catalog_for,
    overlay_catalog_for,
)
from workers.catalog.records import check_namespace
from workers.errors import TooManyRequests
from workers.settings import Settings
from workers.storage import check_free_space
from workers.tenancy.audit import record_event
from workers.tenancy.namespaces import publishing_into
from workers.tenancy.tokens import ROLE_UPLOAD, Identity
from workers.usage import Usage

bp = Blueprint("catalog", __name__)
_CHUNK = 1024 * 1024


def _json(value: object, status: int = 200) -> Response:
    return Response(json.dumps(value) + "\n", status=status, mimetype="application/json")


@bp.route("/version/<version>/extensions/official", methods=["GET"])
def official_extensions(version: str) -> Response:
    svc = services()
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
            for record in catalog_for(svc.store, version, arch)
        ]
    )


@bp.route("/version/<version>/overlays/official", methods=["GET"])
def official_overlays(version: str) -> Response:
    svc = services()
    host = registry_reference_host()
    return _json(
        [
            {
                "name": record.name,
                "image": record.image,
                "ref": record.ref(host),
                "digest": f"sha256:{record.digest}",
            }
            for record in overlay_catalog_for(svc.store, version)
        ]
    )


def _spool_body(source: IO[bytes], dest: Path, limit: int) -> None:
    """Copy an upload from `source` to `dest`, refusing (413) more than `limit` bytes (a
    larger declared request length before a byte is read)."""
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"extension upload is larger than {limit} bytes")
    total = 0
    with dest.open("wb") as out:
        while chunk := source.read(_CHUNK):
            total += len(chunk)
            if total > limit:
                raise RequestEntityTooLarge(f"extension upload is larger than {limit} bytes")
            out.write(chunk)


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


def _check_upload_allowance(usage: Usage, client: str, settings: Settings) -> None:
    """TooManyRequests when `client` used up this hour's uploads or bytes (a declared body
    length counts already)."""
    used = usage.uploads(client)
    incoming = request.content_length or 0
    retry_after = max(1, math.ceil(used.window_ends - time.time()))
    if used.uploads >= settings.max_client_uploads:
        raise TooManyRequests(
            f"{used.uploads} uploads this hour is the most one client may make "
            f"({settings.max_client_uploads}); try again later",
            retry_after,
        )
    if used.bytes + incoming > settings.max_client_upload_bytes:
        raise TooManyRequests(
            f"this upload would take this hour's uploads past "
            f"{settings.max_client_upload_bytes} bytes, the most one client may send; "
            "try again later",
            retry_after,
        )


@bp.route("/extensions", methods=["POST"])
def upload_extension() -> Response:
    who = require(ROLE_UPLOAD, "uploading an extension")
    namespace = request.args.get("namespace", services().settings.extensions_namespace)
    arch = request.args.get("arch", "amd64")
    record = store_upload(who, namespace, arch, request.stream)
    return _json(_upload_json(record, registry_reference_host()), status=201)


def store_upload(who: Identity, namespace: str, arch: str, source: IO[bytes]) -> ExtensionRecord:
    """Every extension upload once its sender is known (the API and the upload page): the
    namespace, the client's allowance and free space checked, `source` spooled, validated,
    stored and audited. InvalidRequest names what is wrong with it; nothing is stored then."""
    svc = services()
    settings = svc.settings
    check_namespace(namespace)
    usage = engine().usage
    client = client_identity()
    _check_upload_allowance(usage, client, settings)
    check_free_space(settings)
    spool_root = settings.data_dir / "tmp"
    spool_root.mkdir(parents=True, exist_ok=True)
    with (
        publishing_into(svc.store, settings, who, namespace),
        tempfile.TemporaryDirectory(dir=spool_root, prefix="upload-") as tmp,
    ):
        body = Path(tmp) / "upload"
        _spool_body(source, body, settings.max_extension_bytes)
        # Refused uploads count too: validating them is the work a flood would cost.
        usage.add_upload(client, body.stat().st_size)
        record = add_extension(
            svc.store, body, namespace, arch=arch, label="upload", uploaded_by=who.name
        )
    subject = f"{record.full_name} {record.version}"
    record_event(svc.store, who.name, "extension.upload", subject, record.digest)
    return record
