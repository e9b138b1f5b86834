"""Counts a view makes for its request, written with the request's own series in one write.

`count_with_request` keeps the increments on `g`; the metrics blueprint (`factory.metrics`)
takes them (`take_counted`) when it records the request, or at teardown when no response
was made. A cache hit thus costs one write to the shared metrics store, not two.
"""

from __future__ import annotations

from flask import g

from factory.engine import engine

PENDING = "metrics_pending"  # on `g`: what the request counted, not yet written


def count_with_request(name: str, **labels: str) -> None:
    """Count `name` once, written together with the current request's own series."""
    increments = engine().metrics.counted(name, 1.0, **labels)
    pending: dict[str, float] = g.setdefault(PENDING, {})
    for series, amount in increments.items():
        pending[series] = pending.get(series, 0.0) + amount


def take_counted() -> dict[str, float] | None:
    """What the current request counted and nobody wrote yet (taken: written once)."""
    found: dict[str, float] | None = g.pop(PENDING, None)
    return found
