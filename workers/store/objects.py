"""The object layer over a `Store`: key schemes, hashing and commit-last entries, in one class.

The model (the shape of osbuild's object store, written for this store):
- **Blobs** are content-addressed: `blobs/sha256/<hex>`, shared by every user (releases,
  builds, registry content, evidence). A blob is written only when it is not already there
  with its size, so adding the same bytes twice costs one look.
- **Entries** are what a user commits: parts (blobs, or files under the entry's own prefix)
  and then one document naming them, written LAST. The document is the commit point: before
  it exists nobody can find the parts; once it exists every part it names was stored first.
  `Objects.new()` stages an entry (each part hashed once as it is added, or taken with the
  digest the caller already computed), `Staged.commit()` writes its document.
- **Reading back verifies**: a part whose size or sha256 no longer matches what the
  document says reads as missing (None / False), so the caller rebuilds instead of using it.

What the documents contain stays each user's business (`builds/<plan key>/manifest.json`,
`releases/<version>/<arch>/manifest.json`, `layers/<kind>/<hash>/entry.json`, registry
records); this module only fixes where parts go, how they are checked, and the order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.hashing import hash_file
from workers.store.base import ObjectNotFound, Store

BLOBS_PREFIX = "blobs/sha256/"
OCTET_STREAM = "application/octet-stream"
JSON = "application/json"


@dataclass(frozen=True)
class Content:
    """What names a part's bytes: their sha256 (hex) and size."""

    sha256: str
    size: int


def blob_key(sha256: str) -> str:
    """Where the blob with this sha256 (hex) lives."""
    return f"{BLOBS_PREFIX}{sha256}"


def inputs_key(prefix: str, inputs: Mapping[str, Any]) -> str:
    """`<prefix>/<sha256 of the canonical JSON of inputs>`: the same inputs, the same key."""
    data = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return f"{prefix}/{hashlib.sha256(data).hexdigest()}"


def content_of(path: Path) -> Content:
    """sha256 and size of a local file, read once in chunks."""
    hashes = hash_file(path)
    return Content(hashes.sha256, hashes.size)


def content_of_bytes(data: bytes) -> Content:
    return Content(hashlib.sha256(data).hexdigest(), len(data))


@dataclass
class Staged:
    """An entry being written (`Objects.new`): its parts are stored as they are added; it
    becomes visible only when `commit` writes its document."""

    objects: Objects
    # Parts live under `<prefix>/<name>`; None: in the shared blobs, by sha256.
    prefix: str | None
    parts: dict[str, Content] = field(default_factory=dict)
    committed: bool = False

    def key(self, name: str, content: Content) -> str:
        return part_key(self.prefix, name, content)

    def add_file(
        self,
        name: str,
        path: Path,
        content: Content | None = None,
        content_type: str = OCTET_STREAM,
        *,
        adopt: bool = False,
    ) -> Content:
        """Store the local file `path` as part `name`; `content`: its digest and size when
        the caller has them already (else the file is hashed here, once); `adopt`: the
        caller never writes `path` again (see `Store.adopt_file`)."""
        self._check_open()
        content = content or content_of(path)
        if self.prefix is None:
            self.objects.add_blob(path, content, content_type, adopt=adopt)
        else:
            _put_file(self.objects.store, self.key(name, content), path, content_type, adopt)
        self.parts[name] = content
        return content

    def add_bytes(self, name: str, data: bytes, content_type: str = OCTET_STREAM) -> Content:
        self._check_open()
        content = content_of_bytes(data)
        if self.prefix is None:
            self.objects.add_blob_bytes(data, content_type)
        else:
            self.objects.store.put_bytes(self.key(name, content), data, content_type=content_type)
        self.parts[name] = content
        return content

    def commit(self, key: str, document: bytes) -> None:
        """Write the entry's document `key`, the commit point: after every part it names (each
        was stored when added), so the entry becomes visible whole or not at all."""
        self._check_open()
        self.objects.store.put_bytes(key, document, content_type=JSON)
        self.committed = True

    def _check_open(self) -> None:
        if self.committed:
            raise RuntimeError("entry already committed: stage a new one")


def _put_file(store: Store, key: str, path: Path, content_type: str, adopt: bool) -> None:
    if adopt:
        store.adopt_file(key, path, content_type=content_type)
    else:
        store.put_file(key, path, content_type=content_type)


def part_key(prefix: str | None, name: str, content: Content) -> str:
    """Where an entry's part lives: under the entry's prefix, or (None) as a shared blob."""
    return f"{prefix}/{name}" if prefix is not None else blob_key(content.sha256)


class Objects:
    """Blobs by content and entries committed last, on top of one `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # Blobs

    def add_blob(
        self,
        path: Path,
        content: Content | None = None,
        content_type: str = OCTET_STREAM,
        *,
        adopt: bool = False,
    ) -> Content:
        """Store the file `path` under its sha256 unless a blob of that size is there already;
        `content`: its digest when known (else hashed here, once); `adopt`: see `add_file`."""
        content = content or content_of(path)
        if not self.has(blob_key(content.sha256), content):
            _put_file(self.store, blob_key(content.sha256), path, content_type, adopt)
        return content

    def add_blob_bytes(self, data: bytes, content_type: str = OCTET_STREAM) -> Content:
        """Store `data` under its sha256 unless it is there intact (a small document: its
        stored bytes are read back and checked in full)."""
        content = content_of_bytes(data)
        if self.read(blob_key(content.sha256), content) is None:
            self.store.put_bytes(blob_key(content.sha256), data, content_type=content_type)
        return content

    # Entries

    def new(self, prefix: str | None = None) -> Staged:
        """Stage an entry whose parts go under `prefix`, or (None) into the shared blobs;
        `Staged.commit` makes it visible."""
        return Staged(self, prefix)

    def document(self, key: str) -> bytes | None:
        """The committed document `key`, or None when nothing was committed there."""
        try:
            return self.store.get_bytes(key)
        except ObjectNotFound:
            return None

    def checkout(
        self, prefix: str | None, parts: Mapping[str, Content], dest: Path
    ) -> dict[str, Path] | None:
        """Download every part of an entry into the directory `dest` (made if missing), each
        checked for size and sha256; None when any is missing or does not match."""
        dest.mkdir(parents=True, exist_ok=True)
        files: dict[str, Path] = {}
        for name, content in sorted(parts.items()):
            local = dest / name
            if not self.fetch(part_key(prefix, name, content), content, local):
                return None
            files[name] = local
        return files

    # Checking one object

    def has(self, key: str, content: Content) -> bool:
        """Whether `key` is stored with the size of `content`: cheap (no read), catches a
        missing or truncated object, not altered bytes of the same size."""
        try:
            return self.store.size(key) == content.size
        except ObjectNotFound:
            return False

    def read(self, key: str, content: Content) -> bytes | None:
        """The bytes of `key` (a small object), or None when missing or not matching."""
        try:
            data = self.store.get_bytes(key)
        except ObjectNotFound:
            return None
        return data if content_of_bytes(data) == content else None

    def fetch(self, key: str, content: Content, dest: Path) -> bool:
        """Download `key` to the file `dest` and check it; False (and no file) when missing
        or not matching."""
        try:
            self.store.download(key, dest)
        except ObjectNotFound:
            return False
        if content_of(dest) != content:
            dest.unlink(missing_ok=True)
            return False
        return True

    # Listing and removing

    def list(self, prefix: str) -> Iterator[str]:
        return self.store.list(prefix)

    def remove(self, key: str) -> None:
        self.store.delete(key)
