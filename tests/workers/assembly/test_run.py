"""The subprocess wrapper, with real commands: what the child sees and what a failure says."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

import pytest

from workers.assembly.run import (
    SAFE_PATH,
    STDERR_TAIL_LINES,
    ToolError,
    missing_tools,
    require_tools,
    run_tool,
    tool_path,
)


def _child_env(
    source_date_epoch: int | None = None, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a child process sees, as a dict."""
    out = run_tool(["env", "-0"], source_date_epoch=source_date_epoch, env=env)
    entries = (entry.partition("=") for entry in out.decode().split("\0") if entry)
    return {name: value for name, _, value in entries}


def test_stdout_is_returned() -> None:
    assert run_tool(["sh", "-c", "printf 'a\\nb'"]) == b"a\nb"
    assert run_tool(["true"]) == b""


def test_stdin_bytes_are_fed_and_default_stdin_is_empty() -> None:
    assert run_tool(["cat"], stdin=b"xyz") == b"xyz"
    assert run_tool(["cat"]) == b""  # /dev/null: a tool reading stdin cannot hang


def test_stdin_and_stdout_can_be_files(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.write_bytes(b"from a file")
    with src.open("rb") as stdin, (tmp_path / "out").open("wb") as stdout:
        assert run_tool(["cat"], stdin=stdin, stdout=stdout) == b""
    assert (tmp_path / "out").read_bytes() == b"from a file"


def test_path_arguments_and_cwd(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"content")
    assert run_tool(["cat", tmp_path / "f"]) == b"content"
    assert run_tool(["pwd"], cwd=tmp_path).decode().strip() == str(tmp_path)


def test_failure_names_the_exact_command_and_stderr() -> None:
    argv = ["sh", "-c", "echo 'it broke' >&2; exit 3"]
    with pytest.raises(ToolError) as caught:
        run_tool(argv)
    error = caught.value
    assert error.returncode == 3
    assert error.argv == argv
    assert str(error) == f"command exited with status 3: {shlex.join(argv)}\nit broke"


def test_false_fails_with_status_one() -> None:
    with pytest.raises(ToolError) as caught:
        run_tool(["false"])
    assert str(caught.value) == "command exited with status 1: false"
    assert caught.value.stderr_tail == ""


def test_only_the_tail_of_stderr_is_kept() -> None:
    script = "for i in $(seq 1 50); do echo line$i >&2; done; exit 1"
    with pytest.raises(ToolError) as caught:
        run_tool(["sh", "-c", script])
    lines = caught.value.stderr_tail.splitlines()
    assert lines == [f"line{i}" for i in range(51 - STDERR_TAIL_LINES, 51)]


def test_a_timeout_is_a_tool_error_with_what_was_said_so_far() -> None:
    argv = ["sh", "-c", "echo starting >&2; exec sleep 60"]
    with pytest.raises(ToolError) as caught:
        run_tool(argv, timeout=1)
    error = caught.value
    assert error.returncode is None
    assert str(error).startswith(f"command timed out: {shlex.join(argv)}")
    assert "starting" in error.stderr_tail


def test_a_missing_tool_is_a_tool_error() -> None:
    with pytest.raises(ToolError) as caught:
        run_tool(["no-such-tool-for-image-factory", "--version"])
    assert caught.value.returncode == 127
    assert "no-such-tool-for-image-factory: not found" in str(caught.value)


def test_the_environment_is_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKED_FROM_THE_HOST", "1")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    env = _child_env(source_date_epoch=1700000000)
    assert env["LC_ALL"] == "C"
    assert env["TZ"] == "UTC"
    assert env["PATH"] == SAFE_PATH
    assert env["SOURCE_DATE_EPOCH"] == "1700000000"
    assert "LEAKED_FROM_THE_HOST" not in env


def test_source_date_epoch_is_unset_unless_given() -> None:
    assert "SOURCE_DATE_EPOCH" not in _child_env()


def test_env_adds_and_an_empty_value_removes() -> None:
    env = _child_env(source_date_epoch=5, env={"EXTRA": "yes", "SOURCE_DATE_EPOCH": "", "TZ": ""})
    assert env["EXTRA"] == "yes"
    assert "SOURCE_DATE_EPOCH" not in env
    assert "TZ" not in env
    assert env["LC_ALL"] == "C"


def test_require_tools_passes_when_all_are_there() -> None:
    require_tools(["sh", "cat"], reason="testing")
    assert missing_tools(["sh", "no-such-tool-a", "cat", "no-such-tool-b"]) == [
        "no-such-tool-a",
        "no-such-tool-b",
    ]


def test_require_tools_names_what_is_missing_and_why() -> None:
    with pytest.raises(ToolError) as caught:
        require_tools(["sh", "no-such-tool-a", "no-such-tool-b"], reason="building ISOs")
    message = str(caught.value)
    assert "missing tools needed for building ISOs: no-such-tool-a, no-such-tool-b" in message
    assert "apt-get" in message


def test_tool_path() -> None:
    sh = tool_path("sh")
    assert sh.is_absolute()
    assert sh.name == "sh"
    with pytest.raises(ToolError, match="no-such-tool-a: not found"):
        tool_path("no-such-tool-a")
