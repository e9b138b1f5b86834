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
"""

from __future__ import annotations

import hashlib
import threading
import time

from workers.builds import BuiltAsset, discard_build
from workers.store import ObjectNotFound, Store

_CHUNK = 1 << 20


class BlobVerifier:
    def __init__(self) -> None:
        # blob key -> (stored version known to match, when that was last looked at)
        self._verified: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock_for(self, blob: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(blob, threading.Lock())

    def check(self, store: Store, built: BuiltAsset, trust_seconds: float = 0.0) -> bool:
        """Whether the stored blob of `built` holds its bytes. When it does not (or is gone),
        the build is discarded and False returned."""
        known = self._verified.get(built.blob)
        if known is not None and time.monotonic() - known[1] < trust_seconds:
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
            if known is not None and known[0] == token:
                return True
            digest = self._sha256(store, built.blob) if stat.size == built.size else ""
            if digest != built.sha256:
                self._verified.pop(built.blob, None)
                reason = f"stored blob has sha256 {digest or '?'} and {stat.size} bytes"
                discard_build(store, built, f"{reason}, the manifest says {built.sha256}")
                return False
            self._verified[built.blob] = (token, time.monotonic())
            return True

    @staticmethod
    def _sha256(store: Store, blob: str) -> str:
        digest = hashlib.sha256()
        try:
            with store.open(blob) as reader:
                while chunk := reader.read(_CHUNK):
                    digest.update(chunk)
                    # Let the other requests of a gevent web process run meanwhile: hashing a
                    # large blob would otherwise hold every one of them for seconds.
                    time.sleep(0)
        except ObjectNotFound:
            return ""
        return digest.hexdigest()
