"""The per-process engine objects the build, download and metrics routes share.

Made on first use in each process (gunicorn forks its web processes after the app is
built, and connections must not be shared across a fork), then kept on the app.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

from flask import current_app

from factory.services import services
from workers.coordination import Coordination, make_coordination
from workers.integrity import BlobVerifier
from workers.metrics import Metrics, make_metrics
from workers.queue import BuildQueue
from workers.settings import Settings
from workers.signing import SigningKey, load_or_create_signing_key
from workers.store import Store

ENGINE_KEY = "image_factory_engine"
_lock = threading.Lock()


@dataclass
class Engine:
    settings: Settings
    store: Store

    @cached_property
    def coordination(self) -> Coordination:
        return make_coordination(self.settings)

    @cached_property
    def queue(self) -> BuildQueue:
        return BuildQueue(self.settings, self.store, self.coordination)

    @cached_property
    def metrics(self) -> Metrics:
        return make_metrics(self.settings)

    @cached_property
    def verifier(self) -> BlobVerifier:
        return BlobVerifier()

    @cached_property
    def signing_key(self) -> SigningKey:
        return load_or_create_signing_key(self.settings)


def engine() -> Engine:
    """This process's engine for the app handling the current request."""
    found: Engine | None = current_app.extensions.get(ENGINE_KEY)
    if found is None:
        with _lock:
            found = current_app.extensions.get(ENGINE_KEY)
            if found is None:
                svc = services()
                found = current_app.extensions[ENGINE_KEY] = Engine(svc.settings, svc.store)
    return found
