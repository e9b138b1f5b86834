"""Withdrawing and deleting extension versions (admin actions), each audited.

Both act on every stored build of `ns/name` at `version` (any-arch and per-arch ones).
- withdraw: new plans refuse it (410), the catalog stops offering it; built assets stay.
- delete: removes record and tar, refused (`Conflict`, 409) while any recorded resolution
  or pinned schematic still uses it.
"""

from __future__ import annotations

import json

from workers.catalog.extensions import list_extension_records
from workers.catalog.index import log_change, removed, withdrawn
from workers.catalog.records import ExtensionRecord, utc_now
from workers.catalog.resolutions import references_to
from workers.catalog.withdrawn import withdrawn_key
from workers.errors import Conflict, NotFound
from workers.store import Store
from workers.tenancy.audit import record_event

_SHOWN_REFERENCES = 5


def _versions(store: Store, name: str, version: str) -> list[ExtensionRecord]:
    found = [
        r for r in list_extension_records(store) if (r.full_name, r.version) == (name, version)
    ]
    if not found:
        raise NotFound(f"no extension {name} {version} is stored")
    return found


def withdraw_extension(store: Store, name: str, version: str, actor: str) -> list[ExtensionRecord]:
    """Withdraw `name` `version`; withdrawing it again changes nothing."""
    records = _versions(store, name, version)
    for record in records:
        doc = {"by": actor, "at": utc_now()}
        if store.put_new(withdrawn_key(record.digest), (json.dumps(doc) + "\n").encode()):
            log_change(store, withdrawn(record.digest))  # every process recomputes its catalogs
            record_event(store, actor, "extension.withdraw", f"{name} {version}", record.digest)
    return records


def delete_extension(store: Store, name: str, version: str, actor: str) -> list[ExtensionRecord]:
    """Delete `name` `version` once nothing references it."""
    records = _versions(store, name, version)
    for record in records:
        refs = references_to(store, record)
        if refs:
            shown = ", ".join(refs[:_SHOWN_REFERENCES])
            more = (
                f" and {len(refs) - _SHOWN_REFERENCES} more"
                if len(refs) > _SHOWN_REFERENCES
                else ""
            )
            raise Conflict(
                f"extension {name} {version} is still referenced by {shown}{more}; "
                "withdraw it instead to stop new builds"
            )
    for record in records:
        # The record first: the extension is gone once it is (the tar alone means nothing).
        store.delete(record.record_key)
        store.delete(record.tar_key)
        store.delete(withdrawn_key(record.digest))
        log_change(store, removed(record.digest))  # every process forgets the record
        record_event(store, actor, "extension.delete", f"{name} {version}", record.digest)
    return records
