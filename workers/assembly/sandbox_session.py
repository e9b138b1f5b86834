"""Many short tool runs in one bubblewrap sandbox: a session.

Starting a sandbox costs about 50 ms (user, mount and pid namespaces, the bind mounts) —
more than mksquashfs takes to pack a small extension layer, so a build of many small layers
spent most of its time starting sandboxes. A session starts the sandbox once (the same
`bwrap_argv` as a single tool run: same mounts, namespaces, uid and environment) with a small
driver inside it (`DRIVER`, run by the system's python3 from the read-only /usr, no site
packages), then hands it one command at a time over a pipe: argv, working directory,
environment, umask and timeout as one JSON line in, exit status and output as one JSON line
out. Tools started by the driver are therefore exactly as confined as tools started by bwrap
directly; they share the session's /tmp and pid namespace with the tools of the same session
(one build step of one build), which already share its work directory.

`run_tool` uses the session of its context (`run.tool_session`) for plain calls (stdin
nothing or a file the driver opens, stdout captured); the session is started on first use
and stopped when the context ends. A session serves one thread at a time: a step that runs
tools on several threads gives each thread its own.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from workers.assembly.sandbox import Sandbox, bwrap_argv

# The driver, run inside the sandbox as `python3 -I -S -c DRIVER`. It trusts nothing it
# runs: each command gets stdin from /dev/null, its own timeout, and its output captured.
DRIVER = """
import base64, json, subprocess, sys
def b64(data):
    return base64.b64encode(data or b"").decode()
while True:
    line = sys.stdin.readline()
    if not line:
        break
    job = json.loads(line)
    stdin = subprocess.DEVNULL
    try:
        if job["stdin"] is not None:
            stdin = open(job["stdin"], "rb")
        proc = subprocess.run(job["argv"], cwd=job["cwd"], env=job["env"], umask=job["umask"],
                              stdin=stdin, capture_output=True, timeout=job["timeout"])
        done = {"rc": proc.returncode, "stdout": b64(proc.stdout), "stderr": b64(proc.stderr)}
    except subprocess.TimeoutExpired as exc:
        done = {"rc": None, "stdout": "", "stderr": b64(exc.stderr)}
    except FileNotFoundError as exc:
        missing = str(exc.filename or job["argv"][0]).encode()
        done = {"rc": 127, "stdout": "", "stderr": b64(missing + b": not found")}
    finally:
        if stdin != subprocess.DEVNULL:
            stdin.close()
    sys.stdout.write(json.dumps(done) + "\\n")
    sys.stdout.flush()
"""
# How long past a command's own timeout the host waits for the driver's answer.
GRACE = 30.0


class SessionBroken(RuntimeError):
    """The session's sandbox or driver ended or stopped answering (`timed_out`); it is
    stopped, and the next command starts a new one."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class Outcome:
    """A command's exit status (None: stopped at its timeout) and its output."""

    returncode: int | None
    stdout: bytes
    stderr: bytes


class SandboxSession:
    """One sandbox running commands one at a time (see the module docstring)."""

    def __init__(self, sandbox: Sandbox, env: Mapping[str, str]) -> None:
        self.sandbox = sandbox
        self._env = dict(env)
        self._proc: subprocess.Popen[bytes] | None = None
        self._errors: IO[bytes] | None = None
        self._pending = b""
        self.starts = 0  # sandboxes started (for tests and measurements)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str],
        umask: int,
        timeout: float,
        stdin: str | None = None,
    ) -> Outcome:
        """Run `argv` in the session's sandbox, its stdin the file `stdin` (opened inside the
        sandbox; a named pipe, say) or /dev/null; SessionBroken if the session failed."""
        job = {
            "argv": list(argv),
            "cwd": cwd,
            "env": dict(env),
            "umask": umask,
            "timeout": timeout,
            "stdin": stdin,
        }
        proc = self._started()
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(job).encode() + b"\n")
            proc.stdin.flush()
            answer = self._read_line(proc, timeout + GRACE)
        except (OSError, SessionBroken) as exc:
            why = f"the sandbox session ended: {exc}{self._driver_errors()}"
            self.close(kill=True)
            timed_out = isinstance(exc, SessionBroken) and exc.timed_out
            raise SessionBroken(why, timed_out=timed_out) from exc
        done: dict[str, Any] = json.loads(answer)
        return Outcome(
            done["rc"], base64.b64decode(done["stdout"]), base64.b64decode(done["stderr"])
        )

    def close(self, *, kill: bool = False) -> None:
        """Stop the sandbox: the driver ends at the end of its input, bwrap with it (`kill`:
        at once, for a session that stopped answering). bwrap's --die-with-parent and its
        pid namespace take every process of the sandbox with it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None
            assert proc.stdout is not None
            # A driver that died already has closed its end: nothing to tell it then.
            with contextlib.suppress(OSError):
                proc.stdin.close()
            try:
                proc.wait(timeout=0 if kill else GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            proc.stdout.close()
        if self._errors is not None:
            self._errors.close()
            self._errors = None
        self._pending = b""

    def _started(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            # The driver's own stderr (a traceback if it fails); closed by `close`.
            self._errors = tempfile.TemporaryFile()  # noqa: SIM115
            # bwrap gets the fixed tool environment: inside, /proc/1/environ is bwrap's own.
            self._proc = subprocess.Popen(
                [*bwrap_argv(self.sandbox, None), "python3", "-I", "-S", "-c", DRIVER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errors,
                env=self._env,
                cwd=self.sandbox.root,
                start_new_session=True,
            )
            self.starts += 1
        return self._proc

    def _read_line(self, proc: subprocess.Popen[bytes], timeout: float) -> bytes:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise SessionBroken("no answer in time", timed_out=True)
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise SessionBroken("the driver exited")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def _driver_errors(self) -> str:
        if self._errors is None:
            return ""
        self._errors.seek(0)
        tail = self._errors.read()[-2000:].decode("utf-8", "replace").strip()
        return f": {tail}" if tail else ""


class SessionPerThread:
    """A session for each thread that runs tools (started on its first command), all stopped
    by `close`: a step's worker threads each run their tools one after the other."""

    def __init__(self, sandbox: Sandbox, env: Mapping[str, str]) -> None:
        self.sandbox = sandbox
        self._env = dict(env)
        self._sessions: dict[int, SandboxSession] = {}
        self._lock = threading.Lock()
        self._closed_starts = 0

    def session(self) -> SandboxSession:
        """The calling thread's session."""
        with self._lock:
            return self._sessions.setdefault(
                threading.get_ident(), SandboxSession(self.sandbox, self._env)
            )

    @property
    def starts(self) -> int:
        """Sandboxes started so far (closed ones included)."""
        with self._lock:
            return self._closed_starts + sum(s.starts for s in self._sessions.values())

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
            self._closed_starts += sum(s.starts for s in sessions)
        for session in sessions:
            session.close()
