"""What a sandboxed tool sees: the bubblewrap command line and the check of its path arguments.

A tool that reads or writes extension-derived trees runs under `bwrap` (Debian's bubblewrap:
unprivileged user, mount, pid, network, ipc and uts namespaces) and sees only:
- its sandbox root (the build's work directory) read-write, at the same absolute path;
- files granted read-only by name (e.g. the SecureBoot key for `sbsign`, nothing else);
- the tool files read-only: /usr and the /bin, /sbin, /lib* links or directories;
- a fresh /proc of its own pid namespace, a minimal /dev, an empty private /tmp; all else
  read-only;
- no network (an empty network namespace), uid and gid 65534, no capabilities, and the
  environment bwrap was started with (`run_tool`'s fixed one: it is also what /proc/1/environ
  shows inside, so bwrap must never inherit the worker's environment).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NOBODY = "65534"
# Tool files, read-only. Debian 12 has merged /usr: the others are links into it there.
TOOL_DIRS = ("/usr",)
ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Host paths a tool may be handed without being granted: the tool files and /dev/null & co.
SYSTEM_PREFIXES = (*TOOL_DIRS, *ROOT_LINKS, "/dev")


class OutsideSandbox(ValueError):
    """A sandboxed tool was handed a host path it cannot see: a bug in the calling code."""


@dataclass(frozen=True)
class Sandbox:
    """The one directory a tool may change, plus files it may read."""

    root: Path
    readable: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(os.path.abspath(self.root)))
        object.__setattr__(self, "readable", tuple(Path(os.path.abspath(p)) for p in self.readable))


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def check_paths(
    sandbox: Sandbox, args: Sequence[str | os.PathLike[str]], cwd: str | os.PathLike[str] | None
) -> None:
    """Refuse host paths the sandbox does not show. Host paths are the `os.PathLike`
    arguments (strings may be paths inside an image, e.g. xorriso's `-map SRC /EFI`)."""
    base = os.path.abspath(cwd) if cwd is not None else str(sandbox.root)
    if cwd is not None and not _under(base, str(sandbox.root)):
        raise OutsideSandbox(f"tool working directory {base} is outside the sandbox {sandbox.root}")
    allowed = [str(sandbox.root), *map(str, sandbox.readable), *SYSTEM_PREFIXES]
    for arg in args:
        if not isinstance(arg, os.PathLike):
            continue
        path = os.path.normpath(os.path.join(base, os.fspath(arg)))
        if not any(_under(path, prefix) for prefix in allowed):
            raise OutsideSandbox(
                f"tool argument {path} is outside the sandbox {sandbox.root}: copy the input "
                "into the build's work directory first"
            )


def _root_links() -> list[str]:
    """Recreate /bin, /lib, ... as the host has them (links into /usr, or directories)."""
    args: list[str] = []
    for name in ROOT_LINKS:
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    return args


def bwrap_argv(sandbox: Sandbox, cwd: str | os.PathLike[str] | None) -> list[str]:
    """`bwrap` and its options, to be followed by the tool's argv."""
    args = [
        "bwrap",
        "--unshare-all",
        "--unshare-user",  # required, not "try": no user namespace, no sandbox
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--uid",
        NOBODY,
        "--gid",
        NOBODY,
    ]
    for name in TOOL_DIRS:
        args += ["--ro-bind", name, name]
    args += _root_links()
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    args += ["--bind", str(sandbox.root), str(sandbox.root)]
    for path in sandbox.readable:
        args += ["--ro-bind", str(path), str(path)]
    chdir = os.path.abspath(cwd) if cwd is not None else str(sandbox.root)
    # The sandbox's own root (where bwrap made the mount points) read-only too.
    return [*args, "--remount-ro", "/", "--chdir", chdir, "--"]
