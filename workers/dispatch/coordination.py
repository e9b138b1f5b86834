"""Claims and leases shared by every web process and worker: what makes a build single-flight.

- A **claim** (`claim(name, ttl)`) is taken by exactly one caller until it is released or its
  TTL runs out: the request that wins `submit:<key>` is the one that enqueues the build, every
  other request joins it.
- A **lease** (`lease(name)`) is an exclusive lock held while its holder is alive: the worker
  holding `build:<key>` is the only one building that key. A dead holder loses it on its own
  (Redis: the TTL runs out because nobody renews it; files: the kernel drops a dead process's
  `flock`), which is how a waiting request tells a lost build from a slow one.

Two backends with the same behaviour: Redis (`SET NX PX`, renewed by a heartbeat thread, for
the scaled mode) and files under the data directory (`flock`, for the embedded default where
every process runs on one machine).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import redis

from workers.backends import Backend
from workers.errors import Unavailable

# A lease not renewed for this long is gone; holders renew it three times as often.
LEASE_TTL = 15.0
_NAME = re.compile(r"^[a-z]+:[0-9a-f]{1,64}$")
REDIS_PREFIX = "image-factory:"
REDIS_TIMEOUT = 2.0


class Lease(Protocol):
    def release(self) -> None: ...


class Coordination(Protocol):
    def claim(self, name: str, ttl: float) -> bool:
        """Take `name` unless someone holds it; True when this call took it."""
        ...

    def release(self, name: str) -> None:
        """Give a claim back (whoever took it)."""
        ...

    def lease(self, name: str) -> Lease | None:
        """The exclusive lease on `name`, or None when someone alive holds it."""
        ...

    def held(self, name: str) -> bool:
        """Whether a claim or a lease on `name` is currently held."""
        ...


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"invalid coordination name: {name!r}")
    return name


def make_coordination(backend: Backend) -> Coordination:
    """Claims and leases where the backend keeps shared state: Redis, or files."""
    if backend.redis_url:
        return RedisCoordination(backend.redis_url)
    return FileCoordination(backend.data_dir / "coordination")


# --- Redis ----------------------------------------------------------------------------------

# Renewing also takes the lease again when its key is gone (a Redis restarted without its
# data): the holder is still alive and building, and nobody else may start the same build.
_RENEW = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
if not holder then
    redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


@contextlib.contextmanager
def redis_errors(action: str) -> Iterator[None]:
    """Redis failures become `Unavailable` (HTTP 503)."""
    try:
        yield
    except redis.exceptions.RedisError as error:
        raise Unavailable(
            f"Redis is unavailable ({action}): {error}",
            public="the build queue is unavailable; try again shortly",
        ) from error


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
    )


class _RedisLease:
    """A `SET NX PX` key renewed by a daemon thread until released."""

    def __init__(self, client: redis.Redis, key: str, token: str) -> None:
        self._client = client
        self._key = key
        self._token = token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease {key}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_TTL / 3):
            # A failed renewal is retried on the next beat; losing the lease in an outage only
            # risks a duplicate build of identical bytes, never a wrong one.
            with contextlib.suppress(redis.exceptions.RedisError):
                self._client.eval(_RENEW, 1, self._key, self._token, int(LEASE_TTL * 1000))

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        # Unreachable Redis: the key expires on its own within LEASE_TTL.
        with contextlib.suppress(redis.exceptions.RedisError):
            self._client.eval(_RELEASE, 1, self._key, self._token)


class RedisCoordination:
    def __init__(self, url: str) -> None:
        self._client = redis_client(url)

    def _key(self, name: str) -> str:
        return REDIS_PREFIX + _checked(name)

    def claim(self, name: str, ttl: float) -> bool:
        with redis_errors("claim"):
            return bool(self._client.set(self._key(name), "1", nx=True, px=int(ttl * 1000)))

    def release(self, name: str) -> None:
        with redis_errors("release"):
            self._client.delete(self._key(name))

    def lease(self, name: str) -> Lease | None:
        token = uuid.uuid4().hex
        key = self._key(name)
        with redis_errors("lease"):
            if not self._client.set(key, token, nx=True, px=int(LEASE_TTL * 1000)):
                return None
        return _RedisLease(self._client, key, token)

    def held(self, name: str) -> bool:
        with redis_errors("check"):
            return bool(self._client.exists(self._key(name)))


# --- files ----------------------------------------------------------------------------------


class _FileLease:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def release(self) -> None:
        os.close(self._fd)  # closing drops the flock


class FileCoordination:
    """Leases are `flock`s on `<root>/<name>.lease`; claims are files holding their expiry
    time, read and written under one `flock` on `<root>/claims.lock`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str, suffix: str) -> Path:
        return self.root / (_checked(name).replace(":", "-") + suffix)

    @contextlib.contextmanager
    def _claims_locked(self) -> Iterator[None]:
        fd = os.open(self.root / "claims.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _claim_alive(self, path: Path) -> bool:
        try:
            expires = float(json.loads(path.read_text())["expires"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return False
        return expires > time.time()

    def claim(self, name: str, ttl: float) -> bool:
        path = self._path(name, ".claim")
        with self._claims_locked():
            if self._claim_alive(path):
                return False
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"expires": time.time() + ttl}))
            os.replace(tmp, path)
            return True

    def release(self, name: str) -> None:
        with self._claims_locked():
            self._path(name, ".claim").unlink(missing_ok=True)

    def lease(self, name: str) -> Lease | None:
        fd = os.open(self._path(name, ".lease"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return _FileLease(fd)

    def held(self, name: str) -> bool:
        claim = self._path(name, ".claim")
        if claim.exists():
            with self._claims_locked():
                if self._claim_alive(claim):
                    return True
        path = self._path(name, ".lease")
        if not path.exists():
            return False
        lease = self.lease(name)
        if lease is None:
            return True
        lease.release()
        return False
