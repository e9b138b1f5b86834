"""Run the embedded default's two halves side by side: the web service and one build worker.

`image-factory serve` without a broker URL forks two children and watches them: gunicorn
(the web processes) and a Celery worker on the embedded broker. A worker that dies is started
again (a few times, then the whole service stops, rather than accept builds nobody runs); when
gunicorn exits, or the service gets SIGTERM/SIGINT, both children are stopped. Each child
also gets SIGTERM from the kernel if the supervising process itself is killed. The
supervising process also runs the housekeeping (expiring old build states, removing dead
builds' work directories, collecting unused uploads) at start and then
every `housekeeping_every` seconds.
"""

from __future__ import annotations

import ctypes
import logging
import math
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import signal
import time
from collections.abc import Callable
from types import FrameType

from workers.errors import FactoryError

log = logging.getLogger(__name__)

STOP_GRACE = 10.0
# A worker that dies sooner than this after starting counts as crashing.
QUICK_DEATH = 30.0
MAX_QUICK_DEATHS = 3
HOUSEKEEPING_EVERY = 3600.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _child(target: Callable[[], None]) -> None:
    _die_with_parent()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    target()


class Supervisor:
    def __init__(
        self,
        web: Callable[[], None],
        worker: Callable[[], None],
        housekeeping: Callable[[], None],
        housekeeping_every: float = HOUSEKEEPING_EVERY,
    ) -> None:
        self._context = multiprocessing.get_context("fork")
        self._web_target = web
        self._worker_target = worker
        self._housekeeping = housekeeping
        self._housekeeping_every = housekeeping_every
        self._housekept = -math.inf
        self._stopping = False
        self._children: list[multiprocessing.process.BaseProcess] = []

    def _keep_house(self) -> None:
        if time.monotonic() - self._housekept < self._housekeeping_every:
            return
        self._housekept = time.monotonic()
        try:
            self._housekeeping()
        except (OSError, FactoryError):
            # A full or unreadable data directory, or a store not answering, must not stop
            # the service; it is logged, and tried again next time.
            log.exception("housekeeping failed")

    def _start(self, name: str, target: Callable[[], None]) -> multiprocessing.process.BaseProcess:
        process = self._context.Process(target=_child, args=(target,), name=name)
        process.start()
        what = "web service" if name == "web" else "build worker"
        log.info("started the %s (pid %s)", what, process.pid)
        return process

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        self._stopping = True
        # The worker gets Celery's cold shutdown (SIGQUIT): a build in progress is put back
        # on the queue (acks_late) instead of holding the stop for minutes.
        _signal(self._children, {"worker": signal.SIGQUIT, "web": signal.SIGTERM})

    def run(self) -> int:
        """Run until gunicorn exits or a stop signal arrives; gunicorn's exit status."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        web = self._start("web", self._web_target)
        worker = self._start("worker", self._worker_target)
        self._children = [web, worker]
        started, quick_deaths = time.monotonic(), 0
        try:
            while not self._stopping and web.is_alive():
                self._keep_house()
                multiprocessing.connection.wait([web.sentinel, worker.sentinel], timeout=1.0)
                if self._stopping or worker.is_alive() or not web.is_alive():
                    continue
                lived = time.monotonic() - started
                quick_deaths = quick_deaths + 1 if lived < QUICK_DEATH else 0
                log.error("build worker exited with status %s after %.0f s", worker.exitcode, lived)
                if quick_deaths >= MAX_QUICK_DEATHS:
                    log.error("build worker keeps dying; stopping the service")
                    break
                worker = self._start("worker", self._worker_target)
                self._children = [web, worker]
                started = time.monotonic()
        finally:
            _signal(self._children, {"worker": signal.SIGQUIT, "web": signal.SIGTERM})
            _stop(self._children)
        return web.exitcode or 0


def _signal(processes: list[multiprocessing.process.BaseProcess], by_name: dict[str, int]) -> None:
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, by_name[process.name])


def _stop(processes: list[multiprocessing.process.BaseProcess]) -> None:
    """Wait for signalled children; SIGKILL whoever is still there after the grace."""
    deadline = time.monotonic() + STOP_GRACE
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
