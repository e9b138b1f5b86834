"""Every `image-factory` command runs its tools under IMAGE_FACTORY_TOOL_TIMEOUT."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from factory.cli import main
from workers.assembly.run import run_tool


@click.command()
def runs_a_slow_tool() -> None:
    run_tool(["sleep", "120"])


def test_tool_timeout_applies_to_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(main.commands, "runs-a-slow-tool", runs_a_slow_tool)
    result = CliRunner().invoke(main, ["runs-a-slow-tool"], env={"IMAGE_FACTORY_TOOL_TIMEOUT": "1"})
    assert result.exit_code == 1
    assert "timed out: sleep 120" in str(result.exception)


def test_a_malformed_setting_is_a_clear_error() -> None:
    result = CliRunner().invoke(
        main, ["release", "list"], env={"IMAGE_FACTORY_TOOL_TIMEOUT": "soon"}
    )
    assert result.exit_code == 1
    assert "IMAGE_FACTORY_TOOL_TIMEOUT must be an integer" in result.output
