"""The README's promises that code can check: the two set-up commands and the settings table."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from workers.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
EMPTY = "*(empty)*"


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def _settings_table() -> dict[str, str]:
    """Variable name → its Default cell, from the Configuration table."""
    rows = re.findall(r"^\| `(IMAGE_FACTORY_\w+)` \| ([^|]+) \|", _section("Configuration"), re.M)
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)), "a variable is listed twice"
    return {name: default.strip() for name, default in rows}


def _fields() -> list[dataclasses.Field[object]]:
    return [f for f in dataclasses.fields(Settings) if f.name != "extra"]


def test_every_setting_is_in_the_configuration_table_and_nothing_else() -> None:
    documented = set(_settings_table())
    actual = {PREFIX + f.name.upper() for f in _fields()}
    assert documented - actual == set(), "README documents variables Settings does not have"
    assert actual - documented == set(), "Settings fields missing from the README table"


def test_the_table_shows_each_default() -> None:
    table = _settings_table()
    defaults = Settings()
    for f in _fields():
        value = getattr(defaults, f.name)
        expected = EMPTY if value == "" else f"`{value}`"
        assert table[PREFIX + f.name.upper()] == expected, f.name


def test_quick_start_is_exactly_two_commands_that_exist() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", _section("Quick start"), re.S)
    assert len(blocks) == 1
    commands = blocks[0].split()
    assert commands == ["scripts/serve", "scripts/test"]
    for command in commands:
        assert os.access(ROOT / command, os.X_OK), f"{command} is not executable"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in ci
    assert re.search(r"^exec scripts/test\b", ci, re.M)
