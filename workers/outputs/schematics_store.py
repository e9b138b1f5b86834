"""Schematics in the store: `schematics/<id>` holds the canonical bytes whose SHA-256 is `<id>`."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable

from schematics import Schematic, SchematicError, canonical_bytes, parse_schematic
from workers.catalog.resolutions import record_pins
from workers.errors import InvalidRequest, NotFound
from workers.store import ObjectNotFound, Store

log = logging.getLogger(__name__)

SCHEMATIC_ID = re.compile(r"[0-9a-f]{64}")
CONTENT_TYPE = "application/yaml"


def schematic_key(schematic_id: str) -> str:
    return f"schematics/{schematic_id}"


def save_schematic(store: Store, schematic: Schematic) -> str:
    """Store the schematic under its ID (idempotent) and return the ID."""
    data = canonical_bytes(schematic)
    schematic_id = hashlib.sha256(data).hexdigest()
    key = schematic_key(schematic_id)
    record_pins(store, schematic_id, schematic.customization.system_extensions.official_extensions)
    # Schematics are immutable, so an existing object is left alone, unless it is damaged.
    if not store.exists(key) or store.get_bytes(key) != data:
        store.put_bytes(key, data, content_type=CONTENT_TYPE)
    return schematic_id


def add_schematic(
    store: Store,
    body: bytes,
    max_bytes: int,
    check_owner: Callable[[str], None] | None = None,
) -> tuple[str, Schematic]:
    """Parse `body` strictly and store it; return its ID and the schematic. What every way
    in (the API, the web form, the upload page) does; InvalidRequest carries the parser's
    message. A schematic with an `owner` is accepted only through `check_owner`, which
    raises unless the request may claim that owner (without it: upstream's refusal)."""
    try:
        schematic = parse_schematic(body, max_bytes=max_bytes, allow_owner=check_owner is not None)
    except SchematicError as error:
        raise InvalidRequest(str(error)) from None
    if schematic.owner and check_owner is not None:
        check_owner(schematic.owner)
    return save_schematic(store, schematic), schematic


def load_schematic_bytes(store: Store, schematic_id: str) -> bytes:
    """The stored canonical bytes; `NotFound` for a malformed, unknown or damaged ID."""
    missing = NotFound(f'schematic ID "{schematic_id}" not found')
    if not SCHEMATIC_ID.fullmatch(schematic_id):
        raise missing
    try:
        data = store.get_bytes(schematic_key(schematic_id))
    except ObjectNotFound:
        raise missing from None
    if hashlib.sha256(data).hexdigest() != schematic_id:
        log.warning("stored schematic %s does not hash to its ID; ignoring it", schematic_id)
        raise missing
    return data


def load_schematic(store: Store, schematic_id: str) -> Schematic:
    """The schematic stored under `schematic_id`; `NotFound` if there is none."""
    # A stored owner schematic was checked when it was added.
    return parse_schematic(load_schematic_bytes(store, schematic_id), allow_owner=True)
