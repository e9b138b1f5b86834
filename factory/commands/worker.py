"""`image-factory worker`: a build worker (Celery) on this machine.

Scaled mode: run it on any number of machines with the same `IMAGE_FACTORY_BROKER_URL`,
`IMAGE_FACTORY_S3_*` as the web processes, and `IMAGE_FACTORY_SIGNING_KEY` and
`IMAGE_FACTORY_SECUREBOOT_KEY`/`_CERT` (only workers sign; the web processes hold no private
key); it refuses to start without them (`factory.commands.startup`). It
needs no Redis to start: it waits for the broker, and rides out its outages. Without a broker
URL it consumes the embedded broker's queue in the data directory (what `serve` starts for
itself in the embedded default).
"""

from __future__ import annotations

import logging
import os
import socket

import click

from factory.commands.startup import check_scaled_start
from workers.assembly.run import require_tools
from workers.backends import choose_backend
from workers.dispatch.celery_app import make_celery, run_worker
from workers.dispatch.celery_tasks import register
from workers.errors import ToolError, Unavailable
from workers.keys.signing import load_or_create_signing_key
from workers.pipeline.sandbox_policy import sandbox_warning
from workers.pipeline.workdirs import remove_dead_workdirs, work_root
from workers.planning.asset_kinds import BUILD_TOOLS
from workers.settings import Settings
from workers.store import make_store

log = logging.getLogger(__name__)


def warn_if_unsandboxed(settings: Settings) -> None:
    """Say at start-up, loudly, when build tools cannot be sandboxed on this host."""
    warning = sandbox_warning(settings)
    if warning is not None:
        log.warning("%s", warning)
        click.secho(f"WARNING: {warning}", err=True, fg="red", bold=True)


def worker_name() -> str:
    """Unique per process, so two workers on one machine do not share a Celery node name."""
    return f"builder-{os.getpid()}@{socket.gethostname()}"


@click.command()
@click.option(
    "--concurrency",
    type=int,
    default=None,
    help="Builds run at once (default: IMAGE_FACTORY_WORKER_CONCURRENCY).",
)
@click.option("--loglevel", default="INFO", show_default=True, help="Celery log level.")
def worker(concurrency: int | None, loglevel: str) -> None:
    """Run a build worker: takes builds from the queue, publishes them to the store."""
    settings = Settings.from_env()
    warn_if_unsandboxed(settings)
    backend = choose_backend(settings)
    store = make_store(backend)
    try:
        require_tools(BUILD_TOOLS, reason="building images")
        if not backend.scaled:
            store.ping()
            # Every build is signed with it: a missing or unreadable key stops the worker here.
            load_or_create_signing_key(settings)
        # A worker killed mid-build left its work directory behind; live builds of other
        # workers on this data directory hold theirs, and keep them.
        remove_dead_workdirs(work_root(settings))
    except (ToolError, Unavailable, OSError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    if backend.scaled:
        check_scaled_start(settings, store)
    status = run_worker(
        register(make_celery(settings, backend, worker=True)),
        concurrency or settings.worker_concurrency,
        loglevel,
        worker_name(),
    )
    # A supervisor restarts a worker that failed; a requested stop (SIGTERM) ends with 0.
    raise SystemExit(status)
