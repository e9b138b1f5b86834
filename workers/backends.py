"""Where a deployment keeps what its processes share, decided once from the settings.

Two settings choose, and nothing else looks at them to decide:
- `IMAGE_FACTORY_BROKER_URL`: Redis carries the build queue and its results, the claims and
  leases, the metrics, the per-client usage and the worker heartbeats; empty, files under the
  data directory do (one machine: the processes of `serve` share that directory).
- `IMAGE_FACTORY_S3_ENDPOINT`: objects live in S3; empty, under `<data dir>/store`.

Either one makes the deployment scaled: processes may run on several machines, so they must
share keys (no key is generated on the spot) and a web process cannot start a worker beside
itself. The store, the coordination, the metrics, the usage counts and the task queue are
each made from the `Backend` this module chooses (the way Warehouse picks its storage once
from settings), so "which mode am I in" has one answer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from workers.settings import Settings


class Mode(enum.Enum):
    EMBEDDED = "embedded"
    SCALED = "scaled"


@dataclass(frozen=True)
class Backend:
    mode: Mode
    # Redis for the queue, results, coordination, metrics, usage and heartbeats; "" for files.
    redis_url: str
    objects_in_s3: bool
    data_dir: Path

    @property
    def scaled(self) -> bool:
        return self.mode is Mode.SCALED

    def __repr__(self) -> str:
        # The Redis URL may carry a password.
        return f"Backend({self.mode.value}, redis={bool(self.redis_url)}, s3={self.objects_in_s3})"


def choose_backend(settings: Settings) -> Backend:
    """The backend `settings` ask for (see the module's docstring for the rules)."""
    redis_url = settings.broker_url
    objects_in_s3 = settings.uses_s3
    mode = Mode.SCALED if redis_url or objects_in_s3 else Mode.EMBEDDED
    return Backend(mode, redis_url, objects_in_s3, settings.data_dir)
