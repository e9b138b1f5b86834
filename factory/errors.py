"""Every error leaves as plain text plus a newline (as upstream), never as a traceback."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, default_exceptions

from workers.errors import (
    Conflict,
    FactoryError,
    Forbidden,
    Gone,
    InsufficientStorage,
    InvalidRequest,
    NotFound,
    NotImplementedYet,
    Refused,
    ToolError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (InvalidRequest, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (Refused, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Gone, 410),
    (NotImplementedYet, 501),
    (Unavailable, 503),
    (TooManyRequests, 429),
    (InsufficientStorage, 507),
)
RETRY_AFTER_SECONDS = "30"

# Upstream (httprouter) wording for the generic cases; custom descriptions pass through.
_GENERIC_MESSAGES = {404: "404 page not found", 405: "method not allowed"}


def text_error(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """A plain-text error response: the message and one newline."""
    response = Response(message.rstrip("\n") + "\n", status=status, mimetype="text/plain")
    response.headers["X-Content-Type-Options"] = "nosniff"
    if status == 503:
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def bearer_challenge(error: Unauthorized) -> str:
    """RFC 6750's challenge: which realm, why, and (as `scope`) the role needed."""
    return f'Bearer realm="image-factory", error="{error.reason}", scope="{error.right}"'


def status_for(error: Exception) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def _http_message(error: HTTPException) -> str:
    status = error.code or 500
    default = default_exceptions.get(status)
    if default is not None and error.description == default.description:
        return _GENERIC_MESSAGES.get(status, error.name.lower())
    return error.description or error.name


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        headers = {k: v for k, v in error.get_headers() if k.lower() == "allow"}
        return text_error(_http_message(error), status, headers)

    @app.errorhandler(FactoryError)
    def factory_error(error: FactoryError) -> Response:
        if isinstance(error, ToolError):
            # Its message holds command lines and host paths: the log's, not the client's.
            log.exception("unhandled error")
            return text_error("internal server error", 500)
        if isinstance(error, Unavailable):
            # The details name endpoints, buckets, keys and addresses: the log's, not the
            # client's.
            log.warning("%s %s: 503: %s", request.method, request.path, error)
            return text_error(error.public, 503)
        retry_after = getattr(error, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if isinstance(error, Unauthorized):
            headers["WWW-Authenticate"] = bearer_challenge(error)
        return text_error(str(error), status_for(error), headers)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return text_error("internal server error", 500)
