"""Operational routes: liveness and readiness.

`/readyz` answers 200 when the store answers; its body says "ready", followed by a warning
line when this host cannot sandbox build tools (what that means for uploaded extensions).
"""

from __future__ import annotations

from flask import Blueprint, Response

from factory.services import services
from workers.errors import InsufficientStorage, Unavailable
from workers.sandbox_policy import sandbox_warning
from workers.storage import check_free_space

bp = Blueprint("ops", __name__)


@bp.route("/healthz", methods=["GET", "HEAD"])
def healthz() -> Response:
    return Response("", status=200)


@bp.route("/readyz", methods=["GET", "HEAD"])
def readyz() -> Response:
    svc = services()
    try:
        svc.store.ping()
        check_free_space(svc.settings)
    except (Unavailable, InsufficientStorage) as error:
        raise Unavailable(f"not ready: {error}") from error
    warning = sandbox_warning(services().settings)
    body = "ready\n" if warning is None else f"ready\nWARNING: {warning}\n"
    return Response(body, status=200, mimetype="text/plain")
