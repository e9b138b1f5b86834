"""`GET /openapi.json`: the OpenAPI 3.1 description of every public route.

The document lives as YAML next to the code: `factory/spec/document.yaml` holds the frame
(info, shared components) and every other `factory/spec/<blueprint>.yaml` the `paths` (and
any `components`) of one blueprint. Adding a route means adding its description to its
blueprint's file; tests/factory/test_openapi.py names any route that has none.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response

from factory.urls import external_url

bp = Blueprint("openapi", __name__)

SPEC_DIR = Path(__file__).parent / "spec"
FRAME = "document.yaml"


class SpecError(ValueError):
    """Two spec files describe the same path or component, or a file is malformed."""


@functools.cache
def load_document() -> dict[str, Any]:
    """The merged document (without `servers`, which depends on the settings)."""
    document: dict[str, Any] = _read(SPEC_DIR / FRAME)
    document.setdefault("paths", {})
    document.setdefault("components", {})
    for path in sorted(SPEC_DIR.glob("*.yaml")):
        if path.name == FRAME:
            continue
        part = _read(path)
        unknown = set(part) - {"paths", "components"}
        if unknown:
            raise SpecError(f"{path.name}: only paths and components belong here, not {unknown}")
        _merge(document["paths"], part.get("paths", {}), f"{path.name}: path")
        for section, entries in part.get("components", {}).items():
            target = document["components"].setdefault(section, {})
            _merge(target, entries, f"{path.name}: component {section}")
    return document


def _read(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise SpecError(f"{path.name}: expected a mapping at the top")
    return data


def _merge(target: dict[str, Any], entries: dict[str, Any], what: str) -> None:
    for name, value in entries.items():
        if name in target:
            raise SpecError(f"{what} {name} is described twice")
        target[name] = value


@bp.get("/openapi.json")
def document() -> Response:
    doc = {**load_document(), "servers": [{"url": external_url()}]}
    return Response(json.dumps(doc, indent=1) + "\n", status=200, mimetype="application/json")
