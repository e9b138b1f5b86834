"""Sandbox sessions: tools run through one sandbox per thread behave as tools run each in
a bwrap of their own (what they get back, how they fail); what they may not do is in
test_sandbox.py, run both ways."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.assembly import sandbox_session
from workers.assembly.run import (
    ToolError,
    run_tool,
    sandbox_problem,
    sandboxed,
    tool_sessions,
    tool_timeout,
)
from workers.assembly.sandbox_session import SessionPerThread


@pytest.fixture
def work(tmp_path: Path) -> Path:
    assert sandbox_problem() is None, "this host must be able to sandbox (bwrap)"
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


@pytest.fixture
def sessions(work: Path) -> Iterator[SessionPerThread]:
    with sandboxed(work), tool_sessions() as started:
        assert started is not None
        yield started


def test_commands_of_one_thread_share_one_sandbox(work: Path, sessions: SessionPerThread) -> None:
    assert sessions.starts == 0  # started on first use
    run_tool(["sh", "-c", "echo kept > /tmp/note"])
    for _ in range(5):
        assert run_tool(["cat", "/tmp/note"]) == b"kept\n"  # the same private /tmp
    assert sessions.starts == 1


def test_each_thread_gets_a_session_of_its_own(sessions: SessionPerThread) -> None:
    seen: list[bytes] = []

    def note_and_read(text: str) -> None:
        run_tool(["sh", "-c", f"echo {text} > /tmp/note"])
        seen.append(run_tool(["cat", "/tmp/note"]))

    run_tool(["true"])
    # In this context (sandbox, sessions), as the build's layer threads run.
    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(note_and_read, text))
        for text in ("one", "two")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == [b"one\n", b"two\n"]
    assert sessions.starts == 3


def test_a_command_gets_back_what_it_would_without_a_session(
    work: Path, sessions: SessionPerThread
) -> None:
    data = bytes(range(256)) * 300 + b"\nno newline at the end"
    (work / "data").write_bytes(data)
    assert run_tool(["cat", work / "data"]) == data
    assert run_tool(["pwd"]).decode().strip() == str(work)
    (work / "sub").mkdir()
    assert run_tool(["pwd"], cwd=work / "sub").decode().strip() == str(work / "sub")
    got = run_tool(["sh", "-c", "echo $SOURCE_DATE_EPOCH $X"], source_date_epoch=7, env={"X": "y"})
    assert got == b"7 y\n"
    assert run_tool(["sh", "-c", "umask"], umask=0o27).decode().strip() == "0027"
    # Not plain calls (stdin data, stdout to a file): run in a bwrap of their own.
    assert run_tool(["cat"], stdin=b"piped") == b"piped"
    with (work / "out").open("wb") as out:
        run_tool(["echo", "to a file"], stdout=out)
    assert (work / "out").read_bytes() == b"to a file\n"
    assert sessions.starts == 1


def test_failures_are_the_same_tool_errors(sessions: SessionPerThread) -> None:
    with pytest.raises(ToolError) as failed:
        run_tool(["sh", "-c", "echo first >&2; echo why >&2; exit 3"])
    assert failed.value.returncode == 3
    assert failed.value.stderr_tail == "first\nwhy"
    assert failed.value.summary == "sh exited with status 3"
    with pytest.raises(ToolError) as missing:
        run_tool(["no-such-tool-here"])
    assert missing.value.returncode == 127
    with tool_timeout(1), pytest.raises(ToolError, match="timed out") as slow:
        run_tool(["sleep", "120"])
    assert slow.value.returncode is None
    # The session survives its commands' failures.
    assert run_tool(["echo", "still here"]) == b"still here\n"
    assert sessions.starts == 1


def test_a_session_that_dies_fails_its_command_and_the_next_one_starts_anew(
    sessions: SessionPerThread,
) -> None:
    run_tool(["true"])
    # A tool can stop the driver (same user, same sandbox): that command fails as the
    # sandbox's failure, not as a hang, and the next command gets a fresh sandbox.
    with pytest.raises(ToolError) as broken:
        run_tool(["sh", "-c", "kill -9 $PPID; sleep 60"])
    assert broken.value.returncode == 125
    assert "sandbox session ended" in str(broken.value)
    assert run_tool(["echo", "again"]) == b"again\n"
    assert sessions.starts == 2


def test_without_a_sandbox_sessions_change_nothing(tmp_path: Path) -> None:
    with tool_sessions() as sessions:
        assert sessions is None
        assert run_tool(["echo", "plain"]) == b"plain\n"


def test_a_session_that_stops_answering_is_killed_at_the_timeout(
    sessions: SessionPerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_session, "GRACE", 1.0)
    with tool_timeout(2), pytest.raises(ToolError, match="timed out") as stuck:
        run_tool(["sh", "-c", "kill -STOP $PPID"])  # the driver never answers
    assert stuck.value.returncode is None
    assert "no answer in time" in str(stuck.value)
    assert run_tool(["echo", "again"]) == b"again\n"
    assert sessions.starts == 2
