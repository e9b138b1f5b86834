"""Extension records for tests and the catalog benchmark: made up (no tar behind them),
stored and logged as an upload stores and logs them."""

from __future__ import annotations

import hashlib

from workers.catalog.index import added, log_change
from workers.catalog.records import ExtensionRecord, record_to_json
from workers.store import Store


def made_up_record(n: int, name: str = "", namespace: str = "bench") -> ExtensionRecord:
    """Record `n` (`ext-<n>` unless named), version 1.0, for every release from v1.0.0."""
    return ExtensionRecord(
        namespace=namespace,
        name=name or f"ext-{n}",
        version="1.0",
        author="test",
        description="a stored record",
        compatibility=">= v1.0.0",
        digest=hashlib.sha256(f"record {namespace} {name} {n}".encode()).hexdigest(),
        size=1024,
    )


def store_and_log(store: Store, record: ExtensionRecord) -> None:
    """What `add_extension` does once the tar is stored: the record, then its log entry."""
    store.put_bytes(record.record_key, record_to_json(record), "application/json")
    log_change(store, added(record))
