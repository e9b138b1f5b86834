"""Progress of a build: a sink for (stage, percent) reports, and the clock timing each stage."""

from __future__ import annotations

import time
from collections.abc import Callable

Progress = Callable[[str, int], None]


def quiet(stage: str, percent: int) -> None:
    """Progress sink that shows nothing."""


class StageClock:
    """Passes progress on and notes how long each stage ran (first to last report)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._current = ""
        self._since = time.monotonic()
        self.stages: dict[str, float] = {}

    def __call__(self, stage: str, percent: int) -> None:
        now = time.monotonic()
        if stage != self._current:
            self._close(now)
            self._current, self._since = stage, now
        self._progress(stage, percent)

    def _close(self, now: float) -> None:
        if self._current:
            spent = self.stages.get(self._current, 0.0) + now - self._since
            self.stages[self._current] = round(spent, 3)

    def finish(self) -> dict[str, float]:
        self._close(time.monotonic())
        self._current = ""
        return self.stages
