"""The stored extension records, kept in each process and brought up to date by a change log.

Listing the catalog used to read every record from the store on every lookup; then every
lookup after a change listed every record key (777 ms at 10,000 records). Now each process
keeps every record in memory (records are immutable), indexed by catalog name, plus each
release's computed catalog, and follows the store's **change log**:

- `catalog-index/changes/<generation>.json`, generation 1, 2, 3 ... (12 digits): one entry
  per change, `{"add": <record>}`, `{"remove": <digest>}` or `{"withdraw": <digest>}`,
  written after the change itself (commit last: whoever reads an entry also finds what it
  names). A writer creates the next generation with a conditional create (`put_new`); when
  another writer took that number first it reads that entry and tries the next one, so two
  processes (or machines: S3 has no locks) never lose each other's changes.
- `catalog-index/snapshots/<generation>.json`: every record (and which are withdrawn) as
  of that generation, written by whoever appends generation 1 and each
  `SNAPSHOT_EVERY`-th, so a new process reads one snapshot and the few entries after it
  instead of every record. The snapshot before the previous one is deleted.

A lookup asks the store only whether the next generation exists (one small read, a miss
when nothing changed); a change costs the lookups after it one read per new entry, whatever
the number of records, and each computed catalog chooses again for the one name the
entry touches. Records (and withdrawals) written before the log existed are found once, by
listing the store, when no snapshot exists yet; replaying every entry over that listing
gives the right records whenever it was taken, because an entry states the outcome of its
change and the last entry about a digest wins.
"""

from __future__ import annotations

import bisect
import json
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from workers.catalog.records import (
    EXTENSIONS_PREFIX,
    ExtensionRecord,
    record_from_doc,
    record_from_json,
)
from workers.catalog.withdrawn import withdrawn_digests
from workers.store import ObjectNotFound, Store

CHANGES_PREFIX = "catalog-index/changes/"
SNAPSHOTS_PREFIX = "catalog-index/snapshots/"
SNAPSHOT_EVERY = 100


def change_key(generation: int) -> str:
    return f"{CHANGES_PREFIX}{generation:012d}.json"


def snapshot_key(generation: int) -> str:
    return f"{SNAPSHOTS_PREFIX}{generation:012d}.json"


def _encoded(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True) + "\n").encode()


def added(record: ExtensionRecord) -> dict[str, Any]:
    """The change entry for a stored record."""
    return {"add": asdict(record)}


def removed(digest: str) -> dict[str, Any]:
    """The change entry for a deleted record."""
    return {"remove": digest}


def withdrawn(digest: str) -> dict[str, Any]:
    """The change entry for a withdrawal (the record stays; catalogs stop offering it)."""
    return {"withdraw": digest}


def _record(doc: dict[str, Any]) -> ExtensionRecord:
    return record_from_doc(ExtensionRecord, dict(doc))


Choose = Callable[[list[ExtensionRecord]], "ExtensionRecord | None"]


@dataclass(frozen=True)
class _Catalog:
    """A computed catalog: `choose`'s pick among each name's offerable records, by name."""

    choose: Choose
    offered: list[ExtensionRecord]

    def updated(self, name: str, offerable: list[ExtensionRecord]) -> _Catalog:
        """This catalog with `name` chosen again (among `offerable`, its records now)."""
        offered = list(self.offered)
        at = bisect.bisect_left(offered, name, key=lambda r: r.full_name)
        if at < len(offered) and offered[at].full_name == name:
            del offered[at]
        best = self.choose(offerable) if offerable else None
        if best is not None:
            offered.insert(at, best)
        return _Catalog(self.choose, offered)


@dataclass
class _Snapshot:
    generation: int = -1  # -1: nothing read yet
    records: dict[str, ExtensionRecord] = field(default_factory=dict)  # by digest
    withdrawn: frozenset[str] = frozenset()
    by_name: dict[str, list[ExtensionRecord]] = field(default_factory=dict)
    catalogs: dict[tuple[str, ...], _Catalog] = field(default_factory=dict)

    def offerable(self, name: str) -> list[ExtensionRecord]:
        """The records of `name` not withdrawn, by digest."""
        return [r for r in self.by_name.get(name, ()) if r.digest not in self.withdrawn]


def _indexed(
    generation: int, records: dict[str, ExtensionRecord], withdrawn: frozenset[str]
) -> _Snapshot:
    by_name: defaultdict[str, list[ExtensionRecord]] = defaultdict(list)
    for digest in sorted(records):
        by_name[records[digest].full_name].append(records[digest])
    return _Snapshot(generation, records, withdrawn, dict(by_name))


def _listed_records(store: Store) -> dict[str, ExtensionRecord]:
    """Every record found by listing the store (only when no snapshot exists yet)."""
    records: dict[str, ExtensionRecord] = {}
    for key in store.list(EXTENSIONS_PREFIX):
        if not key.endswith(".json"):
            continue
        try:
            record = record_from_json(ExtensionRecord, store.get_bytes(key))
        except ObjectNotFound:
            continue  # deleted since it was listed
        records[record.digest] = record
    return records


def _latest_snapshot(store: Store) -> _Snapshot:
    """The newest snapshot, else generation 0 as listed in the store."""
    while True:
        keys = list(store.list(SNAPSHOTS_PREFIX))
        if not keys:
            return _indexed(0, _listed_records(store), withdrawn_digests(store))
        try:
            doc = json.loads(store.get_bytes(keys[-1]))
        except ObjectNotFound:
            continue  # replaced by a newer one since the listing: list again
        records = {r.digest: r for r in map(_record, doc["records"])}
        return _indexed(int(doc["generation"]), records, frozenset(doc["withdrawn"]))


def _apply(snapshot: _Snapshot, entry: dict[str, Any]) -> _Snapshot:
    """The snapshot after `entry`, one generation on; `snapshot` is left as it was (other
    threads may be reading it). Only the changed name's list, and its place in each
    computed catalog, are done again."""
    records, by_name = dict(snapshot.records), dict(snapshot.by_name)
    withdrawn, generation = snapshot.withdrawn, snapshot.generation + 1
    if "add" in entry:
        record = _record(entry["add"])
        records[record.digest] = record
        name, digest, new = record.full_name, record.digest, [record]
    elif "remove" in entry and (gone := records.pop(str(entry["remove"]), None)) is not None:
        name, digest, new = gone.full_name, gone.digest, []
        withdrawn -= {digest}
    elif "withdraw" in entry and (marked := records.get(str(entry["withdraw"]))) is not None:
        name, digest = marked.full_name, marked.digest
        new = [marked]
        withdrawn |= {digest}
    else:
        return _Snapshot(generation, records, withdrawn, by_name, dict(snapshot.catalogs))
    named = [r for r in by_name.get(name, ()) if r.digest != digest] + new
    if named:
        by_name[name] = sorted(named, key=lambda r: r.digest)
    else:
        by_name.pop(name, None)
    after = _Snapshot(generation, records, withdrawn, by_name)
    offerable = after.offerable(name)
    after.catalogs = {k: c.updated(name, offerable) for k, c in snapshot.catalogs.items()}
    return after


class ExtensionIndex:
    """One store's extension records, as of the newest change this process has read."""

    def __init__(self) -> None:
        self._snapshot = _Snapshot()
        self._lock = threading.Lock()

    def _read_change(self, store: Store, generation: int) -> dict[str, Any] | None:
        try:
            doc = json.loads(store.get_bytes(change_key(generation)))
        except ObjectNotFound:
            return None
        return doc if isinstance(doc, dict) else {}

    def _current(self, store: Store) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot.generation >= 0 and self._read_change(store, snapshot.generation + 1) is None:
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if snapshot.generation < 0:
                snapshot = _latest_snapshot(store)
            while (entry := self._read_change(store, snapshot.generation + 1)) is not None:
                snapshot = _apply(snapshot, entry)
            self._snapshot = snapshot
            return snapshot

    def records(self, store: Store) -> list[ExtensionRecord]:
        """Every record, by digest order."""
        records = self._current(store).records
        return [records[digest] for digest in sorted(records)]

    def named(self, store: Store, full_name: str) -> list[ExtensionRecord]:
        """The records of one catalog name (`<namespace>/<name>`)."""
        return list(self._current(store).by_name.get(full_name, ()))

    def knows(self, store: Store, digest: str) -> bool:
        return digest in self._current(store).records

    def catalog(self, store: Store, key: tuple[str, ...], choose: Choose) -> list[ExtensionRecord]:
        """One record per name, sorted by name: `choose(the name's records not withdrawn,
        by digest)`, None leaving the name out. Remembered under `key` (which must name
        everything `choose` depends on besides the records); a change chooses again for
        the name it touches only."""
        snapshot = self._current(store)
        found = snapshot.catalogs.get(key)
        if found is None:
            picks = (choose(snapshot.offerable(name)) for name in sorted(snapshot.by_name))
            offered = [pick for pick in picks if pick is not None]
            found = snapshot.catalogs[key] = _Catalog(choose, offered)
        return list(found.offered)

    def append(self, store: Store, entry: dict[str, Any]) -> int:
        """Log `entry` as the next generation (after the change it describes is stored);
        its generation."""
        data = _encoded(entry)
        generation = self._current(store).generation + 1
        while not store.put_new(change_key(generation), data, "application/json"):
            generation = self._current(store).generation + 1  # another writer took it
        if generation == 1 or generation % SNAPSHOT_EVERY == 0:
            self._write_snapshot(store, generation)
        return generation

    def _write_snapshot(self, store: Store, generation: int) -> None:
        """Snapshot the records at `generation`, unless this process has read past it
        already (then a later snapshot will do), and delete the one before the previous."""
        snapshot = self._current(store)
        if snapshot.generation != generation:
            return
        doc = {
            "generation": generation,
            "records": [asdict(snapshot.records[d]) for d in sorted(snapshot.records)],
            "withdrawn": sorted(snapshot.withdrawn),
        }
        store.put_new(snapshot_key(generation), _encoded(doc), "application/json")
        if generation > SNAPSHOT_EVERY:
            for key in store.list(SNAPSHOTS_PREFIX):
                if key < snapshot_key(generation - SNAPSHOT_EVERY):
                    store.delete(key)


_indexes: weakref.WeakKeyDictionary[Store, ExtensionIndex] = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def index_for(store: Store) -> ExtensionIndex:
    """The index of `store` in this process (one per store object)."""
    with _indexes_lock:
        found = _indexes.get(store)
        if found is None:
            found = _indexes[store] = ExtensionIndex()
        return found


def log_change(store: Store, entry: dict[str, Any]) -> int:
    """Tell every process about a change to the records (after making it); its generation."""
    return index_for(store).append(store, entry)
