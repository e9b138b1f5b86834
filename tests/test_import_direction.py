"""DESIGN.md's import direction: schematics, extensions <- workers <- factory.

Nothing imports factory.

Only workers/dispatch/celery_app.py and workers/dispatch/celery_tasks.py may import Celery;
only factory/ may import Flask.
Checked statically over every module's import statements.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
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


def _blueprint_modules() -> set[str]:
    return {p.stem for p in (ROOT / "factory").glob("*.py") if "Blueprint(" in p.read_text()}


def _blueprint_imports(path: Path, blueprints: set[str]) -> set[str]:
    return {
        name.removeprefix("factory.")
        for name in _imported_modules(path)
        if name.removeprefix("factory.") in blueprints - {path.stem}
    }


def _imported_modules(path: Path) -> set[str]:
    """Full dotted names of what `path` imports (`from factory import x` counts as factory.x)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("name", sorted(_blueprint_modules()))
def test_blueprints_do_not_import_each_other(name: str) -> None:
    """Shared code lives in a module of its own (engine, pages, ...), not in a blueprint."""
    path = ROOT / "factory" / f"{name}.py"
    assert not _blueprint_imports(path, _blueprint_modules()), f"factory/{name}.py"


def test_the_blueprint_rule_catches_a_violation(tmp_path: Path) -> None:
    module = tmp_path / "images.py"
    module.write_text("from factory.registry import bp\nfrom factory import ui\n")
    assert _blueprint_imports(module, {"images", "registry", "ui"}) == {"registry", "ui"}


# What a web process may load of the build side: the one tool wrapper with its sandbox and
# sandbox sessions (uploads are checked and keys made with tools) and sd-boot's enrollKeys
# validation that plans use.
WEB_MAY_IMPORT = {
    "workers.assembly",
    "workers.assembly.run",
    "workers.assembly.sandbox",
    "workers.assembly.sandbox_session",
    "workers.assembly.sdboot",
}
BUILD_SIDE = (
    "workers.assembly",
    "workers.pipeline.build",
    "workers.pipeline.boot_media",
    "workers.pipeline.disk_formats",
    "workers.pipeline.layer_cache",
    "workers.dispatch.build_job",
    "workers.dispatch.celery_tasks",
)


def _loaded_after(code: str, data_dir: Path) -> set[str]:
    script = f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))\n"
    env = {"PATH": os.environ["PATH"], "IMAGE_FACTORY_DATA_DIR": str(data_dir)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return {name for name in out.split() if name.startswith(BUILD_SIDE)} - WEB_MAY_IMPORT


def test_the_web_process_does_not_load_the_assembly_code(tmp_path: Path) -> None:
    """A web process sends builds by name: creating the app loads no builder, no task."""
    loaded = _loaded_after("from factory import create_app\ncreate_app()", tmp_path)
    assert not loaded, f"creating the web app imports {sorted(loaded)}"


def test_the_web_rule_catches_a_violation(tmp_path: Path) -> None:
    code = "from factory import create_app\ncreate_app()\nimport workers.pipeline.build_once"
    assert "workers.pipeline.build_asset" in _loaded_after(code, tmp_path)
