"""Fair use against real deployments on loopback: per-client build limits and fair ordering,
and a web service that keeps answering while hundreds of slow clients and event streams hang
on to it (the embedded default and the scaled web processes).

Clients are told apart by their tokens' names (`factory.clients.client_identity`), as two
machines would be by their addresses: each client here is a `read` token made with
`image-factory token create`.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factory.slow_clients import IDLE, SLOW, STREAMS, open_slow_clients
from tests.factory.stacks import (
    Stack,
    client_token,
    image_factory,
    prepare_scaled,
    scaled_env,
    start_embedded,
    stock,
)
from tests.services import RedisServer, S3Server, free_ports
from workers.releases.stored import Release
from workers.settings import Settings
from workers.store import LocalStore

pytestmark = pytest.mark.integration

CLIENT_BUILDS = 3
FLOOD_ATTEMPTS = 8
ASSET = "cmdline-metal-amd64"
HEALTH_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def embedded(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("fair-use")
    settings = Settings(data_dir=root / "data")
    stock(LocalStore(settings.data_dir / "store"), settings, reference_release, root / "seed")
    limits = {
        "IMAGE_FACTORY_WORKER_CONCURRENCY": "1",
        "IMAGE_FACTORY_MAX_CLIENT_BUILDS": str(CLIENT_BUILDS),
    }
    stack = start_embedded(root, settings.data_dir, limits)
    try:
        yield stack
    finally:
        stack.stop()


def _schematic(stack: Stack, marker: str) -> str:
    return stack.create_schematic(f"customization:\n  extraKernelArgs: [fair={marker}]\n".encode())


def _token(stack: Stack, client: str) -> str:
    """The `read` token of the client named `client` on `stack`."""
    return client_token(stack.root, client, lambda: stack.token(client, "read"))


def _post_build(stack: Stack, client: str, schematic: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"schematic": schematic, "version": "v1.0.0", "path": ASSET}).encode()
    request = urllib.request.Request(
        f"{stack.url}/builds",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {_token(stack, client)}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _worker_pid(stack: Stack) -> int:
    found = re.findall(r"started the build worker \(pid (\d+)\)", stack.log("serve"))
    return int(found[-1])


@contextlib.contextmanager
def _worker_paused(stack: Stack) -> Iterator[None]:
    """The build worker stopped (SIGSTOP) for the block: builds stay queued meanwhile."""
    pid = _worker_pid(stack)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _wait_done(stack: Stack, key: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = stack.get_json(f"/builds/{key}")["state"]
        assert state != "failed", stack.get_json(f"/builds/{key}")
        if state == "done":
            return
        time.sleep(0.5)
    raise AssertionError(f"build {key} never finished")


def test_a_flooding_client_does_not_delay_another_clients_first_build(embedded: Stack) -> None:
    flood_schematics = [_schematic(embedded, f"flood-{n}") for n in range(FLOOD_ATTEMPTS)]
    other_schematic = _schematic(embedded, "other")
    with _worker_paused(embedded):
        flood = [_post_build(embedded, "flood", sid) for sid in flood_schematics]
        other = _post_build(embedded, "other", other_schematic)
    accepted = [json.loads(body)["key"] for status, _, body in flood if status == 202]
    refused = [(headers, body) for status, headers, body in flood if status == 429]
    assert len(accepted) == CLIENT_BUILDS
    assert len(refused) == FLOOD_ATTEMPTS - CLIENT_BUILDS
    for headers, body in refused:
        assert int(headers["Retry-After"]) > 0
        assert headers["Content-Type"].startswith("text/plain")
        assert b"builds queued or running" in body
    assert other[0] == 202, other
    other_key = json.loads(other[2])["key"]

    for key in [*accepted, other_key]:
        _wait_done(embedded, key)
    log = embedded.log("serve")
    finished = {key: log.index(f"build {key} finished") for key in [*accepted, other_key]}
    order = sorted(finished, key=finished.__getitem__)
    print(
        "finish order:", ["other" if k == other_key else f"flood{accepted.index(k)}" for k in order]
    )
    # The other client's first build went ahead of the flood's second and third, which were
    # still queued when it finished (the flood's first was first in the queue).
    assert order.index(other_key) <= 1
    assert finished[other_key] < finished[accepted[1]] < finished[accepted[2]]
    # Builds that are over no longer count: the flood client may build again.
    assert _post_build(embedded, "flood", flood_schematics[-1])[0] == 202


def _health_seconds(port: int) -> float:
    """How long `GET /healthz` took (it must answer 200 within HEALTH_TIMEOUT)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HEALTH_TIMEOUT)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
    finally:
        connection.close()
    return time.monotonic() - started


def check_healthy_under_slow_clients(port: int, event_path: str, mode: str) -> None:
    with contextlib.ExitStack() as clients:
        open_slow_clients(port, event_path, clients)
        seconds = [_health_seconds(port) for _ in range(5)]
    print(
        f"{mode}: /healthz with {IDLE} idle, {SLOW} slow and {STREAMS} streaming connections "
        f"open: {', '.join(f'{s * 1000:.1f} ms' for s in seconds)}"
    )
    assert _health_seconds(port) < HEALTH_TIMEOUT


def test_slow_clients_and_event_streams_leave_healthz_answering(embedded: Stack) -> None:
    sid = _schematic(embedded, "streams")
    with _worker_paused(embedded):  # the build stays queued: its event streams stay open
        status, _, body = _post_build(embedded, "streams", sid)
        assert status == 202
        key = json.loads(body)["key"]
        check_healthy_under_slow_clients(embedded.port, f"/builds/{key}/events", "embedded")


def test_scaled_web_processes_keep_answering_under_slow_clients(
    reference_release: tuple[LocalStore, Release],
    redis_server: RedisServer,
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    """The scaled web service alone (no build worker: the build stays queued)."""
    port = free_ports(1)[0]
    shared = tmp_path / "shared"
    env = {
        **scaled_env(redis_server, s3_server, "fair-use", shared / "keys", port),
        # A database of its own on the shared Redis: nobody else's queue or claims.
        "IMAGE_FACTORY_BROKER_URL": f"redis://{redis_server.host}:{redis_server.port}/9",
    }
    prepare_scaled(tmp_path, env, reference_release, shared)
    env["IMAGE_FACTORY_DATA_DIR"] = str(tmp_path / "web")
    stack = Stack(port, tmp_path, env)
    try:
        argv = [image_factory(), "serve", "--port", str(port), "--workers", "2"]
        stack.start("serve", argv, f"{stack.url}/healthz")
        sid = _schematic(stack, "scaled-streams")
        status, _, body = _post_build(stack, "streams", sid)
        assert status == 202, body
        key = json.loads(body)["key"]
        check_healthy_under_slow_clients(port, f"/builds/{key}/events", "scaled")
    finally:
        stack.stop()


def test_files_leave_whole_and_in_ranges_through_the_gevent_workers(embedded: Stack) -> None:
    """Downloads go out with the kernel's sendfile on the gevent workers (`_ZeroCopySocket`):
    a multi-megabyte asset, whole and as a range from its middle."""
    sid = _schematic(embedded, "sendfile")
    url = f"{embedded.url}/image/{sid}/v1.0.0/kernel-amd64"
    with urllib.request.urlopen(url, timeout=300) as response:
        cold = response.read()  # streamed before the build is published: no ETag yet
    with urllib.request.urlopen(url, timeout=300) as response:
        whole = response.read()
        etag = response.headers["ETag"].strip('"')
    assert len(whole) > 4 * 1024 * 1024
    assert whole == cold
    assert hashlib.sha256(whole).hexdigest() == etag
    start, end = len(whole) // 3, len(whole) // 3 + 3 * 1024 * 1024
    ranged = urllib.request.Request(url, headers={"Range": f"bytes={start}-{end}"})
    with urllib.request.urlopen(ranged, timeout=60) as response:
        assert response.status == 206
        assert response.read() == whole[start : end + 1]
