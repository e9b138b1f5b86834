"""Operational routes: liveness and readiness.

Ready means the service can do its job: the store answers and, in the scaled mode, so does
the broker (the build queue's length is read from it) and at least one build worker is
alive (its heartbeat key in Redis, refreshed every few seconds, has not expired:
`workers.dispatch.heartbeat`). A 503 says which of them is missing, without addresses; the log has
the details. A local store must also have `IMAGE_FACTORY_MIN_FREE_BYTES` free. The body
says "ready", followed by a warning line when this host cannot sandbox build tools (what
that means for uploaded extensions).
"""

from __future__ import annotations

from flask import Blueprint, Response

from factory.engine import engine
from workers.dispatch.heartbeat import TTL_SECONDS, live_workers
from workers.errors import InsufficientStorage, Unavailable
from workers.outputs.storage_budget import check_free_space
from workers.pipeline.sandbox_policy import sandbox_warning

bp = Blueprint("ops", __name__)


@bp.route("/healthz", methods=["GET", "HEAD"])
def healthz() -> Response:
    return Response("", status=200)


@bp.route("/readyz", methods=["GET", "HEAD"])
def readyz() -> Response:
    eng = engine()
    try:
        eng.store.ping()
    except Unavailable as error:
        raise Unavailable(
            f"not ready: {error}", "not ready: the object store is unavailable"
        ) from error
    try:
        check_free_space(eng.backend, eng.settings.min_free_bytes)
    except InsufficientStorage as error:
        raise Unavailable(f"not ready: {error}", "not ready: the store is nearly full") from error
    if eng.backend.redis_url:
        try:
            eng.queue.queue_depth()
            workers = live_workers(eng.backend)
        except Unavailable as error:
            raise Unavailable(
                f"not ready: {error}", "not ready: the build queue is unavailable"
            ) from error
        if not workers:
            raise Unavailable(
                "not ready: no build worker heartbeat in Redis",
                f"not ready: no build worker is alive (none reported in the last "
                f"{TTL_SECONDS:.0f} s)",
            )
    warning = sandbox_warning(eng.settings)
    body = "ready\n" if warning is None else f"ready\nWARNING: {warning}\n"
    return Response(body, status=200, mimetype="text/plain")
