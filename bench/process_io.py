"""Disk writes of a build's whole process tree, sandboxed tools included (bench only).

Linux adds a child's I/O counters (`/proc/<pid>/io`) to its parent's when the parent reaps
it, so a process that waited for every tool it ran reads them all in `/proc/self/io`. Not
so for a tool run under bubblewrap with its own pid namespace: bwrap's outer process exits
as soon as the tool's exit status reaches it, before the namespace's init (bwrap's child,
which reaped the tool) has exited, so that init is reaped by the system's init and the
tool's writes (and CPU time) never reach the build. A process that is a child subreaper
(`PR_SET_CHILD_SUBREAPER`) gets those orphans instead; reaping them before reading its
counters makes the figure count every byte its process tree wrote.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> None:
    """Make this process the reaper of every orphan in its process tree."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_orphans() -> int:
    """Wait for every child left (adopted orphans: sandboxes' pid-namespace inits); call
    only when this process runs no tool of its own. Returns how many were reaped."""
    reaped = 0
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return reaped
        reaped += 1


def io_counters() -> dict[str, int]:
    """This process' `/proc/self/io` (its own I/O and that of every child it reaped)."""
    lines = Path("/proc/self/io").read_text().splitlines()
    return {key: int(value) for key, value in (line.split(": ") for line in lines)}
