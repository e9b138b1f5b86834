"""Stored assets are checked against their manifest's sha256 before a process first serves them.

Hashing while streaming cannot stop bad bytes from leaving (they are sent before the digest
is known), so the first time a process is about to hand out a blob it reads the whole blob and
compares its sha256 with the manifest. The verified fact is remembered in memory per blob and
per stored version (`ObjectStat.version`: mtime and inode locally, the ETag on S3), so a blob
that is rewritten behind the factory's back is checked again. A mismatch discards the build
(`discard_build`), which the caller then rebuilds: corrupt bytes are never served.

Streaming looks at the stored version on every request. A redirect, which hands the client
to the store and never touches the bytes itself, may trust a check made in the last
`trust_seconds` and so costs no round trip to the store at all.

The stored version cannot see every change: bytes rewritten in place with size and mtime put
back (or rotting on disk) keep it. So a whole-body download is also hashed while it streams
and cut short before its last bytes on a mismatch (`streamed`; `factory.delivery`), and a
range, which cannot be checked on its own, is only served from a blob whose bytes were hashed
in full within the last `rehash_after` seconds (`check(..., rehash_after=)`).

A local file whose whole hash matched (here, or on the wire) has its stamp remembered in
`stamps` (`workers.outputs.file_stamps`): while a file still shows it, web processes send
it without hashing it again (`factory.verified_stamps`).
"""

from __future__ import annotations

import threading
import time
from typing import IO

from workers.hashing import hash_reader
from workers.outputs.file_stamps import OpenedBlob, VerifiedStamps
from workers.outputs.finished_builds import BuiltAsset, discard_build
from workers.store import ObjectNotFound, Store


class BlobVerifier:
    def __init__(self) -> None:
        # blob key -> (stored version known to match, when that was last looked at)
        self._verified: dict[str, tuple[str, float]] = {}
        # blob key -> when its bytes were last hashed in full and matched
        self._hashed: dict[str, float] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.stamps = VerifiedStamps()

    def _lock_for(self, blob: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(blob, threading.Lock())

    def check(
        self,
        store: Store,
        built: BuiltAsset,
        trust_seconds: float = 0.0,
        rehash_after: float | None = None,
    ) -> bool:
        """Whether the stored blob of `built` holds its bytes. When it does not (or is gone),
        the build is discarded and False returned. `rehash_after`: hash the bytes again when
        the last full hash is older than that, even if the stored version did not change."""
        known = self._verified.get(built.blob)
        if rehash_after is not None and not self._hashed_within(built.blob, rehash_after):
            known = None
        elif known is not None and time.monotonic() - known[1] < trust_seconds:
            return True
        try:
            stat = store.stat(built.blob)
        except ObjectNotFound:
            discard_build(store, built, "its blob is missing")
            return False
        token = f"{stat.size}:{stat.version}"
        if known is not None and known[0] == token:
            self._verified[built.blob] = (token, time.monotonic())
            return True
        # One thread hashes a blob; concurrent first requests for it wait for the answer.
        with self._lock_for(built.blob):
            known = self._verified.get(built.blob)
            fresh = rehash_after is None or self._hashed_within(built.blob, rehash_after)
            if known is not None and known[0] == token and fresh:
                return True
            digest = self._sha256(store, built) if stat.size == built.size else ""
            if digest != built.sha256:
                self.forget(built)
                reason = f"stored blob has sha256 {digest or '?'} and {stat.size} bytes"
                discard_build(store, built, f"{reason}, the manifest says {built.sha256}")
                return False
            self._verified[built.blob] = (token, time.monotonic())
            self._hashed[built.blob] = time.monotonic()
            return True

    def streamed(self, built: BuiltAsset, sha256: str) -> bool:
        """Record the digest of a whole-body download of `built` just streamed: True when it
        matches (a fresh full hash), else False and nothing about the blob is trusted any more
        (the caller discards the build)."""
        if sha256 != built.sha256:
            self.forget(built)
            return False
        self._hashed[built.blob] = time.monotonic()
        return True

    def forget(self, built: BuiltAsset) -> None:
        self._verified.pop(built.blob, None)
        self._hashed.pop(built.blob, None)

    def _hashed_within(self, blob: str, seconds: float) -> bool:
        hashed = self._hashed.get(blob)
        return hashed is not None and time.monotonic() - hashed < seconds

    def _sha256(self, store: Store, built: BuiltAsset) -> str:
        """The sha256 of the stored blob ("" when it is gone); a local file that matches
        `built` has its stamp remembered."""
        local = store.local_path(built.blob)
        try:
            if local is None:
                with store.open(built.blob) as reader:
                    return _hash_yielding(reader)
            opened = OpenedBlob.open(local)
        except (ObjectNotFound, FileNotFoundError):
            return ""
        with opened.file:
            digest = _hash_yielding(opened.file)
        if digest == built.sha256:
            opened.remember_if_matched(self.stamps, digest)
        return digest


def _hash_yielding(reader: IO[bytes]) -> str:
    # Let the other requests of a gevent web process run between chunks: hashing a large
    # blob would otherwise hold every one of them for seconds.
    return hash_reader(reader, between_chunks=lambda: time.sleep(0)).sha256
