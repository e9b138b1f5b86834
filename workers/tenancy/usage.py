"""What each client has used, shared by every web process: the per-client limits count it.

- **builds**: the keys of the builds a client enqueued (joining someone else's build is
  free). The caller counts the ones still queued or running and drops the rest.
- **uploads**: uploads and uploaded bytes in the current hour (fixed one-hour windows: the
  count starts again at the top of each hour).

A client is a short name (`factory.clients.client_identity`: a hash of its token or address).
Two backends with the same behaviour, as `workers.dispatch.coordination`: Redis in the scaled mode,
one JSON file per client under the data directory (read and written under its `flock`) in
the embedded default.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from workers.backends import Backend
from workers.dispatch.coordination import REDIS_PREFIX, redis_client, redis_errors

WINDOW_SECONDS = 3600
# A client's record of builds outlives any build it can still have queued or running.
BUILDS_TTL = 2 * 24 * 3600
_CLIENT = re.compile(r"^[0-9a-f]{8,64}$")


@dataclass(frozen=True)
class UploadUse:
    uploads: int
    bytes: int
    window_ends: float  # when the counts start again (time.time())


def _checked(client: str) -> str:
    if not _CLIENT.match(client):
        raise ValueError(f"invalid client name: {client!r}")
    return client


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _window(now: float) -> int:
    return int(now // WINDOW_SECONDS)


class Usage(Protocol):
    def add_build(self, client: str, key: str) -> None:
        """Remember that `client` enqueued build `key`."""
        ...

    def builds(self, client: str) -> set[str]:
        """The build keys `client` enqueued and that were not dropped yet."""
        ...

    def drop_builds(self, client: str, keys: Iterable[str]) -> None:
        """Forget builds that are over."""
        ...

    def add_upload(self, client: str, size: int) -> None:
        """Count one upload of `size` bytes in the current window."""
        ...

    def uploads(self, client: str) -> UploadUse:
        """Uploads and bytes of the current window."""
        ...


def make_usage(backend: Backend) -> Usage:
    """Per-client counts where the backend keeps shared state: Redis, or files."""
    if backend.redis_url:
        return RedisUsage(backend.redis_url)
    return FileUsage(backend.data_dir / "usage")


class RedisUsage:
    def __init__(self, url: str) -> None:
        self._client = redis_client(url)

    def _builds_key(self, client: str) -> str:
        return f"{REDIS_PREFIX}client-builds:{_checked(client)}"

    def _uploads_key(self, client: str, window: int) -> str:
        return f"{REDIS_PREFIX}client-uploads:{_checked(client)}:{window}"

    def add_build(self, client: str, key: str) -> None:
        name = self._builds_key(client)
        with redis_errors("record a build"):
            pipe = self._client.pipeline()
            pipe.sadd(name, key)
            pipe.expire(name, BUILDS_TTL)
            pipe.execute()

    def builds(self, client: str) -> set[str]:
        with redis_errors("count builds"):
            members = self._client.smembers(self._builds_key(client))
        return {_text(m) for m in members}

    def drop_builds(self, client: str, keys: Iterable[str]) -> None:
        gone = list(keys)
        if gone:
            with redis_errors("drop builds"):
                self._client.srem(self._builds_key(client), *gone)

    def add_upload(self, client: str, size: int) -> None:
        name = self._uploads_key(client, _window(time.time()))
        with redis_errors("count an upload"):
            pipe = self._client.pipeline()
            pipe.hincrby(name, "uploads", 1)
            pipe.hincrby(name, "bytes", size)
            pipe.expire(name, 2 * WINDOW_SECONDS)
            pipe.execute()

    def uploads(self, client: str) -> UploadUse:
        window = _window(time.time())
        with redis_errors("count uploads"):
            found: dict[Any, Any] = self._client.hgetall(self._uploads_key(client, window))
        counts = {
            (k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in found.items()
        }
        return UploadUse(
            counts.get("uploads", 0), counts.get("bytes", 0), (window + 1) * WINDOW_SECONDS
        )


class FileUsage:
    """`<root>/<client>.json`: `{"builds": [...], "window": n, "uploads": n, "bytes": n}`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _record(self, client: str) -> Iterator[dict[str, Any]]:
        """The client's record, locked; written back (atomically) when the block ends."""
        path = self.root / f"{_checked(client)}.json"
        fd = os.open(self.root / f"{client}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                record: dict[str, Any] = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                record = {}
            before = json.dumps(record, sort_keys=True)
            yield record
            if json.dumps(record, sort_keys=True) != before:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(record, sort_keys=True))
                os.replace(tmp, path)
        finally:
            os.close(fd)

    def add_build(self, client: str, key: str) -> None:
        with self._record(client) as record:
            record["builds"] = sorted({*record.get("builds", ()), key})

    def builds(self, client: str) -> set[str]:
        with self._record(client) as record:
            return set(record.get("builds", ()))

    def drop_builds(self, client: str, keys: Iterable[str]) -> None:
        gone = set(keys)
        if gone:
            with self._record(client) as record:
                record["builds"] = sorted(set(record.get("builds", ())) - gone)

    def add_upload(self, client: str, size: int) -> None:
        window = _window(time.time())
        with self._record(client) as record:
            if record.get("window") != window:
                record.update(window=window, uploads=0, bytes=0)
            record["uploads"] = int(record["uploads"]) + 1
            record["bytes"] = int(record["bytes"]) + size

    def uploads(self, client: str) -> UploadUse:
        window = _window(time.time())
        ends = float((window + 1) * WINDOW_SECONDS)
        with self._record(client) as record:
            if record.get("window") != window:
                return UploadUse(0, 0, ends)
            return UploadUse(int(record["uploads"]), int(record["bytes"]), ends)
