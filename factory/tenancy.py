"""Admin routes: withdraw and delete extension versions, read the audit log.

- `POST /extensions/<ns>/<name>/<version>/withdraw` → 200 `{name, version, digests}`: new
  builds naming it answer 410, built assets stay downloadable, the catalog drops it;
- `DELETE /extensions/<ns>/<name>/<version>` → 200 `{…}`, or 409 naming what still
  references it (a recorded resolution, a pinned schematic);
- `GET /audit` → the audit log, oldest first (JSON array of `{time, actor, action,
  subject, digest}`).
Each needs a token with the `admin` role.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from flask import Blueprint, Response

from factory.auth import require
from factory.engine import engine
from workers.catalog.lifecycle import delete_extension, withdraw_extension
from workers.catalog.records import ExtensionRecord
from workers.tenancy.audit import read_events
from workers.tenancy.tokens import ROLE_ADMIN

bp = Blueprint("tenancy", __name__)


def _json(value: object) -> Response:
    return Response(json.dumps(value) + "\n", status=200, mimetype="application/json")


def _summary(name: str, version: str, records: list[ExtensionRecord]) -> Response:
    return _json(
        {"name": name, "version": version, "digests": [f"sha256:{r.digest}" for r in records]}
    )


@bp.post("/extensions/<namespace>/<name>/<version>/withdraw")
def withdraw(namespace: str, name: str, version: str) -> Response:
    who = require(ROLE_ADMIN, "withdrawing an extension")
    full_name = f"{namespace}/{name}"
    records = withdraw_extension(engine().store, full_name, version, who.name)
    return _summary(full_name, version, records)


@bp.delete("/extensions/<namespace>/<name>/<version>")
def delete(namespace: str, name: str, version: str) -> Response:
    who = require(ROLE_ADMIN, "deleting an extension")
    full_name = f"{namespace}/{name}"
    records = delete_extension(engine().store, full_name, version, who.name)
    return _summary(full_name, version, records)


@bp.get("/audit")
def audit() -> Response:
    require(ROLE_ADMIN, "reading the audit log")
    return _json([asdict(event) for event in read_events(engine().store)])
