"""The embedded default: `image-factory serve` alone (no Redis, no S3) passes the same
download checks as the scaled deployment, with its own build worker doing the builds."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factory.download_checks import (
    check_downloads,
    check_single_flight,
    headers_of,
    schematic_body,
    sha256_of,
    status_of,
)
from tests.factory.stacks import Stack, start_embedded, stock
from tests.factory.test_images import tamper_keeping_size_and_mtime
from workers.releases.stored import Release
from workers.settings import Settings
from workers.store import LocalStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedded(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("embedded")
    settings = Settings(data_dir=root / "data")
    stock(LocalStore(settings.data_dir / "store"), settings, reference_release, root / "seed")
    stack = start_embedded(root, settings.data_dir)
    try:
        yield stack
    finally:
        stack.stop()


def _schematic(stack: Stack, marker: str) -> str:
    return stack.create_schematic(schematic_body(marker))


def test_fifty_concurrent_requests_run_one_build(embedded: Stack, tmp_path: Path) -> None:
    sid = _schematic(embedded, "fifty")
    check_single_flight(embedded, sid, tmp_path, lambda: embedded.log("serve"))


def test_downloads_with_real_clients(embedded: Stack, tmp_path: Path) -> None:
    sid = _schematic(embedded, "clients")
    digest = check_downloads(embedded, sid, "metal-amd64.qcow2", tmp_path)
    assert digest == sha256_of(tmp_path / "metal-amd64.qcow2")


def test_corrupt_blob_is_detected_and_rebuilt(embedded: Stack, tmp_path: Path) -> None:
    sid = _schematic(embedded, "fifty")
    path = "initramfs-amd64.xz"
    # Built by the first test when it ran in this process; built here otherwise.
    embedded.curl("--fail", "-o", str(tmp_path / "first"), f"/image/{sid}/v1.0.0/{path}")
    key = embedded.build_key(sid, path)
    started = embedded.log("serve").count(f"build {key} started")
    sha = str(embedded.get_json(f"/builds/{key}")["sha256"])
    blob = embedded.root / "data" / "store" / "blobs" / "sha256" / sha
    with blob.open("r+b") as damaged:  # in place, as a failing disk would
        damaged.seek(1000)
        damaged.write(b"\xff" * 16)

    embedded.curl("--fail", "-o", str(tmp_path / "again"), f"/image/{sid}/v1.0.0/{path}")

    assert sha256_of(tmp_path / "again") == sha
    assert sha256_of(blob) == sha
    assert embedded.log("serve").count(f"build {key} started") == started + 1


def test_build_progress_streams_as_server_sent_events(embedded: Stack) -> None:
    sid = _schematic(embedded, "events")
    path = "metal-amd64.raw.xz"
    key = embedded.build_key(sid, path)  # starts the build

    stream = embedded.curl("--fail", "-N", f"/builds/{key}/events")

    events = []
    for block in stream.stdout.decode().strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    stages = [data["stage"] for name, data in events if name == "stage"]
    assert {"disk", "compress"} <= set(stages), events
    lines = [data["line"] for name, data in events if name == "log"]
    assert any(f"build {key} started" in line for line in lines), events
    name, done = events[-1]
    assert name == "done", events
    assert done["download_url"] == f"/image/{sid}/v1.0.0/{path}"
    status = embedded.get_json(f"/builds/{key}")
    assert (done["sha256"], done["size"]) == (status["sha256"], status["size"])
    assert {"disk", "compress", "upload"} <= set(dict(status["stages"]))  # type: ignore[call-overload]


def _worker_pid(stack: Stack) -> int:
    found = re.findall(r"started the build worker \(pid (\d+)\)", stack.log("serve"))
    return int(found[-1])


def test_a_killed_worker_is_restarted_and_its_build_finished(
    embedded: Stack, tmp_path: Path
) -> None:
    sid = _schematic(embedded, "killed")
    path = "metal-amd64.raw.xz"
    key = embedded.build_key(sid, path)
    client = subprocess.Popen(
        [
            "curl",
            "-sS",
            "--fail",
            "-o",
            str(tmp_path / "asset"),
            f"{embedded.url}/image/{sid}/v1.0.0/{path}",
        ]
    )
    deadline = time.monotonic() + 120
    while embedded.get_json(f"/builds/{key}").get("stage") not in {"disk", "compress"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim = _worker_pid(embedded)
    pool = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(victim)], capture_output=True, text=True
    ).stdout.split()
    for pid in [victim, *map(int, pool)]:
        os.kill(pid, signal.SIGKILL)

    assert client.wait(timeout=300) == 0
    status = embedded.get_json(f"/builds/{key}")
    assert status["state"] == "done"
    assert sha256_of(tmp_path / "asset") == status["sha256"]
    assert _worker_pid(embedded) != victim  # the supervisor started a new worker
    assert embedded.log("serve").count(f"build {key} finished") == 1


def test_bytes_changed_under_the_same_mtime_never_reach_a_client_complete(
    embedded: Stack, tmp_path: Path
) -> None:
    sid = _schematic(embedded, "tamper-wire")
    path = "initramfs-amd64.xz"
    url = f"/image/{sid}/v1.0.0/{path}"
    embedded.curl("--fail", "-o", str(tmp_path / "first"), url)
    key = embedded.build_key(sid, path)
    status = embedded.get_json(f"/builds/{key}")
    sha, size = str(status["sha256"]), int(str(status["size"]))
    assert size > 2 * 1024 * 1024  # more than one chunk goes out before the last is checked
    blob = embedded.root / "data" / "store" / "blobs" / "sha256" / sha

    # Two web processes: one that has not served this build yet checks the whole blob first
    # (a mismatch is rebuilt and the right bytes served); one that has streams it, hashing as
    # it goes. Tamper until a request meets the streaming check; no answer may ever be a
    # complete body with the changed bytes.
    cuts = 0
    for attempt in range(12):
        embedded.curl("--fail", "-o", str(tmp_path / "fresh"), url)  # (re)built and served
        tamper_keeping_size_and_mtime(blob, 1000 + attempt)
        answer = embedded.curl("-D", "-", "-o", str(tmp_path / "got"), url, check=False)
        received = (tmp_path / "got").read_bytes()
        if answer.returncode == 0:
            assert hashlib.sha256(received).hexdigest() == sha  # checked first, rebuilt
            continue
        assert answer.returncode == 18, answer.stderr  # "transfer closed with bytes remaining"
        assert headers_of(answer.stdout)["etag"] == f'"{sha}"'
        assert headers_of(answer.stdout)["content-length"] == str(size)
        assert len(received) < size
        assert hashlib.sha256(received).hexdigest() != sha
        cuts += 1
        if cuts == 2:
            break
    assert cuts == 2  # the streaming check cut the connection (twice, to be sure it holds)

    embedded.curl("--fail", "-o", str(tmp_path / "again"), url)  # rebuilt
    assert sha256_of(tmp_path / "again") == sha


def test_errors_of_the_http_server_itself_are_plain_text(embedded: Stack, tmp_path: Path) -> None:
    too_long = embedded.curl("-D", "-", "-o", str(tmp_path / "body"), "/image/" + "a" * 9000)
    assert status_of(too_long.stdout) == 414
    headers = headers_of(too_long.stdout)
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["server"].startswith("Image Factory ")
    body = (tmp_path / "body").read_text()
    assert body.startswith("URI Too Long: ")
    assert body.endswith("\n")
    assert "<" not in body
