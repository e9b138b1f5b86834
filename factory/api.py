"""The schematics API: `POST /schematics` and `GET /schematics/<id>`, as upstream serves them."""

from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from factory.auth import current_identity
from factory.eager import queue_installer_builds
from factory.engine import engine
from schematics import canonical_bytes
from workers.errors import Forbidden, NotFound, Unauthorized
from workers.outputs.schematics_store import CONTENT_TYPE, add_schematic, load_schematic_bytes
from workers.tenancy.tokens import ROLE_ADMIN

bp = Blueprint("api", __name__)


@bp.post("/schematics")
def create_schematic() -> Response:
    """Parse the body (YAML or JSON; the content type is ignored), store it, answer with its ID."""
    limit = engine().settings.max_schematic_bytes
    body = _read_body(limit)
    schematic_id, schematic = add_schematic(engine().store, body, limit, check_owner)
    if engine().settings.eager_installer_versions:
        queue_installer_builds(engine(), schematic_id, schematic)
    canonical = canonical_bytes(schematic).decode()
    # Upstream answers with Go's json.Encoder: compact, `id` first, a final newline.
    payload = f'{{"id":{go_json_string(schematic_id)},"schematic":{go_json_string(canonical)}}}\n'
    return Response(payload, status=201, mimetype="application/json")


def check_owner(owner: str) -> None:
    """A schematic naming `owner` needs that token (any role) or an admin's: 401 without a
    token, 403 with another's. Once stored, it is read and built by ID like any other."""
    action = f'a schematic with owner "{owner}"'
    who = current_identity()
    if who is None:
        raise Unauthorized(f"{action} needs the token of that owner", f"owner:{owner}")
    if who.name != owner and not who.holds(ROLE_ADMIN):
        raise Forbidden(
            f'{action} needs the token of that owner or the admin role; token "{who.name}" '
            "is neither"
        )


@bp.get("/schematics/<schematic_id>")
def get_schematic(schematic_id: str) -> Response:
    try:
        data = load_schematic_bytes(engine().store, schematic_id)
    except NotFound:
        raise NotFound("schematic not found") from None
    return Response(data, status=200, mimetype=CONTENT_TYPE)


def _read_body(limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes, chunked bodies included."""
    too_large = RequestEntityTooLarge(f"schematic body is larger than the limit of {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    received = 0
    while received <= limit:
        chunk = request.stream.read(limit + 1 - received)
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    if received > limit:
        raise too_large
    return b"".join(chunks)


_GO_JSON_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_json_string(text: str) -> str:
    """A JSON string as Go's encoding/json writes it (HTML-safe escapes, UTF-8 kept as is)."""
    out = []
    for ch in text:
        escaped = _GO_JSON_ESCAPES.get(ch)
        if escaped is None and ord(ch) < 0x20:
            escaped = f"\\u{ord(ch):04x}"
        out.append(escaped or ch)
    return '"' + "".join(out) + '"'
