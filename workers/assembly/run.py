"""The single way this project runs an external tool.

Argv lists only (never a shell), a fixed environment (`LC_ALL=C`, `SOURCE_DATE_EPOCH`, a fixed
`PATH`, `TZ=UTC`), stdin from /dev/null unless given, a timeout, and on failure a `ToolError`
whose message is the exact command plus the tail of its stderr.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TIMEOUT = 1800
STDERR_TAIL_LINES = 20


class ToolError(RuntimeError):
    """An external tool failed, timed out or is missing."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr_tail: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        status = "timed out" if returncode is None else f"exited with status {returncode}"
        message = f"command {status}: {shlex.join(self.argv)}"
        if stderr_tail:
            message += "\n" + stderr_tail
        super().__init__(message)


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
    stdin: IO[bytes] | bytes | None = None,
    stdout: IO[bytes] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> bytes:
    """Run `argv`; return its stdout (empty when `stdout` is a file) or raise `ToolError`.

    `env` adds to the fixed environment; a value of "" removes that variable (some tools,
    e.g. mksquashfs 4.5, refuse SOURCE_DATE_EPOCH together with explicit time flags).
    """
    args = [os.fspath(a) for a in argv]
    full_env = tool_env(source_date_epoch)
    for key, value in (env or {}).items():
        if value == "":
            full_env.pop(key, None)
        else:
            full_env[key] = value
    log.debug("run: %s", shlex.join(args))
    input_bytes: bytes | None = None
    stdin_arg: IO[bytes] | int | None = subprocess.DEVNULL
    if isinstance(stdin, bytes):
        input_bytes, stdin_arg = stdin, None
    elif stdin is not None:
        stdin_arg = stdin
    try:
        proc = subprocess.run(
            args,
            input=input_bytes,
            stdin=stdin_arg,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(args, None, _tail(exc.stderr or b"")) from exc
    except FileNotFoundError as exc:
        raise ToolError(args, 127, f"{args[0]}: not found") from exc
    if proc.returncode != 0:
        raise ToolError(args, proc.returncode, _tail(proc.stderr))
    return proc.stdout if stdout is None else b""


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
