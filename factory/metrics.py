"""`GET /metrics` (Prometheus text format) and the per-request HTTP metrics behind it.

Every request is counted by route template (`/image/<schematic_id>/<version>/<path>`, not
the concrete URL, so the label set stays small), method and status, and timed up to its
response headers (a long download counts the time to its first byte). The counters live in
the shared metrics store (`workers.dispatch.shared_metrics`), so any web process shows the
whole service, builds counted by the workers included. What a view counts for its request
(`factory.request_metrics.count_with_request`: cache hits and misses) goes out in the same
write as the request's own series: one write per request.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, g, request

from factory.engine import engine
from factory.request_metrics import take_counted
from workers.dispatch.heartbeat import live_workers
from workers.errors import Unavailable

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "<unmatched>"


@bp.before_app_request
def _start_clock() -> None:
    g.metrics_started = time.perf_counter()


@bp.after_app_request
def _record(response: Response) -> Response:
    started: float | None = g.get("metrics_started")
    if started is None:
        return response
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    engine().metrics.http_request(
        route,
        request.method,
        response.status_code,
        time.perf_counter() - started,
        take_counted(),
    )
    return response


@bp.teardown_app_request
def _record_leftovers(error: BaseException | None) -> None:
    """Counts of a request whose response was never made (so `_record` did not run)."""
    pending = take_counted()
    if pending:
        engine().metrics.add(pending)


@bp.get("/metrics")
def metrics() -> Response:
    eng = engine()
    gauges: dict[str, float] = {}
    try:
        gauges["image_factory_queue_depth"] = eng.queue.queue_depth()
    except Unavailable as error:
        log.warning("queue depth unavailable: %s", error)
    if eng.backend.redis_url:
        try:
            gauges["image_factory_workers_alive"] = len(live_workers(eng.backend))
        except Unavailable as error:
            log.warning("live workers unknown: %s", error)
    return Response(eng.metrics.render(gauges), status=200, content_type=CONTENT_TYPE)
