"""DESIGN.md's import direction: schematics, extensions <- workers <- factory.

Nothing imports factory.

Only workers/dispatch/celery_app.py and workers/dispatch/celery_tasks.py may import Celery;
only factory/ may import Flask.
Checked statically over every module's import statements.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"schematics", "extensions", "workers", "factory"}
ALLOWED = {
    "schematics": set(),
    "extensions": set(),
    "workers": {"schematics", "extensions"},
    "factory": {"schematics", "extensions", "workers"},
}
CELERY_OK = {"workers/dispatch/celery_app.py", "workers/dispatch/celery_tasks.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules() -> list[Path]:
    return sorted(p for pkg in OURS for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_respects_import_direction(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    package = rel.split("/")[0]
    imported = _imports(path)
    foreign = (imported & OURS) - ALLOWED[package] - {package}
    assert not foreign, f"{rel} imports {sorted(foreign)}, against DESIGN.md's direction"
    if rel not in CELERY_OK:
        assert not imported & {"celery", "kombu"}, f"{rel} imports Celery; only {CELERY_OK} may"
    if package != "factory":
        assert not imported & {"flask", "werkzeug"}, f"{rel} imports Flask; only factory/ may"


def test_every_package_is_checked() -> None:
    assert {p.relative_to(ROOT).parts[0] for p in _modules()} == OURS
