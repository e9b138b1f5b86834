"""The single way this project runs an external tool.

Argv lists only (never a shell), a fixed environment (`LC_ALL=C`, `SOURCE_DATE_EPOCH`, a fixed
`PATH`, `TZ=UTC`), stdin from /dev/null unless given, a timeout, and on failure a `ToolError`
whose message is the exact command plus the tail of its stderr.

Two things come from the caller's context rather than from each call, so a new call site
cannot forget them:
- `tool_timeout(seconds)`: the longest a tool may run (`IMAGE_FACTORY_TOOL_TIMEOUT`);
- `sandboxed(workdir)`: every tool runs in a bubblewrap sandbox that sees only `workdir`
  (`workers.assembly.sandbox`). A build enters it once around everything it runs; a path
  argument outside it is an `OutsideSandbox` error. On a host that cannot sandbox
  (`sandbox_problem()`), tools run unsandboxed and the plan refuses uploaded content instead
  (`workers.pipeline.sandbox_policy`).
- `tool_sessions()`: inside a sandbox, a step that runs many short tools (one per extension
  layer) runs them through one sandbox per thread (`workers.assembly.sandbox_session`)
  instead of starting bwrap for each.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from workers.assembly.sandbox import Sandbox, bwrap_argv, check_paths
from workers.assembly.sandbox_session import SessionBroken, SessionPerThread

# Defined with the other engine errors; raised here, so importers of `run` find it here too.
from workers.errors import ToolError as ToolError

log = logging.getLogger(__name__)

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TIMEOUT = 1800
STDERR_TAIL_LINES = 20
# Enough for bwrap to set up and run `true`, even on a loaded machine.
PROBE_TIMEOUT = 60


@dataclass(frozen=True)
class ToolScope:
    """How tools run in the current context (see the module docstring)."""

    timeout: float = DEFAULT_TIMEOUT
    sandbox: Sandbox | None = None
    sessions: SessionPerThread | None = None


_scope: contextvars.ContextVar[ToolScope | None] = contextvars.ContextVar(
    "tool_scope", default=None
)


def _current() -> ToolScope:
    return _scope.get() or ToolScope()


@contextlib.contextmanager
def _entered(scope: ToolScope) -> Iterator[ToolScope]:
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def tool_timeout(seconds: float) -> contextlib.AbstractContextManager[ToolScope]:
    """Tools run in this context may run at most `seconds` each."""
    return _entered(replace(_current(), timeout=seconds))


def sandboxed(
    root: Path, readable: Sequence[Path] = ()
) -> contextlib.AbstractContextManager[ToolScope]:
    """Tools run in this context see `root` read-write, the `readable` files read-only and the
    tool files, nothing else. Nested, the innermost sandbox applies."""
    return _entered(replace(_current(), sandbox=Sandbox(root, tuple(readable))))


@contextlib.contextmanager
def tool_sessions() -> Iterator[SessionPerThread | None]:
    """Plain tool runs (no stdin data, stdout captured) in this context share a sandbox per
    thread, started on first use and stopped when the context ends: one bwrap start per
    thread instead of one per tool. Outside a sandbox, or where bwrap cannot sandbox (or no
    python3 runs the session's driver), nothing changes (yields None)."""
    scope = _current()
    if scope.sandbox is None or sandbox_problem() is not None or missing_tools(["python3"]):
        yield None
        return
    sessions = SessionPerThread(scope.sandbox, tool_env(None))
    try:
        with _entered(replace(scope, sessions=sessions)):
            yield sessions
    finally:
        sessions.close()


@functools.cache
def sandbox_problem() -> str | None:
    """Why this host cannot sandbox tools (bwrap missing, user namespaces not allowed), or
    None when it can: a real sandboxed run of `true`, once per process."""
    if shutil.which("bwrap", path=SAFE_PATH) is None:
        return "bubblewrap (bwrap) is not installed"
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as tmp:
        argv = [*bwrap_argv(Sandbox(Path(tmp)), None), "true"]
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=tool_env(None),
                timeout=PROBE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return "bubblewrap did not start a sandbox in time"
    if proc.returncode != 0:
        return "bubblewrap cannot start a sandbox here: " + _tail(proc.stderr)
    return None


def tool_env(
    source_date_epoch: int | None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The fixed environment every tool runs with."""
    env = {"PATH": SAFE_PATH, "LC_ALL": "C", "LANG": "C", "TZ": "UTC", "HOME": "/nonexistent"}
    if source_date_epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(source_date_epoch)
    if extra:
        env.update(extra)
    return env


def _tail(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").rstrip().splitlines()
    return "\n".join(lines[-STDERR_TAIL_LINES:])


def run_tool(
    argv: Sequence[str | os.PathLike[str]],
    *,
    source_date_epoch: int | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdin: IO[bytes] | bytes | os.PathLike[str] | None = None,
    stdout: IO[bytes] | None = None,
    timeout: float | None = None,
    umask: int | None = None,
) -> bytes:
    """Run `argv`; return its stdout (empty when `stdout` is a file) or raise `ToolError`.

    `stdin`: a file object, bytes, or the path of a file (a named pipe, say: see
    `workers.assembly.fifo`) that the tool reads as its stdin; in a sandbox the path must be
    inside it, and a tool session opens it inside the sandbox.

    `env` adds to the fixed environment; a value of "" removes that variable (some tools,
    e.g. mksquashfs 4.5, refuse SOURCE_DATE_EPOCH together with explicit time flags).
    `timeout`: at most this long, and never longer than the context's `tool_timeout`.
    In a `sandboxed` context the tool runs in that sandbox (host paths are `os.PathLike`
    arguments, and must be inside it).
    `umask`: the tool's umask instead of this process' (which differs between hosts).
    """
    scope = _current()
    limit = scope.timeout if timeout is None else min(timeout, scope.timeout)
    if scope.sandbox is not None:
        # A relative host path means what it means here (e.g. below the default data
        # directory `data`): made absolute before the sandbox changes the working directory.
        base = Path(os.path.abspath(cwd if cwd is not None else os.curdir))
        argv = [base / a if isinstance(a, os.PathLike) else a for a in argv]
    args = [os.fspath(a) for a in argv]
    full_env = tool_env(source_date_epoch)
    for key, value in (env or {}).items():
        if value == "":
            full_env.pop(key, None)
        else:
            full_env[key] = value
    log.debug("run: %s", shlex.join(args))
    command = args
    if scope.sandbox is not None:
        check_paths(scope.sandbox, argv, cwd)
        # Relative paths mean the same with or without bwrap: in the sandbox root by default.
        cwd = scope.sandbox.root if cwd is None else cwd
        if sandbox_problem() is None:
            # bwrap gets the fixed environment too: inside, /proc/1/environ is bwrap's own.
            command = [*bwrap_argv(scope.sandbox, cwd), *args]
    stdin_path = os.path.abspath(stdin) if isinstance(stdin, os.PathLike) else None
    if scope.sandbox is not None and stdin_path is not None:
        check_paths(scope.sandbox, [Path(stdin_path)], None)
    sessions = scope.sessions
    if (
        sessions is not None
        and sessions.sandbox == scope.sandbox
        and (stdin is None or stdin_path is not None)
        and stdout is None
    ):
        return _run_in_session(sessions, args, full_env, cwd, limit, umask, stdin_path)
    if stdin_path is not None:
        with open(stdin_path, "rb") as reader:
            return run_tool(
                argv,
                source_date_epoch=source_date_epoch,
                env=env,
                cwd=cwd,
                stdin=reader,
                stdout=stdout,
                timeout=timeout,
                umask=umask,
            )
    input_bytes: bytes | None = None
    stdin_arg: IO[bytes] | int | None = subprocess.DEVNULL
    if isinstance(stdin, bytes):
        input_bytes, stdin_arg = stdin, None
    elif stdin is not None and not isinstance(stdin, os.PathLike):
        stdin_arg = stdin
    try:
        proc = subprocess.run(
            command,
            input=input_bytes,
            stdin=stdin_arg,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=cwd,
            timeout=limit,
            check=False,
            umask=-1 if umask is None else umask,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(args, None, _tail(exc.stderr or b"")) from exc
    except FileNotFoundError as exc:
        raise ToolError(args, 127, f"{args[0]}: not found") from exc
    if proc.returncode != 0:
        raise ToolError(args, proc.returncode, _tail(proc.stderr))
    return proc.stdout if stdout is None else b""


def _run_in_session(
    sessions: SessionPerThread,
    args: list[str],
    env: Mapping[str, str],
    cwd: str | os.PathLike[str] | None,
    limit: float,
    umask: int | None,
    stdin: str | None,
) -> bytes:
    """`run_tool` through the calling thread's sandbox session: the same outcomes and errors."""
    where = os.path.abspath(cwd if cwd is not None else sessions.sandbox.root)
    try:
        done = sessions.session().run(
            args,
            cwd=where,
            env=env,
            umask=-1 if umask is None else umask,
            timeout=limit,
            stdin=stdin,
        )
    except SessionBroken as exc:
        # Status 125: the sandbox failed, not the tool (as `env` and `timeout` say it).
        raise ToolError(args, None if exc.timed_out else 125, str(exc)) from exc
    if done.returncode != 0:
        raise ToolError(args, done.returncode, _tail(done.stderr))
    return done.stdout


def missing_tools(names: Iterable[str]) -> list[str]:
    """Names from `names` that are not on the fixed PATH."""
    return [name for name in names if shutil.which(name, path=SAFE_PATH) is None]


def require_tools(names: Iterable[str], *, reason: str) -> None:
    """Fail at start-up, not mid-build, when a tool is missing."""
    missing = missing_tools(names)
    if missing:
        raise ToolError(
            missing,
            127,
            f"missing tools needed for {reason}: {', '.join(missing)} (install them with apt-get)",
        )


def tool_path(name: str) -> Path:
    """Absolute path of a tool on the fixed PATH."""
    found = shutil.which(name, path=SAFE_PATH)
    if found is None:
        raise ToolError([name], 127, f"{name}: not found on {SAFE_PATH}")
    return Path(found)
