"""The Celery app, built from `Settings`; with `workers/dispatch/celery_tasks.py` the only place
Celery is used.

Broker and result backend per mode:
- scaled (`IMAGE_FACTORY_BROKER_URL=redis://…`): Redis for both;
- embedded default: kombu's `filesystem://` transport (made atomic: `AtomicFilesChannel`) and
  a file result backend, both under `<data dir>/celery/`, so `image-factory serve` needs no
  Redis and its worker is just another process on the same machine.

Delivery: a build is acknowledged only when it has finished (`acks_late`); a worker process
that dies mid-build puts its message back (`task_reject_on_worker_lost`), and a broker
connection that vanishes (a killed machine) gets its unacknowledged builds redelivered after
the visibility timeout, which is set above the hard time limit so a slow build is never handed
to a second worker while the first still runs. Each worker process takes one build at a time
(`worker_prefetch_multiplier=1`). JSON only, so no pickled objects cross the broker.

The web side uses the helpers at the bottom through `workers.dispatch.build_queue`, never Celery
directly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
import warnings
from pathlib import Path
from queue import Empty
from typing import Any

import redis
from celery import Celery, states
from celery.backends.filesystem import FilesystemBackend
from celery.exceptions import (
    BackendError,
    CPendingDeprecationWarning,
    SecurityWarning,
    TimeLimitExceeded,
    WorkerLostError,
)
from kombu.exceptions import ChannelError, OperationalError
from kombu.transport import filesystem, virtual
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps, loads

from workers.backends import Backend
from workers.catalog.collect import collect_unused_uploads
from workers.dispatch import heartbeat
from workers.pipeline.workdirs import remove_dead_workdirs, work_root
from workers.settings import Settings
from workers.store import make_store
from workers.tenancy.audit import ACTOR_HOUSEKEEPING

log = logging.getLogger(__name__)

QUEUE = "builds"
# The build task, sent by name: the web side never imports the task (nor the pipeline).
BUILD_TASK = "image_factory.build"
# A worker that vanished is noticed this long after the hard time limit could have ended.
VISIBILITY_MARGIN = 300
SOFT_LIMIT_MARGIN = 30
# States a queued-but-not-started build is recorded in before a worker picks it up.
QUEUED = "QUEUED"
# How long a build's task state is kept. A finished build outlives it (its manifest in the
# store answers for it); the state only matters while the build is queued or running.
RESULT_EXPIRES = 24 * 3600


class FactoryCelery(Celery):
    """A Celery app that carries the settings and the backend it was made for (tasks read
    them; `backend` is Celery's result backend, hence the other name)."""

    settings: Settings
    shared: Backend


class AtomicFilesystemBackend(FilesystemBackend):
    """The file result backend, writing each state to a temp file renamed into place, so a
    reader in another process never sees a half-written state."""

    def set(self, key: str, value: Any) -> None:
        final: bytes = getattr(self, "_filename")(key)  # noqa: B009 (not in the type stubs)
        tmp = final + b".tmp-" + str(os.getpid()).encode()
        with open(tmp, "wb") as out:
            out.write(value if isinstance(value, bytes) else str(value).encode())
        os.replace(tmp, final)


class AtomicFilesChannel(filesystem.Channel):
    """kombu's filesystem channel with whole messages only.

    Messages are taken by priority (0 first, as kombu's Redis transport does), then in the
    order they came: a file's name starts with its priority digit and the time.

    kombu creates a message file and then writes into it, and takes one by moving it to the
    system temp directory (a copy when that is another filesystem) before reading it: a
    consumer listing the folder in between reads an empty file, dies on the JSON error, and
    the message is gone. Here a message is written under a name consumers skip and renamed
    into place, and a consumer claims one by renaming it into the processed folder next to
    the queue (one rename wins), reads it, and deletes it.
    """

    # The stubs of kombu's two base classes name the second parameter differently.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        priority = self._get_message_priority(payload, reverse=False)
        name = f"{priority}_{round(time.monotonic() * 1000):015d}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # "<queue>.msg.part" after the first dot: not a message
        try:
            with open(partial, "wb") as out:
                out.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            raise ChannelError(f"cannot add message {final!r} to the queue: {exc}") from exc

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(self.processed_folder, name)
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except FileNotFoundError:
                continue  # another consumer took it first
            try:
                with open(claimed, "rb") as message:
                    payload = message.read()
                os.remove(claimed)
            except OSError as exc:
                raise ChannelError(f"cannot read message {claimed!r}: {exc}") from exc
            return loads(payload.decode())
        raise Empty()


class AtomicFilesTransport(filesystem.Transport):
    Channel = AtomicFilesChannel


class DetachedSafeRedisQoS(kombu_redis.QoS):
    """kombu's Redis acknowledgement emulation, safe on a channel whose connection is gone.

    When the broker connection drops while a build runs, Celery closes the old channel, and
    kombu then tries to restore the build's unacknowledged message (and later to acknowledge
    it) through that channel. Its connection details are gone by then, so kombu raises
    AttributeError, which is no connection error: the worker's consumer stopped for good
    and the worker hung, alive but consuming nothing. Here both are skipped instead: the
    message stays in Redis' unacked set, the broker redelivers it after the visibility
    timeout, and the worker that gets it finds the build done (its manifest) at once.
    """

    def _detached(self) -> bool:
        return getattr(self.channel.connection, "client", None) is None

    def restore_unacked(self, client: Any = None) -> None:
        if self._detached():
            log.warning("broker connection gone: unacknowledged builds wait for redelivery")
            if self._delivered is not None:
                self._delivered.clear()
            return
        super().restore_unacked(client)

    def ack(self, delivery_tag: str) -> None:
        if self._detached():
            log.info("build message %s not acknowledged: its connection is gone", delivery_tag)
            virtual.QoS.ack(self, delivery_tag)  # the local bookkeeping only
            return
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if self._detached():
            virtual.QoS.ack(self, delivery_tag)
            return
        super().reject(delivery_tag, requeue)


class DetachedSafeRedisChannel(kombu_redis.Channel):
    QoS = DetachedSafeRedisQoS


class DetachedSafeRedisTransport(kombu_redis.Transport):
    Channel = DetachedSafeRedisChannel


def celery_dirs(settings: Settings) -> dict[str, Path]:
    root = settings.data_dir / "celery"
    return {
        "queue": root / "queue",
        "processed": root / "processed",
        "results": root / "results",
        "control": root / "control",
    }


def make_celery(settings: Settings, shared: Backend, worker: bool = False) -> FactoryCelery:
    """The app for these settings on the backend `shared` (Redis, or files under the data
    directory). The web side sends the build task by name; a worker's app
    gets the task itself from `workers.dispatch.celery_tasks.register`.

    The web side (`worker=False`) fails fast when Redis is down: a request must get its 503
    in seconds, not minutes. A worker (`worker=True`) waits the outage out instead, however
    long it lasts: it reconnects to the broker with backoff (Celery logs every attempt) and
    retries writing a build's state until Redis answers again, so a build that runs through
    an outage still records its result."""
    app = FactoryCelery("image_factory", set_as_current=False)
    app.settings = settings
    app.shared = shared
    hard = settings.build_time_limit
    if shared.redis_url:
        broker, backend = shared.redis_url, shared.redis_url
        transport: dict[str, Any] = {"visibility_timeout": hard + VISIBILITY_MARGIN}
        broker_transport = f"{__name__}:DetachedSafeRedisTransport"
    else:
        dirs = celery_dirs(settings)
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        broker = "filesystem://localhost/"  # the host part is unused; naming one avoids a warning
        broker_transport = f"{__name__}:AtomicFilesTransport"
        backend = f"workers.dispatch.celery_app:AtomicFilesystemBackend+file://{dirs['results'].resolve()}"
        transport = {
            "data_folder_in": str(dirs["queue"]),
            "data_folder_out": str(dirs["queue"]),
            "processed_folder": str(dirs["processed"]),
            # kombu's default is ./control, relative to wherever the process was started.
            "control_folder": str(dirs["control"]),
            "store_processed": False,
            "polling_interval": 0.2,
        }
    app.conf.update(
        broker_url=broker,
        broker_transport=broker_transport,
        result_backend=backend,
        broker_transport_options=transport,
        result_backend_transport_options=transport if shared.redis_url else {},
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_track_started=True,
        task_time_limit=hard,
        task_soft_time_limit=max(1, hard - SOFT_LIMIT_MARGIN),
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        worker_hijack_root_logger=True,
        result_extended=False,
        result_expires=RESULT_EXPIRES,
        broker_connection_timeout=3,
        redis_socket_timeout=3,
        redis_socket_connect_timeout=3,
        redis_retry_on_timeout=worker,
        # kombu counts retries: 0 means none (not "forever", as Celery's docs once said);
        # None retries for good, each attempt waiting a little longer, up to 32 s apart.
        broker_connection_max_retries=None if worker else 0,
        broker_connection_retry=worker,
        result_backend_always_retry=worker,
        result_backend_max_sleep_between_retries_ms=5000,
        # A build running when the broker connection drops goes on: its result is written
        # once Redis answers again (its message, unacknowledged, is redelivered after the
        # visibility timeout and finds the build done). Cancelling it would redo the work.
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def run_worker(app: FactoryCelery, concurrency: int, loglevel: str, name: str) -> int:
    """Run a worker consuming the build queue until it is told to stop; its exit status
    (0 after a requested stop, non-zero when it stopped for a reason of its own).

    `app.Worker` directly rather than `app.worker_main`, which drops the status (every end
    looked like success to a supervisor)."""
    # Celery's advice for root is its `--uid` option, which this command has no use for (a
    # worker needs no privileges: run it as an unprivileged user, as the systemd unit does).
    warnings.filterwarnings("ignore", message=r".*superuser privileges", category=SecurityWarning)
    # Celery warns on every reconnect that it may cancel running builds in a future version;
    # this app chose not to (worker_cancel_long_running_tasks_on_connection_loss above).
    warnings.filterwarnings("ignore", category=CPendingDeprecationWarning)
    if os.geteuid() == 0:
        log.warning(
            "running as root: builds need no privileges; run the worker as an unprivileged "
            "user (scripts/systemd/image-factory-worker.service does)"
        )
    worker = app.Worker(
        hostname=name,
        pool_cls="prefork",
        loglevel=loglevel,
        concurrency=concurrency,
        queues=[QUEUE],
        # Workers are independent; they need no gossip, sync or Celery heartbeat traffic
        # (liveness goes through `workers.dispatch.heartbeat`).
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    with heartbeat.beating(app.shared, name):
        worker.start()
    return int(worker.exitcode or 0)


# --- used by workers.dispatch.build_queue (the web side) ------------------------------------------


def failure_text(result: Any) -> str:
    """Words for a failed task's stored exception."""
    if isinstance(result, TimeLimitExceeded):
        return "the build ran past the hard time limit and was stopped"
    if isinstance(result, WorkerLostError):
        return "the worker running the build stopped unexpectedly"
    if isinstance(result, BaseException) and str(result):
        return str(result)
    return "the build failed"


def send_build(app: FactoryCelery, key: str, request: dict[str, str], priority: int) -> None:
    """Record the build as queued, then enqueue it with its key as the task id (`priority`:
    0 is taken first, 9 last)."""
    app.backend.store_result(key, {"stage": "queued", "percent": 0, **request}, QUEUED)
    app.send_task(BUILD_TASK, args=[request], task_id=key, queue=QUEUE, priority=priority)


def expire_results(app: FactoryCelery) -> None:
    """Delete task states older than RESULT_EXPIRES. Redis expires its keys by itself; the
    embedded default's state files need this called now and then (Celery leaves it to a
    beat process, which the embedded default does not run)."""
    app.backend.cleanup()


def keep_house(app: FactoryCelery) -> None:
    """The embedded default's periodic chores: expire old build states, remove the work
    directories of builds whose worker died (a live build's stay: it holds their lock), and
    collect uploads nobody uses (`workers.catalog.collect`)."""
    expire_results(app)
    remove_dead_workdirs(work_root(app.settings))
    store = make_store(app.shared)
    for gone in collect_unused_uploads(
        store, app.settings.upload_grace_seconds, ACTOR_HOUSEKEEPING
    ):
        log.info("collected unused %s %s (sha256:%s)", gone.kind, gone.subject, gone.digest)


def forget_build(app: FactoryCelery, key: str) -> None:
    """Drop a finished task's state, so a new run of the same key can record its own (Celery
    never overwrites a SUCCESS)."""
    app.backend.forget(key)


def task_meta(app: FactoryCelery, key: str) -> tuple[str, dict[str, Any], str]:
    """(Celery state, progress meta, error text) as stored now (never a cached copy)."""
    meta = app.backend.get_task_meta(key, cache=False)
    state = str(meta.get("status", states.PENDING))
    result = meta.get("result")
    if state in STATE_FAILED:
        return state, {}, failure_text(result)
    return state, result if isinstance(result, dict) else {}, ""


def queue_depth(app: FactoryCelery) -> int:
    """Builds waiting in the broker queue (not counting those a worker holds)."""
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        return int(channel.queue_declare(QUEUE).message_count)


# What the broker and result backend raise when they cannot be reached.
BROKER_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    BackendError,
    redis.exceptions.RedisError,
    OSError,
)
STATE_RUNNING = frozenset({states.STARTED, "PROGRESS"})
# A build waiting for its retry (the store was unreachable) is back in the queue.
STATE_RETRY = states.RETRY
STATE_QUEUED = frozenset({QUEUED, STATE_RETRY})
STATE_DONE = frozenset({states.SUCCESS})
STATE_FAILED = frozenset({states.FAILURE, states.REVOKED})
