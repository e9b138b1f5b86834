"""Release metadata routes: the version list and each release's kernel modules.

- `GET /versions` → JSON array of the release versions offered, ascending (upstream shape);
  `?broken=true` → the configured broken versions (`IMAGE_FACTORY_BROKEN_VERSIONS`).
- `GET /version/<version>/kernel-modules/<arch>` → JSON array of every loadable module
  name of that release (names normalised with `_`). The version may be given with or
  without `v`; malformed version or arch → 400, unknown release → 404.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from factory.engine import engine
from factory.offered import version_policy
from workers.releases.modules import module_index
from workers.releases.stored import list_versions, load_release

bp = Blueprint("meta", __name__)


def _json(value: object) -> Response:
    return Response(json.dumps(value) + "\n", status=200, mimetype="application/json")


@bp.route("/versions", methods=["GET"])
def versions() -> Response:
    policy = version_policy()
    if request.args.get("broken") == "true":
        return _json(list(policy.broken))
    return _json(policy.offered(list_versions(engine().store)))


@bp.route("/version/<version>/kernel-modules/<arch>", methods=["GET"])
def kernel_modules(version: str, arch: str) -> Response:
    store = engine().store
    release = load_release(store, version, arch)
    return _json(module_index(store, release).names())
