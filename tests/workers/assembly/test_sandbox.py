"""The build sandbox holds: hostile tool invocations inside it fail, a normal one works.

Each test runs real commands through `run_tool` inside `sandboxed(workdir)`, with the work
directory where a build has it (`<data dir>/tmp/build-…`, next to the keys)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.assembly import run
from workers.assembly.run import (
    ToolError,
    run_tool,
    sandbox_problem,
    sandboxed,
    tool_sessions,
    tool_timeout,
)
from workers.assembly.sandbox import OutsideSandbox

SECRET = "s3cr3t-canary-0f9a"
KEY_TEXT = "-----BEGIN PRIVATE KEY-----\nnot-for-tools\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "keys").mkdir(parents=True)
    (data / "keys" / "signing-key.pem").write_text(KEY_TEXT)
    (data / "keys" / "signing-key.pem").chmod(0o600)
    return data


@pytest.fixture(params=["bwrap per tool", "session"])
def workdir(data_dir: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """The build's sandbox, its tools run each in a bwrap of its own or all in one sandbox
    session (`tool_sessions`, as the extension layers run them): both must hold."""
    assert sandbox_problem() is None, "this host must be able to sandbox (bwrap)"
    work = data_dir / "tmp" / "build-test"
    work.mkdir(parents=True)
    if request.param == "bwrap per tool":
        with sandboxed(work):
            yield work
        return
    with sandboxed(work), tool_sessions() as sessions:
        yield work
        assert sessions is not None
        # Every command of the test went through the one session.
        assert sessions.starts == 1


def _sh(script: str, cwd: Path | None = None) -> str:
    return run_tool(["sh", "-c", script], cwd=cwd).decode()


def test_a_tool_works_in_its_work_directory(workdir: Path) -> None:
    _sh("mkdir sub && echo made > sub/file", cwd=workdir)
    assert (workdir / "sub" / "file").read_text() == "made\n"
    assert run_tool(["cat", workdir / "sub" / "file"]) == b"made\n"
    # The tool files are there, read-only; a private /tmp.
    assert _sh("command -v mksquashfs").strip() == "/usr/bin/mksquashfs"
    assert _sh("echo t > /tmp/t && cat /tmp/t") == "t\n"


def test_relative_paths_mean_what_they_mean_outside_the_sandbox(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default data directory is relative (`data`): a tool given `data/tmp/build-…/x`
    must find the file the caller means, not one below the sandbox's working directory."""
    monkeypatch.chdir(data_dir.parent)
    work = Path("data") / "tmp" / "build-relative"
    work.mkdir(parents=True)
    (work / "in").write_text("meant\n")
    with sandboxed(work):
        assert run_tool(["cat", work / "in"]) == b"meant\n"
        run_tool(["cp", work / "in", work / "out"])
        assert run_tool(["cat", Path("in")], cwd=work) == b"meant\n"
    assert (work / "out").read_text() == "meant\n"


def test_the_signing_key_in_the_data_directory_cannot_be_read(
    data_dir: Path, workdir: Path
) -> None:
    key = data_dir / "keys" / "signing-key.pem"
    for script in (
        f"cat {key}",
        "cat ../../keys/signing-key.pem",
        "cat /proc/self/cwd/../../keys/signing-key.pem",
        f"cat /proc/1/root{key}",
    ):
        with pytest.raises(ToolError) as caught:
            _sh(script, cwd=workdir)
        assert "not-for-tools" not in str(caught.value)
    # Handing the tool the path directly is a bug in the calling code, said as such.
    with pytest.raises(OutsideSandbox, match="outside the sandbox"):
        run_tool(["cat", key])


def test_no_secret_of_the_worker_environment_is_visible(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGE_FACTORY_S3_SECRET_KEY", SECRET)
    seen = _sh("cat /proc/1/environ /proc/self/environ; env; ls /proc")
    assert SECRET not in seen
    assert "IMAGE_FACTORY" not in seen
    assert "LC_ALL=C" in seen  # the fixed environment is there


def test_the_worker_processes_are_not_visible(workdir: Path) -> None:
    pids = {int(p) for p in _sh("ls /proc").split() if p.isdigit()}
    assert pids
    assert max(pids) < 10  # a pid namespace of its own: bwrap, sh, ls
    assert _sh("cat /proc/1/cmdline | tr '\\0' ' '").startswith("bwrap")


def test_nothing_outside_the_work_directory_can_be_written(
    tmp_path: Path, data_dir: Path, workdir: Path
) -> None:
    targets = [tmp_path / "outside", data_dir / "keys" / "planted", data_dir / "planted"]
    for target in targets:
        # These host paths are under /tmp here: inside, that is the sandbox's own empty
        # tmpfs, so the write lands there and vanishes with the sandbox.
        _sh(f"mkdir -p {target.parent} && echo x > {target}; true")
        assert not target.exists()
    _sh("ln -s / ../escape; true", cwd=workdir)
    for script in ("echo x > /usr/planted", "echo x > /planted", "touch /usr/bin"):
        with pytest.raises(ToolError):
            _sh(script, cwd=workdir)
    assert not (data_dir / "tmp" / "escape").exists()
    assert sorted(p.name for p in (data_dir / "keys").iterdir()) == ["signing-key.pem"]


def test_the_network_cannot_be_reached(workdir: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        connect = (
            f"import socket; s = socket.create_connection(('127.0.0.1', {port}), timeout=5); "
            "s.sendall(b'leak')"
        )
        with pytest.raises(ToolError, match=r"(refused|unreachable)"):
            run_tool(["python3", "-c", connect])
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected


def test_the_tool_is_not_root_and_cannot_become_root(workdir: Path) -> None:
    assert _sh("id -u; id -g").split() == ["65534", "65534"]
    for script in (
        "python3 -c 'import os; os.setuid(0)'",
        "unshare --user --map-root-user true",  # no user namespace inside to become root in
        "chown 0:0 .",
    ):
        with pytest.raises(ToolError):
            _sh(script, cwd=workdir)


def test_a_granted_file_is_readable_and_read_only(data_dir: Path, workdir: Path) -> None:
    key = data_dir / "keys" / "signing-key.pem"
    _sh(f"test ! -e {key}", cwd=workdir)  # not in the build's own sandbox
    out = workdir / "out"
    out.mkdir()
    with sandboxed(out, readable=[key]):
        assert run_tool(["cat", key]).decode() == KEY_TEXT
        with pytest.raises(ToolError):
            _sh(f"echo x > {key}")
        with pytest.raises(OutsideSandbox):
            run_tool(["cat", workdir / "sub"])  # the outer sandbox is not visible here
    assert key.read_text() == KEY_TEXT


def test_tool_timeout_stops_a_tool(workdir: Path) -> None:
    with tool_timeout(1), pytest.raises(ToolError, match="timed out") as caught:
        run_tool(["sleep", "120"])
    assert caught.value.returncode is None


def test_without_a_sandbox_tools_run_unsandboxed_but_paths_are_still_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "sandbox_problem", lambda: "bubblewrap (bwrap) is not installed")
    work = tmp_path / "work"
    work.mkdir()
    with sandboxed(work):
        assert _sh("id -u").strip() == str(os.getuid())
        with pytest.raises(OutsideSandbox):
            run_tool(["cat", tmp_path / "elsewhere"])
