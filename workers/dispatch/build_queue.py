"""The build queue as the web side sees it: submit, status, wait. No Celery in sight.

- `submit(request, client)`: join the build of `request.key` if one is queued or running;
  otherwise the one caller that takes the `submit:<key>` claim enqueues it (after checking
  the queue is not over `IMAGE_FACTORY_MAX_QUEUE`, else `Unavailable` → 503). Fifty
  concurrent requests for one uncached asset therefore enqueue one build.
- Fair use: a client may have `IMAGE_FACTORY_MAX_CLIENT_BUILDS` builds of its own queued or
  running (past it, `TooManyRequests` → 429; joining a build is free), and each new build
  is queued with a priority from how many its client already has: a client's first build
  goes ahead of everybody's second, and so on (`priority_for`), so one client filling the
  queue does not make another's first build wait behind all of it.
- `status(key)`: queued, running (stage, percent, log lines, timings), done (from the build
  manifest, the commit point) or failed (an error meant for users); None for a key nobody
  asked for.
- `wait(request, timeout)`: poll the status until done, failed or the timeout. A waiter also
  notices a build whose worker vanished (running, but its `build:<key>` lease is gone, or
  queued with nobody holding the submit claim) and re-enqueues it, so a killed worker's
  build is picked up by another worker within seconds rather than after the broker's
  visibility timeout.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from workers.backends import Backend
from workers.dispatch import celery_app as celery_side
from workers.dispatch.build_request import BuildRequest, build_lease, recover_claim, submit_claim
from workers.dispatch.coordination import LEASE_TTL, Coordination
from workers.errors import InvalidRequest, TooManyRequests, Unavailable
from workers.outputs.finished_builds import BuiltAsset, load_build
from workers.outputs.storage_budget import check_free_space
from workers.settings import Settings
from workers.store import Store
from workers.tenancy.usage import Usage

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
QUEUE_UNAVAILABLE = "the build queue is unavailable; try again shortly"
# A build must look lost for this long before a waiter re-enqueues it.
LOST_GRACE = 3.0
POLL_FIRST, POLL_MAX = 0.1, 0.5
# Broker priorities, most urgent first (kombu's Redis transport keeps one list per step and
# takes from 0 first; the embedded broker orders its message files the same way).
PRIORITY_STEPS = (0, 3, 6, 9)
RETRY_AFTER_CLIENT_LIMIT = 30


def priority_for(outstanding: int) -> int:
    """The priority of a client's next build when it has `outstanding` queued or running."""
    return PRIORITY_STEPS[min(outstanding, len(PRIORITY_STEPS) - 1)]


@dataclass(frozen=True)
class BuildStatus:
    key: str
    state: str  # queued | running | done | failed
    stage: str = ""
    percent: int = 0
    log: tuple[str, ...] = ()
    log_count: int = 0
    error: str = ""
    download_url: str = ""
    started_at: float = 0.0
    stages: Mapping[str, float] = field(default_factory=dict)
    worker: str = ""  # the Celery node running it
    built: BuiltAsset | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"key": self.key, "state": self.state}
        if self.download_url:
            doc["download_url"] = self.download_url
        if self.state in (QUEUED, RUNNING):
            doc.update(stage=self.stage or QUEUED, percent=self.percent, log=list(self.log))
        if self.started_at:
            doc["started_at"] = self.started_at
        if self.worker:
            doc["worker"] = self.worker
        if self.built is not None:
            doc.update(
                filename=self.built.filename,
                size=self.built.size,
                sha256=self.built.sha256,
                seconds=self.built.seconds,
                built_at=self.built.built_at,
            )
        stages = dict(self.built.stages) if self.built is not None else dict(self.stages)
        if stages:
            doc["stages"] = stages
        if self.error:
            doc["error"] = self.error
        return doc


def _queued(request: BuildRequest) -> BuildStatus:
    return BuildStatus(request.key, QUEUED, stage=QUEUED, download_url=request.download_url)


def _download_url(meta: Mapping[str, Any]) -> str:
    try:
        return BuildRequest.from_json(meta).download_url
    except InvalidRequest:
        return ""


class BuildQueue:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        store: Store,
        coordination: Coordination,
        usage: Usage,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.store = store
        self.coordination = coordination
        self.usage = usage

    @cached_property
    def _app(self) -> celery_side.FactoryCelery:
        return celery_side.make_celery(self.settings, self.backend)

    @property
    def _claim_ttl(self) -> float:
        # As long as the broker may hold the message before redelivering it.
        return float(self.settings.build_time_limit + celery_side.VISIBILITY_MARGIN)

    def submit(self, request: BuildRequest, client: str = "") -> BuildStatus:
        """Enqueue `request` unless it is queued, running or built; its status. A new build
        counts against `client` ("": nobody's, e.g. the command line)."""
        current = self.status(request.key)
        if current is not None and current.state != FAILED:
            return current
        if current is not None:
            # A build that failed is over, even one whose worker never got to give the claim
            # back (stopped at the hard time limit): the next request may try again.
            self.coordination.release(submit_claim(request.key))
        if not self.coordination.claim(submit_claim(request.key), self._claim_ttl):
            return current or _queued(request)
        try:
            check_free_space(self.backend, self.settings.min_free_bytes)
            priority = self._admit(client)
            self._enqueue(request, fresh=current is not None, priority=priority)
            if client:
                self.usage.add_build(client, request.key)
        except BaseException:
            self.coordination.release(submit_claim(request.key))
            raise
        return _queued(request)

    def _admit(self, client: str) -> int:
        """The priority of a new build of `client`; TooManyRequests past its limit."""
        if not client:
            return PRIORITY_STEPS[0]
        mine = self.usage.builds(client)
        over = {key for key in mine if not self._in_progress(key)}
        self.usage.drop_builds(client, over)
        outstanding = len(mine - over)
        limit = self.settings.max_client_builds
        if outstanding >= limit:
            raise TooManyRequests(
                f"you have {outstanding} builds queued or running, the most one client may "
                f"have ({limit}); try again when one has finished",
                RETRY_AFTER_CLIENT_LIMIT,
            )
        return priority_for(outstanding)

    def _in_progress(self, key: str) -> bool:
        current = self.status(key)
        return current is not None and current.state in (QUEUED, RUNNING)

    def _enqueue(self, request: BuildRequest, fresh: bool, priority: int) -> None:
        depth = self.queue_depth()
        if depth >= self.settings.max_queue:
            full = f"the build queue is full ({depth} builds waiting); try again in a few minutes"
            raise Unavailable(full, public=full)
        with broker_errors():
            if fresh:
                celery_side.forget_build(self._app, request.key)
            celery_side.send_build(self._app, request.key, request.to_json(), priority)
        log.info("enqueued build %s (%s)", request.key, request.download_url)

    def status(self, key: str) -> BuildStatus | None:
        with broker_errors():
            state, meta, error = celery_side.task_meta(self._app, key)
        url = _download_url(meta)
        if state in celery_side.STATE_QUEUED:
            stage = "retrying" if state == celery_side.STATE_RETRY else QUEUED
            return BuildStatus(key, QUEUED, stage=stage, download_url=url)
        if state in celery_side.STATE_RUNNING:
            return BuildStatus(
                key,
                RUNNING,
                stage=str(meta.get("stage", "starting")),
                percent=int(meta.get("percent", 0)),
                log=tuple(str(line) for line in meta.get("log", ())),
                log_count=int(meta.get("log_count", 0)),
                download_url=url,
                started_at=float(meta.get("started_at", 0.0)),
                stages=dict(meta.get("stages", {})),
                worker=str(meta.get("worker", "")),
            )
        if state in celery_side.STATE_FAILED:
            return BuildStatus(key, FAILED, error=error, download_url=url)
        # SUCCESS, or a key Celery does not know (built by the CLI, or its state expired):
        # the manifest decides.
        built = load_build(self.store, key)
        if built is None:
            return None
        return BuildStatus(key, DONE, stage="done", percent=100, download_url=url, built=built)

    def wait(self, request: BuildRequest, timeout: float) -> BuildStatus:
        """The status once the build is done or failed, or when `timeout` seconds passed."""
        seen = deque(self.watch(request, timeout), maxlen=1)
        return seen[0] if seen else _queued(request)

    def watch(
        self, request: BuildRequest, timeout: float, every: float = math.inf
    ) -> Iterator[BuildStatus]:
        """Each status of the build as it changes (an unchanged one again after `every`
        seconds), ending with done or failed, or when `timeout` seconds passed.
        Re-enqueues the build when its worker vanished."""
        deadline = time.monotonic() + timeout
        pause = POLL_FIRST
        suspect_since: float | None = None
        previous: BuildStatus | None = None
        yielded = time.monotonic()
        while True:
            current = self.status(request.key) or _queued(request)
            if current != previous or time.monotonic() - yielded >= every:
                if current != previous:
                    pause = POLL_FIRST
                yield current
                previous, yielded = current, time.monotonic()
            if current.state in (DONE, FAILED):
                return
            now = time.monotonic()
            if now >= deadline:
                return
            if self._looks_lost(request.key, current):
                suspect_since = suspect_since or now
                if now - suspect_since >= LOST_GRACE:
                    self._recover(request)
                    suspect_since = None
            else:
                suspect_since = None
            time.sleep(min(pause, max(0.0, deadline - now)))
            pause = min(POLL_MAX, pause * 1.5)

    def check(self, request: BuildRequest) -> BuildStatus:
        """The build's status, once, for a client that polls instead of waiting; a build whose
        worker is gone is enqueued again first. One look cannot wait out a grace period as
        `watch` does, so a running build counts as lost only once it started LOST_GRACE ago
        (its worker takes the lease just after starting)."""
        current = self.status(request.key) or _queued(request)
        settled = current.state == QUEUED or (
            current.started_at > 0 and time.time() - current.started_at >= LOST_GRACE
        )
        if settled and self._looks_lost(request.key, current):
            self._recover(request)
            current = self.status(request.key) or _queued(request)
        return current

    def _looks_lost(self, key: str, current: BuildStatus) -> bool:
        if current.state == QUEUED:
            return not self.coordination.held(submit_claim(key))
        return current.state == RUNNING and not self.coordination.held(build_lease(key))

    def _recover(self, request: BuildRequest) -> None:
        """Re-enqueue a build nobody is running; one waiter does it, the others keep waiting."""
        if load_build(self.store, request.key) is not None:
            return
        if not self.coordination.claim(recover_claim(request.key), 2 * LEASE_TTL):
            return
        log.warning("build %s lost its worker; enqueueing it again", request.key)
        self.coordination.release(submit_claim(request.key))
        self.submit_again(request)

    def submit_again(self, request: BuildRequest) -> None:
        if self.coordination.claim(submit_claim(request.key), self._claim_ttl):
            try:
                # A lost build goes back in at the front: it was admitted once already.
                self._enqueue(request, fresh=True, priority=PRIORITY_STEPS[0])
            except BaseException:
                self.coordination.release(submit_claim(request.key))
                raise

    def queue_depth(self) -> int:
        with broker_errors():
            return celery_side.queue_depth(self._app)


@contextlib.contextmanager
def broker_errors() -> Iterator[None]:
    """Anything the broker or result backend raises becomes `Unavailable` (HTTP 503)."""
    try:
        yield
    except celery_side.BROKER_ERRORS as error:
        raise Unavailable(
            f"the build queue is unavailable: {error}", public=QUEUE_UNAVAILABLE
        ) from error
