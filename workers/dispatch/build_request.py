"""What the web side sends a worker: a build request, and the coordination names of its key.

Kept apart from `build_job` (which runs the build) so the web processes that enqueue builds
import neither the job nor the pipeline behind it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from workers.errors import InvalidRequest
from workers.planning.plans import Plan
from workers.releases.versions import normalize_version

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PATH = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def submit_claim(key: str) -> str:
    """Held from enqueueing a build until its job ends: whoever takes it enqueues."""
    return f"submit:{key}"


def build_lease(key: str) -> str:
    """Held by the one job building `key`."""
    return f"build:{key}"


def recover_claim(key: str) -> str:
    """Taken by the one waiter that re-enqueues a build whose worker vanished."""
    return f"recover:{key}"


@dataclass(frozen=True)
class BuildRequest:
    schematic: str
    version: str
    path: str
    key: str

    def __post_init__(self) -> None:
        if not _HEX64.match(self.schematic) or not _HEX64.match(self.key):
            raise InvalidRequest("a build request names a schematic ID and a key of 64 hex digits")
        if not _PATH.match(self.path):
            raise InvalidRequest(f"invalid asset path {self.path!r}")
        normalize_version(self.version)

    @property
    def download_url(self) -> str:
        return f"/image/{self.schematic}/{self.version}/{self.path}"

    def to_json(self) -> dict[str, str]:
        return {
            "schematic": self.schematic,
            "version": self.version,
            "path": self.path,
            "key": self.key,
        }

    @classmethod
    def from_json(cls, doc: Any) -> BuildRequest:
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(f), str) for f in ("schematic", "version", "path", "key")
        ):
            raise InvalidRequest("a build request needs schematic, version, path and key")
        return cls(doc["schematic"], doc["version"], doc["path"], doc["key"])

    @classmethod
    def for_plan(cls, schematic_id: str, plan: Plan) -> BuildRequest:
        return cls(schematic_id, plan.version, plan.profile.path, plan.key)
