"""A real build worker inside the test process, for Flask test-client tests that build.

`build_worker(settings)` runs the factory's Celery app
(`workers.dispatch.celery_app.make_celery`) in a thread with the solo pool, consuming the
embedded broker under `settings.data_dir`, so a request the test client sends is built
exactly as `image-factory serve`'s worker builds it.
Stopping it takes a couple of seconds (the embedded broker is polled), so share one per
module where the tests allow it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from celery.contrib.testing.worker import start_worker

from workers.backends import choose_backend
from workers.dispatch.celery_app import make_celery
from workers.dispatch.celery_tasks import register
from workers.settings import Settings


@contextlib.contextmanager
def build_worker(settings: Settings) -> Iterator[None]:
    app = register(make_celery(settings, choose_backend(settings)))
    with start_worker(
        app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30
    ):
        yield
