"""The test servers themselves: they answer, and a server that cannot start says why."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
import redis

from tests.services import (
    RedisServer,
    S3Server,
    ServerProcess,
    ServerStartError,
    _start_ready,
    free_ports,
    weed_binary,
)
from workers.backends import choose_backend
from workers.store import make_store


@pytest.mark.integration
def test_redis_server_answers(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.set("test-services:key", b"value")
        assert client.get("test-services:key") == b"value"
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()


@pytest.mark.integration
def test_weed_takes_writes_in_many_buckets(s3_server: S3Server, tmp_path: Path) -> None:
    # Each test uses a bucket of its own; with weed's default growth (7 volumes per bucket)
    # the 15th bucket already failed with "No writable volumes and no free volumes left".
    for n in range(24):
        store = make_store(
            choose_backend(s3_server.settings(tmp_path, f"many-{uuid.uuid4().hex[:12]}-{n}"))
        )
        store.put_bytes("k", b"x")
        assert store.get_bytes("k") == b"x"


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_weed_binary_is_installed_with_the_dev_extras() -> None:
    assert weed_binary().is_file()


def _shell_server(tmp_path: Path, script: str) -> ServerProcess:
    return ServerProcess("fake", ["sh", "-c", script], tmp_path / "fake.log", tmp_path)


def test_a_server_that_exits_reports_its_log_tail(tmp_path: Path) -> None:
    attempts: list[int] = []

    def start(attempt: int) -> ServerProcess:
        attempts.append(attempt)
        return _shell_server(tmp_path, f"echo 'bind failed on attempt {attempt}'; exit 3")

    with pytest.raises(ServerStartError) as caught:
        _start_ready(start, lambda: False)
    message = str(caught.value)
    assert "fake exited with status 3" in message
    assert "bind failed on attempt 3" in message
    assert "command: sh -c" in message
    assert attempts == [1, 2, 3]  # a server dying at once is retried on fresh ports


def test_a_server_that_never_answers_is_stopped(tmp_path: Path) -> None:
    started: list[ServerProcess] = []

    def start(attempt: int) -> ServerProcess:
        started.append(_shell_server(tmp_path, "echo still starting; exec sleep 600"))
        return started[-1]

    with pytest.raises(ServerStartError, match="did not answer within") as caught:
        _start_ready(start, lambda: False, timeout=1)
    assert "still starting" in str(caught.value)
    assert len(started) == 1  # a hung server is not retried
    assert started[0].proc.returncode is not None  # and not left running
