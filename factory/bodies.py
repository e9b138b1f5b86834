"""Small request bodies: a route that parses a form or JSON document takes at most a few
kilobytes, whatever the app-wide limit (sized for extension uploads) allows."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge


def load_small_body(limit: int, what: str) -> None:
    """Read the body into the request's cache (where `request.form` and `get_json` find it),
    refusing (413) more than `limit` bytes: a larger declared length before a byte is read,
    a chunked body once it passes `limit` (at most `limit + 1` bytes are read)."""
    too_large = RequestEntityTooLarge(f"{what} is larger than the limit of {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    # werkzeug stops a chunked body at this length (quietly): one byte more tells it was cut.
    request.max_content_length = limit + 1
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise too_large from None
    if len(data) > limit:
        raise too_large
