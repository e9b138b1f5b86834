"""Storing one uploaded extension once its sender is known: the API's `POST /extensions` and
the upload page share it (blueprints do not import each other)."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import IO

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from factory.clients import client_identity
from factory.engine import engine
from workers.catalog import (
    ExtensionRecord,
    add_extension,
)
from workers.catalog.records import check_namespace
from workers.errors import TooManyRequests
from workers.outputs.storage_budget import check_free_space
from workers.settings import Settings
from workers.tenancy.audit import record_event
from workers.tenancy.namespaces import publishing_into
from workers.tenancy.tokens import Identity
from workers.tenancy.usage import Usage

_CHUNK = 1024 * 1024


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


def store_upload(who: Identity, namespace: str, arch: str, source: IO[bytes]) -> ExtensionRecord:
    """Every extension upload once its sender is known (the API and the upload page): the
    namespace, the client's allowance and free space checked, `source` spooled, validated,
    stored and audited. InvalidRequest names what is wrong with it; nothing is stored then."""
    eng = engine()
    settings = eng.settings
    check_namespace(namespace)
    usage = engine().usage
    client = client_identity()
    _check_upload_allowance(usage, client, settings)
    check_free_space(eng.backend, settings.min_free_bytes)
    spool_root = settings.data_dir / "tmp"
    spool_root.mkdir(parents=True, exist_ok=True)
    with (
        publishing_into(eng.store, settings, who, namespace),
        tempfile.TemporaryDirectory(dir=spool_root, prefix="upload-") as tmp,
    ):
        body = Path(tmp) / "upload"
        _spool_body(source, body, settings.max_extension_bytes)
        # Refused uploads count too: validating them is the work a flood would cost.
        usage.add_upload(client, body.stat().st_size)
        record = add_extension(
            eng.store, body, namespace, arch=arch, label="upload", uploaded_by=who.name
        )
    subject = f"{record.full_name} {record.version}"
    record_event(eng.store, who.name, "extension.upload", subject, record.digest)
    return record
