"""Operational routes: liveness and readiness.

Ready means the service can do its job: the store answers and, in the scaled mode, so does
the broker (the build queue's length is read from it) and at least one build worker is
alive (its heartbeat key in Redis, refreshed every few seconds, has not expired:
`workers.heartbeat`). A 503 says which of them is missing, without addresses; the log has
the details.
"""

from __future__ import annotations

from flask import Blueprint, Response

from factory.engine import engine
from factory.services import services
from workers.errors import Unavailable
from workers.heartbeat import TTL_SECONDS, live_workers

bp = Blueprint("ops", __name__)


@bp.route("/healthz", methods=["GET", "HEAD"])
def healthz() -> Response:
    return Response("", status=200)


@bp.route("/readyz", methods=["GET", "HEAD"])
def readyz() -> Response:
    svc = services()
    try:
        svc.store.ping()
    except Unavailable as error:
        raise Unavailable(
            f"not ready: {error}", "not ready: the object store is unavailable"
        ) from error
    if svc.settings.broker_url:
        try:
            engine().queue.queue_depth()
            workers = live_workers(svc.settings)
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
    return Response("", status=200)
