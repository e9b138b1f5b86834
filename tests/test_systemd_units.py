"""The systemd units the README's runbook installs are valid and supervise as it says."""

from __future__ import annotations

import re
import subprocess
import sysconfig
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "scripts" / "systemd"
INSTALLED_AT = "/opt/image-factory/.venv/bin/image-factory"


@pytest.mark.parametrize("unit", ["serve", "worker"])
def test_unit_verifies_and_restarts_on_failure(unit: str, tmp_path: Path) -> None:
    text = (UNITS / f"image-factory-{unit}.service").read_text()
    directives = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    assert directives["ExecStart"].startswith(f"{INSTALLED_AT} {unit} ")
    assert directives["Restart"] == "on-failure"
    assert directives["EnvironmentFile"] == "/etc/image-factory/env"
    assert directives["User"] == "image-factory"
    assert directives["NoNewPrivileges"] == "yes"
    assert directives["ProtectSystem"] == "strict"
    # systemd's own check, with the command pointing at this checkout's (it must exist).
    here = tmp_path / f"image-factory-{unit}.service"
    here.write_text(
        text.replace(INSTALLED_AT, str(Path(sysconfig.get_path("scripts")) / "image-factory"))
    )
    verified = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(here)], capture_output=True, text=True
    )
    assert verified.returncode == 0
    assert verified.stderr == "", verified.stderr  # unknown or malformed directives
