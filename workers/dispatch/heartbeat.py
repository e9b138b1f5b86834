"""Which build workers are alive: each one refreshes a key in Redis that expires on its own.

A worker (`image-factory worker`, scaled mode) sets `image-factory:worker:<node name>` every
`BEAT_SECONDS` with a time to live of `TTL_SECONDS`, from a thread of its main process; a
worker that dies, hangs or loses Redis stops refreshing it and drops out within the TTL.
`/readyz` and `/metrics` count the keys (one SCAN over a handful of keys, no message to the
workers and no waiting for their replies, unlike Celery's `inspect ping`).

The embedded default has no such keys: its one worker runs beside the web processes, under
the same supervisor.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import redis

from workers.backends import Backend
from workers.dispatch.coordination import REDIS_PREFIX, redis_client, redis_errors

log = logging.getLogger(__name__)

BEAT_SECONDS = 5.0
TTL_SECONDS = 15.0
RETRY_SECONDS = 1.0
_PREFIX = REDIS_PREFIX + "worker:"


def _beat(client: redis.Redis, key: str, stop: threading.Event) -> None:
    failing = False
    while True:
        try:
            client.set(key, "alive", px=int(TTL_SECONDS * 1000))
            if failing:
                log.info("heartbeat: Redis answers again")
            failing = False
        except redis.exceptions.RedisError as error:
            if not failing:
                log.warning("heartbeat: cannot reach Redis (retrying): %s", error)
            failing = True
        # Failing, look again sooner: a worker back in touch is counted within a second.
        if stop.wait(RETRY_SECONDS if failing else BEAT_SECONDS):
            return


@contextlib.contextmanager
def beating(backend: Backend, node: str) -> Iterator[None]:
    """Announce worker `node` as alive for the duration of the block (scaled mode only)."""
    redis_url = backend.redis_url
    if not redis_url:
        yield
        return
    client = redis_client(redis_url)
    key = _PREFIX + node
    stop = threading.Event()
    thread = threading.Thread(target=_beat, args=(client, key, stop), name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        # Gone at once rather than after the TTL; an unreachable Redis expires it anyway.
        with contextlib.suppress(redis.exceptions.RedisError):
            client.delete(key)
        client.close()


def live_workers(backend: Backend) -> list[str]:
    """Node names of the workers that refreshed their key within the TTL (scaled mode);
    raises `Unavailable` when Redis cannot be asked."""
    client = redis_client(backend.redis_url)
    try:
        with redis_errors("list workers"):
            keys = client.scan_iter(match=_PREFIX + "*", count=100)
            return sorted(key.decode()[len(_PREFIX) :] for key in keys)
    finally:
        client.close()
