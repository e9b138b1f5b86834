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
