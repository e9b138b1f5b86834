"""Counts a view makes ride along with its request's own metrics write
(`factory.request_metrics`), and are never lost when no response is made."""

from __future__ import annotations

from flask import Flask

from factory.engine import ENGINE_KEY
from factory.request_metrics import count_with_request

HITS = 'image_factory_cache_hits_total{kind="iso"} '
ROUTE = 'image_factory_http_requests_total{route="<unmatched>",method="GET",status="404"} '


def _value(app: Flask, prefix: str) -> float:
    text = app.extensions[ENGINE_KEY].metrics.render({})
    found = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(found[0].split()[-1]) if found else 0.0


def test_counts_are_written_with_the_request(app: Flask) -> None:
    @app.get("/count-twice")
    def count_twice() -> str:
        count_with_request("image_factory_cache_hits_total", kind="iso")
        count_with_request("image_factory_cache_hits_total", kind="iso")
        assert _value(app, HITS) == 0  # not yet: it waits for the request's own write
        return "ok"

    assert app.test_client().get("/count-twice").status_code == 200
    assert _value(app, HITS) == 2
    assert _value(app, 'image_factory_http_requests_total{route="/count-twice"') == 1


def test_counts_of_a_request_without_a_response_are_still_written(app: Flask) -> None:
    """A request that counted and then ended with no response hook run still has its counts
    written (at teardown), once."""
    with app.test_request_context("/"):
        count_with_request("image_factory_cache_hits_total", kind="iso")
        assert _value(app, HITS) == 0
    assert _value(app, HITS) == 1
    assert _value(app, ROUTE) == 0  # no response, so no request series
