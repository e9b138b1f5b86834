"""`image-factory worker` at start: removes dead builds' work directories, says when builds
cannot be sandboxed, then runs the Celery worker (replaced here: it would run forever)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from factory.commands import worker as worker_command
from tests.workers.pipeline.test_workdirs import killed_mid_build
from workers.assembly import run
from workers.pipeline.workdirs import work_root
from workers.settings import Settings


def _start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], str]:
    ran: list[Any] = []
    monkeypatch.setattr(worker_command, "run_worker", lambda *args: ran.append(args))
    env = {"IMAGE_FACTORY_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(worker_command.worker, [], env=env)
    assert result.exit_code == 0, result.output
    return ran, result.output


def test_worker_start_removes_dead_work_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = killed_mid_build(work_root(Settings(data_dir=tmp_path / "data")))
    ran, output = _start(tmp_path, monkeypatch)
    assert len(ran) == 1
    assert not dead.exists()
    assert "WARNING" not in output


def test_worker_start_warns_when_builds_cannot_be_sandboxed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "sandbox_problem", lambda: "bubblewrap (bwrap) is not installed")
    ran, output = _start(tmp_path, monkeypatch)
    assert len(ran) == 1
    assert "WARNING: build tools cannot be sandboxed: bubblewrap (bwrap) is not installed" in output
