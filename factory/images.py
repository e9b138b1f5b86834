"""`GET|HEAD /image/<schematic>/<version>/<path>`: build on first request, then stream.

Simple and synchronous for now: the request builds the asset (through `ensure_built`, the
code every caller uses) when the store has no finished build for its plan key, then streams
it with upstream's headers: Content-Type from the path, Content-Length, and
`Content-Disposition: attachment; filename="<path>"`.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, request

from factory.services import services
from workers.builds import ensure_built
from workers.plans import make_plan
from workers.profiles import parse_profile
from workers.releases.versions import normalize_version
from workers.schematics_store import load_schematic
from workers.store import Store
from workers.store.base import attachment_disposition

bp = Blueprint("images", __name__)
_CHUNK = 1 << 20


@bp.route("/image/<schematic_id>/<version>/<path>", methods=["GET", "HEAD"])
def image(schematic_id: str, version: str, path: str) -> Response:
    svc = services()
    schematic = load_schematic(svc.store, schematic_id)
    version = normalize_version(version)
    profile = parse_profile(path)
    plan = make_plan(svc.store, schematic, schematic_id, version, profile, svc.settings)
    built = ensure_built(
        svc.store, plan, svc.settings.data_dir / "tmp", signer=plan.signer(svc.settings)
    )
    headers = {
        "Content-Length": str(built.size),
        "Content-Disposition": attachment_disposition(path),
    }
    body = iter(()) if request.method == "HEAD" else _stream(svc.store, built.blob)
    return Response(body, status=200, headers=headers, content_type=built.content_type)


def _stream(store: Store, key: str) -> Iterator[bytes]:
    with store.open(key) as reader:
        while chunk := reader.read(_CHUNK):
            yield chunk
