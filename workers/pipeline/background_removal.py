"""Removing a build's scratch trees off its critical path.

Removing a small tree is mostly waiting on the disk (each rmdir ~2.6 ms here, a few tens of
milliseconds for an unpacked extension, little CPU), and such waits overlap: a few threads
remove trees several times faster than one. Within `removals_in_background()` (the span of a
build's work directory, see `workers.pipeline.build_once.ensure_built`), `remove_soon` hands
a tree to those threads and returns at once; leaving the span waits for every removal, so
once a build's work directory is gone, so is everything it removed "soon", and the disk
space is back before the next build checks it. Outside the span, `remove_soon` removes at
once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from pathlib import Path

from workers.pipeline.workdirs import remove_tree

log = logging.getLogger(__name__)

# Removals at once: enough to overlap the disk's latency, no CPU to speak of.
REMOVAL_THREADS = 4


class _Removals:
    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(REMOVAL_THREADS, thread_name_prefix="remove")
        self.pending: list[Future[None]] = []


_current: ContextVar[_Removals | None] = ContextVar("background_removals", default=None)


def remove_soon(path: Path) -> None:
    """Remove the tree `path`: in the background within `removals_in_background()`, else
    now. Nothing may use `path` afterwards."""
    removals = _current.get()
    if removals is None:
        remove_tree(path)
        return
    removals.pending.append(removals.pool.submit(remove_tree, path))


@contextlib.contextmanager
def removals_in_background() -> Iterator[None]:
    """A span in which `remove_soon` removes in the background; its end waits for every
    removal. A failed removal is raised there when the span's own work succeeded (and only
    logged when that failed, so the build's own error is the one raised)."""
    removals = _Removals()
    token = _current.set(removals)
    failed = True
    try:
        yield
        failed = False
    finally:
        _current.reset(token)
        removals.pool.shutdown(wait=True)
        errors = [e for e in (f.exception() for f in removals.pending) if e is not None]
        if errors and failed:
            log.warning("removing a scratch tree failed: %s", errors[0])
        elif errors:
            raise errors[0]
