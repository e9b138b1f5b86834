"""Per-client usage records behave the same on Redis (scaled) and in files (embedded)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.services import RedisServer
from workers.tenancy.usage import WINDOW_SECONDS, FileUsage, RedisUsage, Usage

CLIENT, OTHER = "ab" * 16, "cd" * 16


@pytest.fixture(params=["files", "redis"])
def usage(request: pytest.FixtureRequest, tmp_path: Path) -> Usage:
    if request.param == "files":
        return FileUsage(tmp_path / "usage")
    server: RedisServer = request.getfixturevalue("redis_server")
    found = RedisUsage(f"redis://{server.host}:{server.port}/3")
    found._client.flushdb()
    return found


def test_builds_are_remembered_per_client_until_dropped(usage: Usage) -> None:
    usage.add_build(CLIENT, "1" * 64)
    usage.add_build(CLIENT, "2" * 64)
    usage.add_build(CLIENT, "2" * 64)
    usage.add_build(OTHER, "3" * 64)
    assert usage.builds(CLIENT) == {"1" * 64, "2" * 64}
    usage.drop_builds(CLIENT, ["1" * 64])
    assert usage.builds(CLIENT) == {"2" * 64}
    assert usage.builds(OTHER) == {"3" * 64}


def test_uploads_are_counted_in_the_current_hour(usage: Usage) -> None:
    empty = usage.uploads(CLIENT)
    assert (empty.uploads, empty.bytes) == (0, 0)
    usage.add_upload(CLIENT, 100)
    usage.add_upload(CLIENT, 50)
    used = usage.uploads(CLIENT)
    assert (used.uploads, used.bytes) == (2, 150)
    assert time.time() < used.window_ends <= time.time() + WINDOW_SECONDS
    assert usage.uploads(OTHER).uploads == 0


def test_client_names_are_checked(usage: Usage) -> None:
    with pytest.raises(ValueError, match="invalid client"):
        usage.builds("../escape")
