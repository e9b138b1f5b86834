"""The stored extension records, read once per process and kept until the catalog changes.

Listing the catalog used to read every record from the store on every lookup, so lookups
and uploads slowed down with each extension added. Now each process keeps every record in
memory (records are immutable), indexed by catalog name, plus each release's computed
catalog, and asks the store only for the **stamp**: `extensions/stamp`, a random token
written after every change to the records (`touch_stamp`). A process seeing another stamp
than the one it read its records under reads the records again, only the new ones from the
store; web processes and workers on other machines see each other's additions that way.

The stamp is read before the records are listed and written after a record is, so whoever
reads a stamp also sees every record written before it.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from workers.catalog.records import EXTENSIONS_PREFIX, ExtensionRecord, record_from_json
from workers.store import ObjectNotFound, Store

STAMP_KEY = f"{EXTENSIONS_PREFIX}stamp"


def touch_stamp(store: Store) -> None:
    """Tell every process the records changed."""
    store.put_bytes(STAMP_KEY, uuid.uuid4().hex.encode() + b"\n", "text/plain")


def _read_stamp(store: Store) -> str:
    try:
        return store.get_bytes(STAMP_KEY).decode().strip()
    except ObjectNotFound:
        return ""


@dataclass
class _Snapshot:
    stamp: str | None = None
    records: dict[str, ExtensionRecord] = field(default_factory=dict)  # by digest
    by_name: dict[str, list[ExtensionRecord]] = field(default_factory=dict)
    catalogs: dict[tuple[str, ...], list[ExtensionRecord]] = field(default_factory=dict)


class ExtensionIndex:
    """One store's extension records, as of its current stamp."""

    def __init__(self) -> None:
        self._snapshot = _Snapshot()
        self._lock = threading.Lock()

    def _current(self, store: Store) -> _Snapshot:
        stamp = _read_stamp(store)
        snapshot = self._snapshot
        if snapshot.stamp == stamp:
            return snapshot
        with self._lock:
            if self._snapshot.stamp == stamp:
                return self._snapshot
            known = self._snapshot.records
            records: dict[str, ExtensionRecord] = {}
            for key in store.list(EXTENSIONS_PREFIX):
                if not key.endswith(".json"):
                    continue
                digest = key.removeprefix(EXTENSIONS_PREFIX).removesuffix(".json")
                found = known.get(digest)
                if found is None:
                    try:
                        found = record_from_json(ExtensionRecord, store.get_bytes(key))
                    except ObjectNotFound:
                        continue  # deleted since it was listed
                records[digest] = found
            by_name: defaultdict[str, list[ExtensionRecord]] = defaultdict(list)
            for record in records.values():
                by_name[record.full_name].append(record)
            self._snapshot = _Snapshot(stamp, records, dict(by_name))
            return self._snapshot

    def records(self, store: Store) -> list[ExtensionRecord]:
        """Every record, by digest order."""
        records = self._current(store).records
        return [records[digest] for digest in sorted(records)]

    def named(self, store: Store, full_name: str) -> list[ExtensionRecord]:
        """The records of one catalog name (`<namespace>/<name>`)."""
        return list(self._current(store).by_name.get(full_name, ()))

    def catalog(
        self,
        store: Store,
        key: tuple[str, ...],
        compute: Callable[[list[ExtensionRecord]], list[ExtensionRecord]],
    ) -> list[ExtensionRecord]:
        """`compute(every record)`, remembered under `key` until the records change."""
        snapshot = self._current(store)
        found = snapshot.catalogs.get(key)
        if found is None:
            records = snapshot.records
            found = snapshot.catalogs[key] = compute([records[d] for d in sorted(records)])
        return list(found)


_indexes: weakref.WeakKeyDictionary[Store, ExtensionIndex] = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def index_for(store: Store) -> ExtensionIndex:
    """The index of `store` in this process (one per store object)."""
    with _indexes_lock:
        found = _indexes.get(store)
        if found is None:
            found = _indexes[store] = ExtensionIndex()
        return found
