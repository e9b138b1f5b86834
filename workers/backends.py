"""Where a deployment keeps what its processes share, decided once from the settings.

Two settings choose, and nothing else looks at them to decide:
- `IMAGE_FACTORY_BROKER_URL`: Redis carries the build queue and its results, the claims and
  leases, the metrics, the per-client usage and the worker heartbeats; empty, files under the
  data directory do (one machine: the processes of `serve` share that directory).
- `IMAGE_FACTORY_S3_ENDPOINT`: objects live in S3; empty, under `<data dir>/store`.

Either one makes the deployment scaled: processes may run on several machines, so they must
share keys (no key is generated on the spot) and a web process cannot start a worker beside
itself. The store, the coordination, the metrics, the usage counts, the heartbeats and the
task queue are each made from the `Backend` this module chooses: a process calls
`choose_backend` once where it starts (`create_app`, a CLI command, a worker) and hands the
result to every maker (`make_store`, `make_celery`, `make_coordination`, `make_metrics`,
`make_usage`), the way Warehouse picks its storage once from settings; no maker looks at the
settings to decide. So "which mode am I in" has one answer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from workers.settings import Settings


class Mode(enum.Enum):
    EMBEDDED = "embedded"
    SCALED = "scaled"


@dataclass(frozen=True)
class S3Bucket:
    """Where the objects live in the scaled mode, and how to reach them."""

    endpoint: str
    bucket: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    region: str
    # The address presigned URLs name (clients reach S3 there); "": the endpoint.
    public_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Bucket:
        return cls(
            endpoint=settings.s3_endpoint,
            bucket=settings.s3_bucket,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            region=settings.s3_region,
            public_url=settings.s3_public_url,
        )


@dataclass(frozen=True)
class Backend:
    mode: Mode
    # Redis for the queue, results, coordination, metrics, usage and heartbeats; "" for files.
    redis_url: str
    # The bucket objects live in; None: files under `<data dir>/store`.
    s3: S3Bucket | None
    data_dir: Path

    @property
    def scaled(self) -> bool:
        return self.mode is Mode.SCALED

    @property
    def objects_in_s3(self) -> bool:
        return self.s3 is not None

    def __repr__(self) -> str:
        # The Redis URL may carry a password.
        return f"Backend({self.mode.value}, redis={bool(self.redis_url)}, s3={self.objects_in_s3})"


def choose_backend(settings: Settings) -> Backend:
    """The backend `settings` ask for (see the module's docstring for the rules)."""
    redis_url = settings.broker_url
    s3 = S3Bucket.from_settings(settings) if settings.uses_s3 else None
    mode = Mode.SCALED if redis_url or s3 is not None else Mode.EMBEDDED
    return Backend(mode, redis_url, s3, settings.data_dir)
