"""Prometheus metrics that add up across every web process and worker.

Counters and histogram buckets live in one shared table, so `/metrics` on any web process
shows the whole service: a Redis hash in the scaled mode (workers on other machines count
their builds there too), an SQLite file under the data directory in the embedded default.
Writes are best effort: a metrics backend that is down never fails a download or a build
(it is logged, at most once a minute, and skipped for a few seconds). Gauges such as the
queue depth are measured when `/metrics` is scraped, not stored.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import redis

from workers.backends import Backend
from workers.dispatch.coordination import REDIS_PREFIX, redis_client, redis_errors
from workers.errors import Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

BUILD_SECONDS = (1.0, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0, 1800.0, 3600.0)
# Label values for `method`: the standard methods (case-sensitive, as HTTP says), else OTHER.
HTTP_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
)
HTTP_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0)
# Series keys kept encoded; label values come from fixed sets, so this bounds nothing real.
SERIES_KEYS_REMEMBERED = 4096


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # counter, histogram or gauge
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


FAMILIES = {
    f.name: f
    for f in (
        Family(
            "image_factory_builds_total",
            "counter",
            "Builds started (cache misses that ran the build), by asset kind.",
            ("kind",),
        ),
        Family(
            "image_factory_build_failures_total",
            "counter",
            "Builds that ended in an error, by asset kind and reason (store_unavailable, "
            "refused, tool_failed, time_limit, internal).",
            ("kind", "reason"),
        ),
        Family(
            "image_factory_build_duration_seconds",
            "histogram",
            "Wall time of successful builds, by asset kind.",
            ("kind",),
            BUILD_SECONDS,
        ),
        Family(
            "image_factory_cache_hits_total",
            "counter",
            "Asset requests answered from a finished build, by asset kind.",
            ("kind",),
        ),
        Family(
            "image_factory_cache_misses_total",
            "counter",
            "Asset requests that found no finished build, by asset kind.",
            ("kind",),
        ),
        Family(
            "image_factory_corrupt_blobs_total",
            "counter",
            "Stored assets whose bytes no longer matched their digest (discarded, rebuilt).",
        ),
        Family(
            "image_factory_whole_bodies_total",
            "counter",
            "Whole-body downloads streamed by the web service, by how their bytes are checked: "
            "hashed on the wire, or stamp (a local file sent zero-copy while it shows the "
            "file stamp it had when a whole hash of it matched).",
            ("check",),
        ),
        Family(
            "image_factory_http_requests_total",
            "counter",
            "HTTP requests, by route, method and status.",
            ("route", "method", "status"),
        ),
        Family(
            "image_factory_http_request_duration_seconds",
            "histogram",
            "Time to the response headers, by route and method.",
            ("route", "method"),
            HTTP_SECONDS,
        ),
        Family(
            "image_factory_queue_depth",
            "gauge",
            "Builds waiting in the broker queue for a worker.",
        ),
        Family(
            "image_factory_workers_alive",
            "gauge",
            "Build workers whose heartbeat is current (scaled mode).",
        ),
        Family(
            "image_factory_metrics_up",
            "gauge",
            "1 when the shared metrics store answered this scrape.",
        ),
    )
}


class CounterStore(Protocol):
    def add(self, increments: Mapping[str, float]) -> None:
        """Add to series (created at 0); raise on failure."""
        ...

    def read(self) -> dict[str, float]:
        """Every series and its value; raise `Unavailable` on failure."""
        ...


@functools.lru_cache(maxsize=SERIES_KEYS_REMEMBERED)
def _series(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    """The stored key of a series. Remembered: every request names the same few series, and
    encoding their keys again was a tenth of a cache hit's CPU."""
    return json.dumps([name, [list(pair) for pair in labels]], separators=(",", ":"))


@functools.lru_cache(maxsize=SERIES_KEYS_REMEMBERED)
def _http_series(route: str, method: str, status: int, le: float) -> tuple[str, str, str, str]:
    """The keys one HTTP request adds to: its count, its latency bucket, sum and count."""
    name = "image_factory_http_request_duration_seconds"
    labels = (("route", route), ("method", method))
    return (
        _series("image_factory_http_requests_total", (*labels, ("status", str(status)))),
        _series(f"{name}_bucket", (*labels, ("le", _number(le)))),
        _series(f"{name}_sum", labels),
        _series(f"{name}_count", labels),
    )


class Metrics:
    """Records into a `CounterStore`; renders the Prometheus text format."""

    RETRY_AFTER_FAILURE = 5.0
    LOG_EVERY = 60.0

    def __init__(self, store: CounterStore) -> None:
        self._store = store
        self._skip_until = 0.0
        self._last_log = -math.inf
        self._lock = threading.Lock()

    def count(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._add(self.counted(name, amount, **labels))

    def counted(self, name: str, amount: float = 1.0, **labels: str) -> dict[str, float]:
        """What `count` would add, not written: for a caller that adds it to a later write
        (`http_request(..., also=)`), one write per request instead of two."""
        family = self._family(name, "counter", labels)
        return {_series(family.name, self._ordered(family, labels)): amount}

    def add(self, increments: Mapping[str, float]) -> None:
        """Write increments made by `counted`."""
        self._add(increments)

    def observe(self, name: str, value: float, **labels: str) -> None:
        """One histogram observation: its bucket (stored per bucket, summed up on render),
        the sum and the count."""
        family = self._family(name, "histogram", labels)
        ordered = self._ordered(family, labels)
        le = next((b for b in family.buckets if value <= b), math.inf)
        self._add(
            {
                _series(f"{name}_bucket", (*ordered, ("le", _number(le)))): 1,
                _series(f"{name}_sum", ordered): value,
                _series(f"{name}_count", ordered): 1,
            }
        )

    def http_request(
        self,
        route: str,
        method: str,
        status: int,
        seconds: float,
        also: Mapping[str, float] | None = None,
    ) -> None:
        """One HTTP request: its count and its latency (and `also`, what the request
        `counted`), written in one round trip. `route` is a route template (or one fixed
        word); a method outside `HTTP_METHODS` counts as `OTHER`, so made-up methods cannot
        create series."""
        method = method if method in HTTP_METHODS else "OTHER"
        le = next((b for b in HTTP_SECONDS if seconds <= b), math.inf)
        total, bucket, summed, counted = _http_series(route, method, status, le)
        increments = dict(also) if also else {}
        increments[total] = 1
        increments[bucket] = 1
        increments[summed] = seconds
        increments[counted] = 1
        self._add(increments)

    def _family(self, name: str, kind: str, labels: Mapping[str, str]) -> Family:
        family = FAMILIES[name]
        if family.kind != kind or set(labels) != set(family.labels):
            raise ValueError(f"{name} is a {family.kind} with labels {family.labels}")
        return family

    @staticmethod
    def _ordered(family: Family, labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple((label, str(labels[label])) for label in family.labels)

    def _add(self, increments: Mapping[str, float]) -> None:
        now = time.monotonic()
        if now < self._skip_until:
            return
        try:
            self._store.add(increments)
        except (Unavailable, redis.exceptions.RedisError, sqlite3.Error, OSError) as error:
            with self._lock:
                self._skip_until = now + self.RETRY_AFTER_FAILURE
                if now - self._last_log >= self.LOG_EVERY:
                    self._last_log = now
                    log.warning("metrics not recorded (store unavailable): %s", error)

    def render(self, gauges: Mapping[str, float]) -> str:
        """The exposition text: stored series, then the gauges measured by the caller."""
        try:
            values = self._store.read()
            up = 1.0
        except (Unavailable, sqlite3.Error, OSError) as error:
            log.warning("metrics store unavailable: %s", error)
            values, up = {}, 0.0
        rows: dict[str, list[_Row]] = {}
        for series, value in values.items():
            name, pairs = json.loads(series)
            base = _family_of(name)
            if base is not None:
                labels = tuple((str(k), str(v)) for k, v in pairs)
                rows.setdefault(base, []).append(_Row(name, labels, value))
        lines: list[str] = []
        for family in FAMILIES.values():
            if family.kind == "gauge":
                continue
            lines.append(f"# HELP {family.name} {family.help}")
            lines.append(f"# TYPE {family.name} {family.kind}")
            found = rows.get(family.name, [])
            if family.kind == "histogram":
                lines += _histogram_lines(family, found)
            else:
                lines += [_line(row.name, row.labels, row.value) for row in sorted(found)]
        for name, value in {**gauges, "image_factory_metrics_up": up}.items():
            lines.append(f"# HELP {name} {FAMILIES[name].help}")
            lines.append(f"# TYPE {name} gauge")
            lines.append(_line(name, (), value))
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, order=True)
class _Row:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


def _family_of(series_name: str) -> str | None:
    """The family a stored series belongs to (histograms store `_bucket`, `_sum`, `_count`)."""
    if series_name in FAMILIES:
        return series_name
    for suffix in ("_bucket", "_sum", "_count"):
        base = series_name.removesuffix(suffix)
        if base != series_name and base in FAMILIES and FAMILIES[base].kind == "histogram":
            return base
    return None


def _histogram_lines(family: Family, rows: list[_Row]) -> list[str]:
    """Cumulative buckets per label set, as Prometheus expects, from per-bucket counts."""
    by_labels: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
    for row in rows:
        base = tuple(pair for pair in row.labels if pair[0] != "le")
        slot = by_labels.setdefault(base, {})
        if row.name.endswith("_bucket"):
            part = "le=" + dict(row.labels).get("le", "")
        else:
            part = row.name.rsplit("_", 1)[1]
        slot[part] = slot.get(part, 0.0) + row.value
    lines: list[str] = []
    for labels, slot in sorted(by_labels.items()):
        running = 0.0
        for bound in (*family.buckets, math.inf):
            running += slot.get(f"le={_number(bound)}", 0.0)
            lines.append(_line(f"{family.name}_bucket", (*labels, ("le", _number(bound))), running))
        lines.append(_line(f"{family.name}_sum", labels, slot.get("sum", 0.0)))
        lines.append(_line(f"{family.name}_count", labels, slot.get("count", 0.0)))
    return lines


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _line(name: str, labels: Sequence[tuple[str, str]], value: float) -> str:
    text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    shown = int(value) if float(value).is_integer() else value
    return f"{name}{{{text}}} {shown}" if text else f"{name} {shown}"


# --- backends -------------------------------------------------------------------------------


class RedisCounters:
    """One hash; HINCRBYFLOAT per series, one round trip per call."""

    KEY = REDIS_PREFIX + "metrics"

    def __init__(self, url: str) -> None:
        self._client = redis_client(url)

    def add(self, increments: Mapping[str, float]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for series, amount in increments.items():
            pipe.hincrbyfloat(self.KEY, series, amount)
        pipe.execute()

    def read(self) -> dict[str, float]:
        with redis_errors("read metrics"):
            raw = self._client.hgetall(self.KEY)
        return {_text(k): float(v) for k, v in raw.items()}


def off_the_hub(call: Callable[[], T]) -> T:
    """`call()`, which may block inside C code (SQLite waiting for another process's write
    lock), without stalling a gevent web process: on a real thread of gevent's pool when
    the process is monkey-patched, directly otherwise."""
    if "gevent" in sys.modules:
        import gevent.monkey

        if gevent.monkey.is_module_patched("threading"):
            return gevent.get_hub().threadpool.apply(call)  # type: ignore[no-any-return]
    return call()


class SqliteCounters:
    """One table in a WAL-mode SQLite file; one connection per process, used by one thread
    (or greenlet: under gevent a thread-local one would be opened for every request) at a
    time. A write first tries without waiting; only when another process holds the write
    lock does it wait, `off_the_hub` (WAL readers never wait)."""

    BUSY_WAIT_MS = 10_000

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._held: tuple[int, sqlite3.Connection] | None = None
        self._guard = threading.Lock()  # over the fields below, never over a write
        self._pending: dict[str, float] = {}
        self._writing = False  # one thread (or greenlet) of this process writes at a time

    def _connection(self) -> sqlite3.Connection:
        """This process's connection (call with `_guard` held)."""
        held = self._held
        if held is not None and held[0] == os.getpid():
            return held[1]
        connection = off_the_hub(self._connect)
        self._held = (os.getpid(), connection)
        return connection

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=self.BUSY_WAIT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        connection.execute("PRAGMA journal_mode=WAL")
        # Counters need no durability across a power cut; they need to be cheap.
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS series (name TEXT PRIMARY KEY, value REAL NOT NULL)"
        )
        connection.execute("PRAGMA busy_timeout=0")
        return connection

    @staticmethod
    def _write(connection: sqlite3.Connection, rows: list[tuple[str, float]]) -> None:
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                "INSERT INTO series (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                rows,
            )

    def _write_waiting(self, connection: sqlite3.Connection, rows: list[tuple[str, float]]) -> None:
        connection.execute(f"PRAGMA busy_timeout={self.BUSY_WAIT_MS}")
        try:
            self._write(connection, rows)
        finally:
            connection.execute("PRAGMA busy_timeout=0")

    def add(self, increments: Mapping[str, float]) -> None:
        """Add to the counters. Increments arriving while this process is writing are
        merged and written by the writer in one more transaction (so a busy process makes
        few, larger writes instead of queueing one per request)."""
        with self._guard:
            for name, amount in increments.items():
                self._pending[name] = self._pending.get(name, 0.0) + amount
            if self._writing:
                return
            self._writing = True
        try:
            while True:
                with self._guard:
                    rows = list(self._pending.items())
                    self._pending.clear()
                    if not rows:
                        return
                    connection = self._connection()
                try:
                    self._write(connection, rows)
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error) and "busy" not in str(error):
                        raise
                    off_the_hub(functools.partial(self._write_waiting, connection, rows))
        finally:
            with self._guard:
                self._writing = False

    def read(self) -> dict[str, float]:
        with self._guard:
            self._connection()  # the table exists
        # A connection of its own: the writer's may be mid-transaction on another thread.
        reader = sqlite3.connect(self.path, timeout=self.BUSY_WAIT_MS / 1000)
        try:
            rows = reader.execute("SELECT name, value FROM series").fetchall()
        finally:
            reader.close()
        return {name: float(value) for name, value in rows}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def make_metrics(backend: Backend) -> Metrics:
    """Counters where the backend keeps shared state: Redis, or SQLite in the data directory."""
    if backend.redis_url:
        return Metrics(RedisCounters(backend.redis_url))
    return Metrics(SqliteCounters(backend.data_dir / "metrics" / "metrics.sqlite3"))
