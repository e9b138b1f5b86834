"""Builds as resources: start one, ask where it stands, follow it live.

- `POST /builds` (JSON or form: `schematic`, `version`, `path`) → `202` with
  `{key, state, status_url, events_url, download_url}` (`200` and the same body when the
  asset is built already). The web form's "Build now" button uses it.
- `GET /builds/<key>`: `{key, state: queued|running|done|failed, stage, percent, log,
  started_at, stages (seconds per stage), size, sha256, seconds, error, download_url}`.
  Asking is enough to get a build whose worker died enqueued again.
- `GET /builds/<key>/events`: Server-Sent Events until the build ends:
  `stage {stage, percent}`, `log {line}`, `done {download_url, sha256, size}`,
  `failed {error}` (and a comment line every few seconds to keep proxies from timing out).
An unknown key is a 404.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flask import Blueprint, Response, request, stream_with_context

from factory.bodies import load_small_body
from factory.build_links import build_links
from factory.clients import client_identity
from factory.engine import engine
from workers.dispatch.build_queue import DONE, FAILED, BuildStatus
from workers.dispatch.build_request import BuildRequest
from workers.errors import InvalidRequest, NotFound
from workers.planning.profiles import parse_profile
from workers.releases.versions import normalize_version

bp = Blueprint("builds", __name__)

_KEY = re.compile(r"^[0-9a-f]{64}$")
KEEPALIVE_SECONDS = 15.0
# How long an event stream waits for a just-started build to say what it builds.
NAMING_SECONDS = 30.0
FIELDS = ("schematic", "version", "path")


def _json(doc: Mapping[str, Any], status: int) -> Response:
    return Response(json.dumps(doc) + "\n", status=status, mimetype="application/json")


def _fields() -> tuple[str, str, str]:
    load_small_body(engine().settings.max_form_bytes, "POST /builds body")
    if request.is_json:
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # json recurses once per level; silent= does not cover it
            raise InvalidRequest("the body's JSON is nested too deeply") from None
        if not isinstance(body, dict):
            raise InvalidRequest("the body must be a JSON object with schematic, version, path")
    else:
        body = request.form
    values = [body.get(name) for name in FIELDS]
    missing = [name for name, value in zip(FIELDS, values, strict=True) if not value]
    if missing or not all(isinstance(value, str) for value in values):
        raise InvalidRequest(f"POST /builds needs string fields {', '.join(FIELDS)}")
    schematic_id, version, path = (str(value) for value in values)
    return schematic_id, version, path


@bp.post("/builds")
def create() -> Response:
    eng = engine()
    schematic_id, version, path = _fields()
    plan = eng.plan(schematic_id, normalize_version(version), parse_profile(path))
    job = BuildRequest.for_plan(schematic_id, plan)
    if eng.find_built(plan) is not None:
        return _json(build_links(BuildStatus(plan.key, DONE), job.download_url), 200)
    plan.refuse_if_withdrawn()
    status = eng.queue.submit(job, client_identity())
    response = _json(build_links(status, job.download_url), 202)
    response.headers["Location"] = f"/builds/{plan.key}"
    return response


def _status(key: str) -> BuildStatus:
    if not _KEY.match(key):
        raise NotFound(f"build {key} not found")
    status = engine().queue.status(key)
    if status is None:
        raise NotFound(f"build {key} not found")
    return status


@bp.get("/builds/<key>")
def show(key: str) -> Response:
    status = _status(key)
    job = _job_of(status)
    if job is not None and status.state not in (DONE, FAILED):
        # A client polling here may be the only one who still wants this build.
        status = engine().queue.check(job)
    return _json(status.to_json(), 200)


def _event(name: str, data: Mapping[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _job_of(status: BuildStatus) -> BuildRequest | None:
    """The request behind a status (its download URL names schematic, version and path)."""
    parts = status.download_url.split("/")
    if len(parts) != 5 or parts[1] != "image":
        return None
    try:
        return BuildRequest(parts[2], parts[3], parts[4], status.key)
    except InvalidRequest:
        return None


def named_status(
    first: BuildStatus, look: Callable[[str], BuildStatus | None], seconds: float
) -> BuildStatus:
    """`first`, or (when it does not name its request yet) a later look at the build that
    does. Celery marks a build STARTED before its worker records what it builds (the download
    URL); a stream that began in between used to end after one event."""
    deadline = time.monotonic() + seconds
    status = first
    while _job_of(status) is None and status.state not in (DONE, FAILED):
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
        status = look(status.key) or status
    return status


def _events(first: BuildStatus) -> Iterator[str]:
    eng = engine()
    first = named_status(first, eng.queue.status, NAMING_SECONDS)
    job = _job_of(first)
    statuses: Iterator[BuildStatus] = (
        eng.queue.watch(job, eng.settings.build_wait, every=KEEPALIVE_SECONDS)
        if job is not None
        else iter((first,))
    )
    return event_stream(statuses)


def event_stream(statuses: Iterable[BuildStatus]) -> Iterator[str]:
    """The Server-Sent Events text for a build seen as `statuses` (each new look at it, or the
    same one again after the keep-alive interval)."""
    shown_stage: tuple[str, int] | None = None
    named: set[str] = set()  # every stage an event has named so far
    lines_seen = 0
    for status in statuses:
        # Once the stream follows a build, stages that began and ended between two looks at
        # it still get their event, in order (the status records each finished stage).
        finished = status.built.stages if status.built is not None else status.stages
        for name in (n for n in finished if n not in named) if shown_stage else ():
            named.add(name)
            yield _event("stage", {"stage": name, "percent": status.percent})
        if status.state == DONE and status.built is not None:
            done = {"download_url": status.download_url, "size": status.built.size}
            yield _event("done", {**done, "sha256": status.built.sha256})
            return
        if status.state == FAILED:
            yield _event("failed", {"error": status.error})
            return
        sent = False
        stage = (status.stage or "queued", status.percent)
        if stage != shown_stage:
            shown_stage, sent = stage, True
            named.add(stage[0])
            yield _event("stage", {"stage": stage[0], "percent": stage[1]})
        new = min(status.log_count - lines_seen, len(status.log))
        for line in status.log[len(status.log) - new :] if new > 0 else ():
            sent = True
            yield _event("log", {"line": line})
        lines_seen = max(lines_seen, status.log_count)
        if not sent:
            yield ": keep-alive\n\n"
    # Waited as long as a download would: the stream ends, and the page asks for the status.


@bp.get("/builds/<key>/events")
def events(key: str) -> Response:
    first = _status(key)
    response = Response(stream_with_context(_events(first)), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
