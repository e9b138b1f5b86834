"""Operational routes: liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response

from factory.services import services
from workers.errors import InsufficientStorage, Unavailable
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
    return Response("", status=200)
