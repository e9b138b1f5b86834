"""Metrics add up across processes (SQLite file, real Redis) and render as Prometheus text."""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.services import RedisServer
from workers.dispatch.shared_metrics import CounterStore, Metrics, RedisCounters, SqliteCounters
from workers.errors import Unavailable


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.integration)])
def counters(request: pytest.FixtureRequest, tmp_path: Path) -> CounterStore:
    if request.param == "sqlite":
        return SqliteCounters(tmp_path / "metrics.sqlite3")
    server: RedisServer = request.getfixturevalue("redis_server")
    found = RedisCounters(server.url)
    found._client.delete(RedisCounters.KEY)
    return found


def _count(counters: CounterStore, times: int) -> None:
    metrics = Metrics(counters)
    for _ in range(times):
        metrics.count("image_factory_builds_total", kind="iso")
        metrics.http_request("/image/<schematic_id>/<version>/<path>", "GET", 200, 0.003)


def test_counts_from_several_processes_add_up(counters: CounterStore) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_count, args=(counters, 50)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    text = Metrics(counters).render({"image_factory_queue_depth": 3})
    assert 'image_factory_builds_total{kind="iso"} 200\n' in text
    route = 'route="/image/<schematic_id>/<version>/<path>",method="GET"'
    assert f'image_factory_http_requests_total{{{route},status="200"}} 200\n' in text
    assert f"image_factory_http_request_duration_seconds_count{{{route}}} 200\n" in text
    assert "image_factory_queue_depth 3\n" in text
    assert "image_factory_metrics_up 1\n" in text


def test_histograms_are_cumulative(tmp_path: Path) -> None:
    metrics = Metrics(SqliteCounters(tmp_path / "m.sqlite3"))
    for seconds in (0.5, 3, 7, 7, 5000):
        metrics.observe("image_factory_build_duration_seconds", seconds, kind="image")
    text = metrics.render({})
    name = "image_factory_build_duration_seconds"
    expected = {"1.0": 1, "5.0": 2, "10.0": 4, "3600.0": 4, "+Inf": 5}
    for bound, count in expected.items():
        assert f'{name}_bucket{{kind="image",le="{bound}"}} {count}\n' in text
    assert f'{name}_sum{{kind="image"}} 5017.5\n' in text
    assert f'{name}_count{{kind="image"}} 5\n' in text
    assert f"# TYPE {name} histogram\n" in text


def test_label_values_are_escaped(tmp_path: Path) -> None:
    metrics = Metrics(SqliteCounters(tmp_path / "m.sqlite3"))
    metrics.http_request('/x"\\\ny', "GET", 404, 0.1)
    assert 'route="/x\\"\\\\\\ny"' in metrics.render({})


def test_unknown_names_and_labels_are_refused(tmp_path: Path) -> None:
    metrics = Metrics(SqliteCounters(tmp_path / "m.sqlite3"))
    with pytest.raises(ValueError, match="labels"):
        metrics.count("image_factory_builds_total", arch="amd64")
    with pytest.raises(ValueError, match="histogram"):
        metrics.count("image_factory_build_duration_seconds", kind="iso")


class _Down:
    """A counter store whose backend is unreachable."""

    def __init__(self) -> None:
        self.calls = 0

    def add(self, increments: Mapping[str, float]) -> None:
        self.calls += 1
        raise Unavailable("metrics backend down")

    def read(self) -> dict[str, float]:
        raise Unavailable("metrics backend down")


def test_a_store_that_is_down_never_fails_the_caller() -> None:
    down = _Down()
    metrics = Metrics(down)
    metrics.count("image_factory_builds_total", kind="iso")
    metrics.count("image_factory_builds_total", kind="iso")  # skipped for a few seconds
    assert down.calls == 1
    text = metrics.render({})
    assert "image_factory_metrics_up 0\n" in text
    assert "# TYPE image_factory_builds_total counter\n" in text


def test_unknown_methods_count_as_other(tmp_path: Path) -> None:
    metrics = Metrics(SqliteCounters(tmp_path / "m.sqlite3"))
    for i in range(50):
        metrics.http_request("/healthz", f"MADEUP{i}", 405, 0.001)
    metrics.http_request("/healthz", "get", 200, 0.001)  # methods are case-sensitive
    text = metrics.render({})
    assert "MADEUP" not in text
    total = 'image_factory_http_requests_total{route="/healthz",method="OTHER",status='
    assert f'{total}"405"}} 50\n' in text
    assert f'{total}"200"}} 1\n' in text


class _Recording:
    """A counter store in memory that remembers each write."""

    def __init__(self) -> None:
        self.writes: list[dict[str, float]] = []
        self.values: dict[str, float] = {}

    def add(self, increments: Mapping[str, float]) -> None:
        self.writes.append(dict(increments))
        for series, amount in increments.items():
            self.values[series] = self.values.get(series, 0.0) + amount

    def read(self) -> dict[str, float]:
        return dict(self.values)


def test_a_count_rides_along_with_the_request_in_one_write() -> None:
    recording = _Recording()
    metrics = Metrics(recording)
    route = "/image/<schematic_id>/<version>/<path>"
    for seconds in (0.003, 0.2):
        before = len(recording.writes)
        hit = metrics.counted("image_factory_cache_hits_total", kind="kernel")
        assert len(recording.writes) == before  # counted writes nothing
        metrics.http_request(route, "GET", 200, seconds, hit)
    assert len(recording.writes) == 2
    text = metrics.render({})
    assert 'image_factory_cache_hits_total{kind="kernel"} 2\n' in text
    total = f'image_factory_http_requests_total{{route="{route}",method="GET",status="200"}}'
    assert f"{total} 2\n" in text
    duration = "image_factory_http_request_duration_seconds"
    assert f'{duration}_bucket{{route="{route}",method="GET",le="0.005"}} 1\n' in text
    assert f'{duration}_bucket{{route="{route}",method="GET",le="0.25"}} 2\n' in text
    assert f'{duration}_count{{route="{route}",method="GET"}} 2\n' in text
    assert f'{duration}_sum{{route="{route}",method="GET"}} 0.203\n' in text


def test_remembered_series_keys_stay_exact_per_label_set() -> None:
    """The encoded keys are remembered; each label set must still get its own series."""
    recording = _Recording()
    metrics = Metrics(recording)
    for status in (200, 404, 200):
        metrics.http_request("/healthz", "GET", status, 0.001)
    metrics.count("image_factory_cache_hits_total", kind="iso")
    metrics.count("image_factory_cache_hits_total", kind="kernel")
    metrics.count("image_factory_cache_hits_total", kind="iso")
    text = metrics.render({})
    total = 'image_factory_http_requests_total{route="/healthz",method="GET",status='
    assert f'{total}"200"}} 2\n' in text
    assert f'{total}"404"}} 1\n' in text
    assert 'image_factory_cache_hits_total{kind="iso"} 2\n' in text
    assert 'image_factory_cache_hits_total{kind="kernel"} 1\n' in text
