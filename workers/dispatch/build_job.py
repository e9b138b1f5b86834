"""One build job, as a worker runs it (Celery-free; `workers/dispatch/celery_tasks.py` wraps
it in a task).

A job is a `BuildRequest`: schematic ID, version, asset path and the plan key the requester
resolved them to. The worker resolves the plan again from the same store (schematics are
immutable by ID, releases are checked by digest) and refuses to build when the key differs,
so `plans.py` stays the one place that knows what a plan holds and a worker never builds
something other than what was asked for.

Single flight: the job takes the `build:<key>` lease before building and checks the build
manifest both before and after taking it, so a committed build is never redone; a second
job for the same key waits for the lease holder and then finds the manifest. The requester's
`submit:<key>` claim is given back when the job ends for good (`finish`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from workers.assembly.run import ToolError
from workers.dispatch.build_request import BuildRequest, build_lease, submit_claim
from workers.dispatch.coordination import Lease
from workers.engine import Engine
from workers.errors import FactoryError, Unavailable
from workers.outputs.finished_builds import BuiltAsset, load_built
from workers.outputs.schematics_store import load_schematic
from workers.outputs.storage_budget import check_free_space, evict_to_budget
from workers.pipeline.build_once import ensure_built
from workers.pipeline.workdirs import work_root
from workers.planning.plans import Plan, make_plan
from workers.planning.profiles import parse_profile
from workers.store import StoreUnavailable

log = logging.getLogger(__name__)

# How often a job waiting for another holder of its lease looks again.
LEASE_POLL = 1.0
# The longest pause between attempts to take the lease while Redis is down.
LEASE_RETRY_MAX = 8.0
# The pool's time-limit exceptions (billiard's), known here by name: this module is Celery-free.
TIME_LIMIT_ERRORS = frozenset({"SoftTimeLimitExceeded", "TimeLimitExceeded"})


class InputsChanged(FactoryError):
    """The plan resolved on the worker is not the one the requester asked for."""


class Reporter(Protocol):
    """Where a job reports its progress (the task state, in a worker)."""

    def progress(self, stage: str, percent: int) -> None: ...


def resolve_plan(runtime: Engine, request: BuildRequest) -> Plan:
    store, settings = runtime.store, runtime.settings
    schematic = load_schematic(store, request.schematic)
    profile = parse_profile(request.path)
    plan = make_plan(store, schematic, request.schematic, request.version, profile, settings)
    if plan.key != request.key:
        raise InputsChanged(
            f"the factory's inputs for {request.path} changed after the build was requested "
            "(a release or extension was replaced); request the asset again"
        )
    return plan


def summary(built: BuiltAsset, request: BuildRequest) -> dict[str, Any]:
    """The final task result (what `/builds/<key>` shows when done)."""
    return {
        **request.to_json(),
        "sha256": built.sha256,
        "size": built.size,
        "seconds": built.seconds,
        "stages": dict(built.stages),
    }


def run_build(runtime: Engine, request: BuildRequest, reporter: Reporter) -> dict[str, Any]:
    """Build `request` unless it is built already; the summary of the stored build."""
    plan = resolve_plan(runtime, request)
    store = runtime.store
    built = load_built(store, plan)
    if built is not None:
        return summary(built, request)
    lease = _take_lease(runtime, plan.key)
    while lease is None:
        # Someone else builds this key right now: wait for their manifest (or their death).
        reporter.progress("queued", 0)
        time.sleep(LEASE_POLL)
        built = load_built(store, plan)
        if built is not None:
            return summary(built, request)
        lease = _take_lease(runtime, plan.key)
    try:
        built = load_built(store, plan)
        if built is not None:
            return summary(built, request)
        return summary(_build(runtime, plan, request, reporter.progress), request)
    finally:
        lease.release()


def _take_lease(runtime: Engine, key: str) -> Lease | None:
    """The build lease, None while someone else holds it. Redis down waits until it is back
    (with backoff): failing the build would not help, its message stays unacknowledged
    with this worker, and the outage may end in a second or in an hour."""
    pause = LEASE_POLL
    while True:
        try:
            return runtime.coordination.lease(build_lease(key))
        except Unavailable as error:
            log.warning("build %s: waiting for Redis to take the build lease: %s", key, error)
        time.sleep(pause)
        pause = min(LEASE_RETRY_MAX, pause * 2)


def _build(
    runtime: Engine, plan: Plan, request: BuildRequest, progress: Callable[[str, int], None]
) -> BuiltAsset:
    kind = str(plan.kind)
    runtime.metrics.count("image_factory_builds_total", kind=kind)
    log.info("build %s started: %s for schematic %s", plan.key, request.path, request.schematic)
    started = time.monotonic()
    try:
        check_free_space(runtime.backend, runtime.settings.min_free_bytes)
        built = ensure_built(
            runtime.store,
            plan,
            work_root(runtime.settings),
            progress,
            signer=plan.signer(runtime.settings),
            signing_key=runtime.signing_key,
            timeout=runtime.settings.tool_timeout,
        )
    except BaseException as error:
        reason = failure_reason(error)
        runtime.metrics.count("image_factory_build_failures_total", kind=kind, reason=reason)
        log.exception("build %s failed (%s)", plan.key, reason)
        raise
    seconds = time.monotonic() - started
    runtime.metrics.observe("image_factory_build_duration_seconds", seconds, kind=kind)
    log.info(
        "build %s finished in %.1f s: %s bytes, sha256 %s",
        plan.key, seconds, built.size, built.sha256,
    )  # fmt: skip
    try:
        evict_to_budget(runtime.store, runtime.settings.asset_budget_bytes, keep=plan.key)
    except (FactoryError, OSError):
        # The build is done and stored; eviction is tried again after the next one.
        log.exception("evicting old builds failed")
    return built


def finish(runtime: Engine, key: str) -> None:
    """The job ended for good (built or failed): the next request may enqueue again.

    Best effort: with Redis down the claim stays until its TTL, and a waiting request tells
    a finished build by its manifest and a failed one by its state, so neither waits on it."""
    try:
        runtime.coordination.release(submit_claim(key))
    except Unavailable as error:
        log.warning("build %s: cannot give back the submit claim: %s", key, error)


def failure_reason(error: BaseException) -> str:
    """Why a build failed, for the `reason` label of image_factory_build_failures_total: a
    fixed set (store_unavailable, refused, tool_failed, time_limit, internal), never a
    message, so the metric keeps a bounded number of series."""
    if isinstance(error, StoreUnavailable):
        return "store_unavailable"
    if isinstance(error, ToolError):  # before FactoryError, which it is one of
        return "tool_failed"
    if isinstance(error, FactoryError):
        return "refused"
    if type(error).__name__ in TIME_LIMIT_ERRORS:
        return "time_limit"
    return "internal"
