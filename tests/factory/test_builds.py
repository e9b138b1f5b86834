"""`POST /builds`, `GET /builds/<key>` and its Server-Sent Events, as the web form uses them,
with a real build worker (a thread) doing the builds."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import request

from factory.builds import event_stream, named_status
from factory.images import prefers_async
from factory.sidecars import split_suffix
from schematics import parse_schematic
from tests.factory.served import Served, served
from workers.dispatch.build_queue import DONE, QUEUED, RUNNING, BuildStatus
from workers.outputs.finished_builds import BuiltAsset
from workers.outputs.schematics_store import save_schematic


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory) as found:
        yield found


def _schematic(srv: Served, marker: str) -> str:
    body = f"customization:\n  extraKernelArgs: [factory.test={marker}]\n".encode()
    return save_schematic(srv.store, parse_schematic(body))


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_post_starts_a_build_and_the_events_follow_it_to_the_end(srv: Served) -> None:
    sid = _schematic(srv, "events")
    response = srv.client.post(
        "/builds", json={"schematic": sid, "version": "1.0.0", "path": "cmdline-metal-amd64"}
    )
    assert response.status_code == 202
    body = response.get_json()
    key = body["key"]
    assert body == {
        "key": key,
        "state": "queued",
        "status_url": f"/builds/{key}",
        "events_url": f"/builds/{key}/events",
        "download_url": f"/image/{sid}/v1.0.0/cmdline-metal-amd64",
    }
    assert response.headers["Location"] == f"/builds/{key}"

    stream = srv.client.get(body["events_url"])
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    events = _events(stream.get_data(as_text=True))
    names = [name for name, _ in events]
    assert names[-1] == "done"
    # Stages and log lines before it (none when the build was over before the stream began).
    assert set(names[:-1]) <= {"stage", "log"}
    done = events[-1][1]
    asset = srv.client.get(body["download_url"])
    assert done["download_url"] == body["download_url"]
    assert done["size"] == len(asset.data)
    assert done["sha256"] == asset.headers["ETag"].strip('"')

    status = srv.client.get(body["status_url"]).get_json()
    assert status["state"] == "done"
    assert status["sha256"] == done["sha256"]
    assert status["download_url"] == body["download_url"]
    assert set(status["stages"]) >= {"cmdline", "upload"}


def test_post_a_built_asset_is_200_done(srv: Served) -> None:
    sid = _schematic(srv, "built")
    srv.client.get(f"/image/{sid}/v1.0.0/cmdline-metal-amd64")
    response = srv.client.post(
        "/builds", data={"schematic": sid, "version": "v1.0.0", "path": "cmdline-metal-amd64"}
    )
    assert response.status_code == 200
    assert response.get_json()["state"] == "done"
    events = _events(srv.client.get(response.get_json()["events_url"]).get_data(as_text=True))
    assert [name for name, _ in events] == ["done"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"schematic": "x"}, 400, "POST /builds needs string fields schematic, version, path"),
        ([1, 2], 400, "the body must be a JSON object"),
        (
            {"schematic": "0" * 64, "version": "v1.0.0", "path": "kernel-amd64"},
            404,
            "not found",
        ),
        ({"schematic": "{id}", "version": "v1.0.0", "path": "kernel-foo"}, 400, "invalid arch"),
        ({"schematic": "{id}", "version": "1.x", "path": "kernel-amd64"}, 400, "invalid version"),
    ],
)
def test_bad_build_requests(srv: Served, body: Any, status: int, message: str) -> None:
    if isinstance(body, dict):
        body = {k: v.replace("{id}", srv.schematic_id) for k, v in body.items()}
    response = srv.client.post("/builds", json=body)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)


def test_deeply_nested_json_is_a_400(srv: Served) -> None:
    deep = b'{"schematic":' + b"[" * 8000 + b"]" * 8000 + b"}"  # under the body limit
    response = srv.client.post("/builds", data=deep, content_type="application/json")
    assert response.status_code == 400
    assert response.get_data(as_text=True) == "the body's JSON is nested too deeply\n"


def test_a_body_over_the_limit_is_413_before_it_is_read(srv: Served) -> None:
    limit = srv.settings.max_form_bytes
    body = io.BytesIO(b'{"schematic": "' + b"x" * 10 * limit + b'"}')
    response = srv.client.post(
        "/builds",
        input_stream=body,
        content_type="application/json",
        headers={"Content-Length": str(len(body.getvalue()))},
    )
    assert response.status_code == 413
    assert response.get_data(as_text=True) == (
        f"POST /builds body is larger than the limit of {limit} bytes\n"
    )
    assert body.tell() == 0
    body.seek(0)
    response = srv.client.post(
        "/builds",
        input_stream=body,
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_base={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert body.tell() <= limit + 1


@pytest.mark.parametrize("key", ["0" * 64, "not-a-key", "A" * 64])
def test_unknown_builds_are_404(srv: Served, key: str) -> None:
    assert srv.client.get(f"/builds/{key}").status_code == 404
    assert srv.client.get(f"/builds/{key}/events").status_code == 404


def test_a_queued_build_shows_its_state(srv: Served) -> None:
    sid = _schematic(srv, "poll")
    body = srv.client.post(
        "/builds", json={"schematic": sid, "version": "v1.0.0", "path": "kernel-amd64"}
    ).get_json()
    states = set()
    deadline = time.monotonic() + 60
    while "done" not in states:
        assert time.monotonic() < deadline
        status = srv.client.get(body["status_url"]).get_json()
        assert status["key"] == body["key"]
        states.add(status["state"])
        time.sleep(0.05)
    assert states <= {"queued", "running", "done"}


def test_suffixes_and_preferences_are_read_as_upstream() -> None:
    assert split_suffix("metal-amd64.iso.sha256") == ("metal-amd64.iso", "sha256")
    assert split_suffix("metal-amd64.iso.sha512") == ("metal-amd64.iso", "sha512")
    assert split_suffix("metal-amd64.iso.sigstore.json") == ("metal-amd64.iso", "sigstore")
    assert split_suffix("metal-amd64.iso") == ("metal-amd64.iso", "")
    assert split_suffix(".sha256") == (".sha256", "")


def test_prefer_header_parsing(srv: Served) -> None:
    app = srv.client.application
    with app.test_request_context(headers={"Prefer": "return=minimal, respond-async; wait=10"}):
        assert prefers_async(request)
    with app.test_request_context(headers={"Prefer": "return=minimal"}):
        assert not prefers_async(request)


def _built(stages: dict[str, float]) -> BuiltAsset:
    return BuiltAsset("k", "disk.raw.xz", 10, "a" * 64, "b" * 128, "application/x-xz", 2.0,
                      stages=stages)  # fmt: skip


def test_stages_finished_between_two_looks_still_get_their_event_in_order() -> None:
    statuses = [
        BuildStatus("k", QUEUED),
        BuildStatus("k", RUNNING, stage="initramfs", percent=10),
        # "disk" began and ended before the next look: only the recorded times show it.
        BuildStatus("k", RUNNING, stage="compress", percent=70,
                    stages={"initramfs": 0.4, "disk": 0.2}),
        BuildStatus("k", DONE, percent=100, download_url="/image/x",
                    built=_built({"initramfs": 0.4, "disk": 0.2, "compress": 1.0, "upload": 0.1})),
    ]  # fmt: skip

    events = _events("".join(event_stream(statuses)))

    assert [data["stage"] for name, data in events if name == "stage"] == [
        "queued", "initramfs", "disk", "compress", "upload",
    ]  # fmt: skip
    assert events[-1] == ("done", {"download_url": "/image/x", "size": 10, "sha256": "a" * 64})


def test_a_build_done_before_the_stream_began_is_just_done() -> None:
    done = BuildStatus("k", DONE, percent=100, download_url="/image/x", built=_built({"a": 1.0}))
    assert [name for name, _ in _events("".join(event_stream([done])))] == ["done"]


def test_a_stream_waits_for_a_just_started_build_to_name_itself() -> None:
    """Celery's STARTED state carries no download URL: the stream looks again until the
    build names its request (before, it ended after one event, a flake under load)."""
    key = "a" * 64
    url = f"/image/{'b' * 64}/v1.0.0/metal-amd64.iso"
    later = iter(
        [BuildStatus(key, RUNNING, stage="starting"), BuildStatus(key, RUNNING, download_url=url)]
    )
    found = named_status(BuildStatus(key, RUNNING, stage="starting"), lambda _: next(later), 5.0)
    assert found.download_url == url
    done = BuildStatus(key, DONE)
    assert named_status(done, lambda _: None, 5.0) is done  # nothing to wait for
