"""The sources of the bundled reference extensions and overlays (package data in catalog/).

catalog/extensions/<name>/   an extension source (manifest.yaml + rootfs/), or, with a
                             `modules.txt`, a recipe whose rootfs is filled per release
                             with those kernel modules (done in workers, which can read
                             a release's module tree)
catalog/overlays/<name>/     an overlay source
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from extensions.errors import ExtensionError

CATALOG_DIR = Path(__file__).resolve().parent / "catalog"
MODULES_RECIPE = "modules.txt"


@dataclass(frozen=True)
class BundledSource:
    kind: str  # "extension" or "overlay"
    name: str
    path: Path
    modules: tuple[str, ...] = ()  # kernel modules to take from the release (recipes only)


def read_modules_recipe(path: Path) -> tuple[str, ...]:
    """Module names, one a line; `#` starts a comment."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    if not names:
        raise ExtensionError(f"{path}: lists no module")
    return tuple(names)


def bundled_sources(catalog: Path = CATALOG_DIR) -> list[BundledSource]:
    """Every bundled source, extensions first, each kind by name."""
    found = []
    for kind, folder in (("extension", "extensions"), ("overlay", "overlays")):
        base = catalog / folder
        for path in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
            recipe = path / MODULES_RECIPE
            modules = read_modules_recipe(recipe) if recipe.is_file() else ()
            found.append(BundledSource(kind, path.name, path, modules))
    return found
