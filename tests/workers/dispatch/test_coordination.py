"""Claims and leases behave the same on files and on a real Redis, across processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from tests.services import RedisServer
from workers.dispatch import coordination
from workers.dispatch.coordination import Coordination, FileCoordination, RedisCoordination
from workers.errors import Unavailable

KEY = "a" * 64


@pytest.fixture(params=["files", pytest.param("redis", marks=pytest.mark.integration)])
def coord(request: pytest.FixtureRequest, tmp_path: Path) -> Coordination:
    if request.param == "files":
        return FileCoordination(tmp_path / "coordination")
    server: RedisServer = request.getfixturevalue("redis_server")
    found = RedisCoordination(server.url)
    for name in (f"submit:{KEY}", f"build:{KEY}", f"recover:{KEY}"):
        found.release(name)
    return found


def test_a_claim_is_taken_once_until_released(coord: Coordination) -> None:
    assert coord.claim(f"submit:{KEY}", 60)
    assert not coord.claim(f"submit:{KEY}", 60)
    assert coord.held(f"submit:{KEY}")
    coord.release(f"submit:{KEY}")
    assert not coord.held(f"submit:{KEY}")
    assert coord.claim(f"submit:{KEY}", 60)


def test_a_claim_expires_after_its_ttl(coord: Coordination) -> None:
    assert coord.claim(f"recover:{KEY}", 0.3)
    time.sleep(0.5)
    assert not coord.held(f"recover:{KEY}")
    assert coord.claim(f"recover:{KEY}", 60)


def test_a_lease_is_exclusive_until_released(coord: Coordination) -> None:
    lease = coord.lease(f"build:{KEY}")
    assert lease is not None
    assert coord.lease(f"build:{KEY}") is None
    assert coord.held(f"build:{KEY}")
    lease.release()
    assert not coord.held(f"build:{KEY}")
    again = coord.lease(f"build:{KEY}")
    assert again is not None
    again.release()


def test_names_are_checked(coord: Coordination) -> None:
    for bad in ("submit:../x", "build:" + "g" * 64, "nocolon"):
        with pytest.raises(ValueError, match="invalid coordination name"):
            coord.claim(bad, 1)


def _hold_lease(factory: str, where: str, ready: multiprocessing.synchronize.Event) -> None:
    found = FileCoordination(Path(where)) if factory == "files" else RedisCoordination(where)
    lease = found.lease(f"build:{KEY}")
    assert lease is not None
    ready.set()
    time.sleep(600)


@pytest.mark.parametrize("factory", ["files", pytest.param("redis", marks=pytest.mark.integration)])
def test_a_dead_holder_loses_its_lease(
    factory: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if factory == "files":
        where = str(tmp_path / "coordination")
        found: Coordination = FileCoordination(Path(where))
    else:
        where = request.getfixturevalue("redis_server").url
        found = RedisCoordination(where)
        found.release(f"build:{KEY}")
    # A short TTL in the holder too (it is forked, so it sees the patched value).
    monkeypatch.setattr(coordination, "LEASE_TTL", 1.0)
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold_lease, args=(factory, where, ready))
    holder.start()
    assert ready.wait(30)
    assert found.lease(f"build:{KEY}") is None  # alive: still held (and renewed)
    time.sleep(1.5 if factory == "redis" else 0)
    assert found.held(f"build:{KEY}")
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    deadline = time.monotonic() + 5
    while found.held(f"build:{KEY}"):
        assert time.monotonic() < deadline, "the dead holder's lease never went away"
        time.sleep(0.1)
    lease = found.lease(f"build:{KEY}")
    assert lease is not None
    lease.release()


def test_redis_down_is_unavailable() -> None:
    down = RedisCoordination("redis://127.0.0.1:9/0")
    with pytest.raises(Unavailable, match="Redis is unavailable"):
        down.claim(f"submit:{KEY}", 1)
