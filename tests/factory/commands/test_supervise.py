"""The embedded default's supervisor: its housekeeping runs at start and then periodically,
and a failing housekeeping run is logged without stopping the service."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator

import pytest

from factory.commands.supervise import Supervisor
from workers.store import StoreUnavailable


@pytest.fixture(autouse=True)
def _keep_signal_handlers() -> Iterator[None]:
    """Supervisor.run installs SIGTERM/SIGINT handlers for the service; pytest keeps its own."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def _web() -> None:
    time.sleep(5.0)  # the service runs until gunicorn exits


def _worker() -> None:
    time.sleep(60)  # stopped by the supervisor when the web side ends


def test_housekeeping_runs_at_start_and_then_every_period() -> None:
    runs: list[float] = []

    status = Supervisor(_web, _worker, lambda: runs.append(time.monotonic()), 3.0).run()

    assert status == 0
    # The web side ran 5 s: two runs 3 s apart fit (with a second to spare either way) only
    # if the first came at start.
    assert len(runs) == 2
    assert runs[1] - runs[0] >= 3.0


@pytest.mark.parametrize(
    "failure",
    [
        OSError(28, "No space left on device"),
        # The collection of unused uploads reads the store, which may not answer.
        StoreUnavailable("store at http://127.0.0.1:1 does not answer"),
    ],
    ids=["full-disk", "store-unavailable"],
)
def test_failing_housekeeping_is_logged_and_the_service_goes_on(
    caplog: pytest.LogCaptureFixture, failure: Exception
) -> None:
    calls: list[float] = []

    def failing() -> None:
        calls.append(time.monotonic())
        raise failure

    with caplog.at_level(logging.ERROR, logger="factory.commands.supervise"):
        status = Supervisor(_web, _worker, failing, 3.0).run()

    assert status == 0
    assert len(calls) >= 2  # tried again the next period
    assert "housekeeping failed" in caplog.text
    assert str(failure) in caplog.text
