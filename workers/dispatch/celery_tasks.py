"""The Celery task: a thin wrapper around `workers.dispatch.build_job.run_build`.

`build(request)` runs with the plan key as its task id. It publishes progress in the task
state (`PROGRESS`: stage, percent, the last log lines, timings), retries only when the store
is unreachable (with backoff), and turns every other failure into `BuildFailed` with a
message a user can act on; the details go to the worker log.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from workers.assembly.run import ToolError
from workers.dispatch.build_job import finish, run_build
from workers.dispatch.build_request import BuildRequest
from workers.dispatch.celery_app import BUILD_TASK, FactoryCelery
from workers.engine import Engine
from workers.errors import FactoryError, Unavailable
from workers.pipeline.progress import StageClock
from workers.registry import publish_task
from workers.store import StoreUnavailable, make_store

log = logging.getLogger(__name__)

MAX_RETRIES = 5
LOG_LINES = 20
# At most this often a progress update is written to the result backend.
PUBLISH_EVERY = 0.25


class BuildFailed(Exception):
    """A build ended in an error; the message is meant for the user who asked for it."""


class _Progress(logging.Handler):
    """Collects the job's stage, percent and log lines into the task state."""

    def __init__(self, task: Task[Any, Any], request: BuildRequest) -> None:
        super().__init__(logging.INFO)
        self._task = task
        self._request = request
        self._lines: deque[str] = deque(maxlen=LOG_LINES)
        self._count = 0
        self._stage = ""
        self._percent = 0
        self._started = time.time()
        self._clock = StageClock(self._record)
        self._published = 0.0

    def progress(self, stage: str, percent: int) -> None:
        self._clock(stage, percent)

    def _record(self, stage: str, percent: int) -> None:
        changed = stage != self._stage
        self._stage, self._percent = stage, percent
        self._publish(force=changed)

    def emit(self, record: logging.LogRecord) -> None:
        # The message only: a traceback (work paths, commands) stays in the worker log.
        self._lines.append(f"{record.name}: {record.getMessage()}")
        self._count += 1
        self._publish(force=False)

    def _publish(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._published < PUBLISH_EVERY:
            return
        self._published = now
        meta = {
            **self._request.to_json(),
            "stage": self._stage,
            "percent": self._percent,
            "log": list(self._lines),
            "log_count": self._count,
            "started_at": self._started,
            "stages": dict(self._clock.stages),
            "worker": str(self._task.request.hostname or ""),
        }
        self._task.update_state(state="PROGRESS", meta=meta)


def _user_message(error: BaseException) -> str:
    if isinstance(error, Unavailable):
        return error.public
    if isinstance(error, ToolError):  # before FactoryError, which it is one of
        # The command line and its stderr name work paths: they go to the worker log only.
        return f"a build step failed: {error.summary}"
    if isinstance(error, FactoryError):
        return str(error)
    if isinstance(error, SoftTimeLimitExceeded):
        return "the build took longer than the time limit and was stopped"
    return "the build failed unexpectedly (the worker log has the details)"


def register(app: FactoryCelery) -> FactoryCelery:
    """Register the build and installer-publish tasks on `app` (a worker's: the web side sends
    them by name only)."""

    # Not shared: each app (one per settings) runs its own copy, bound to its own settings.
    @app.task(bind=True, name=BUILD_TASK, max_retries=MAX_RETRIES, shared=False)
    def build(self: Task[Any, Any], request_doc: dict[str, str]) -> dict[str, Any]:
        runtime = _runtime(app)
        request = BuildRequest.from_json(request_doc)
        progress = _Progress(self, request)
        workers_log = logging.getLogger("workers")
        workers_log.addHandler(progress)
        try:
            result = run_build(runtime, request, progress)
        except StoreUnavailable as error:
            if self.request.retries < MAX_RETRIES:
                log.warning("build %s: store unavailable, retrying: %s", request.key, error)
                raise self.retry(
                    exc=error, countdown=min(60, 5 * 2**self.request.retries)
                ) from error
            finish(runtime, request.key)
            log.error("build %s: the store stayed unavailable: %s", request.key, error)
            raise BuildFailed("the object store stayed unavailable; try again later") from None
        except BaseException as error:
            finish(runtime, request.key)
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            raise BuildFailed(_user_message(error)) from None
        finally:
            workers_log.removeHandler(progress)
        finish(runtime, request.key)
        return result

    publish_task.register(app)
    return app


# By app: the process that made it and the engine.
_runtimes: dict[int, tuple[int, Engine]] = {}


def _runtime(app: FactoryCelery) -> Engine:
    """One engine per app and process: made after the worker forks its pool (connections
    must not be shared across a fork)."""
    found = _runtimes.get(id(app))
    if found is None or found[0] != os.getpid():
        engine = Engine(app.settings, app.shared, make_store(app.shared))
        found = _runtimes[id(app)] = (os.getpid(), engine)
    return found[1]
