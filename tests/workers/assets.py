"""Helpers for tests that build real assets from the reference release.

`stock_store(reference_release, root)` copies the release into a fresh writable store and
installs the bundled extensions, as the embedded default's first start does.
"""

from __future__ import annotations

from pathlib import Path

from schematics import Schematic, parse_schematic, schematic_id
from tests.reference_release import DEB_CACHE
from workers.builds import ensure_built
from workers.catalog.bundled import install_bundled_extensions
from workers.plans import make_plan
from workers.profiles import parse_profile
from workers.releases.catalog import Release, save_release
from workers.settings import Settings
from workers.store import LocalStore

META_VALUE = '{"externalIPs":["1.2.3.4"]}'
SCHEMATIC = f"""
customization:
  extraKernelArgs:
    - console=ttyS0
    - factory.poweroff=1
  meta:
    - key: 0xa
      value: '{META_VALUE}'
  systemExtensions:
    officialExtensions:
      - factory/hello
      - factory/dummy-module
  kernelModules:
    - zram
""".encode()


def _quiet(message: str) -> None:
    """Progress sink that shows nothing."""


def stock_store(source: tuple[LocalStore, Release], root: Path) -> tuple[LocalStore, Settings]:
    """A store under `root` with the reference release and the bundled extensions."""
    src_store, release = source
    settings = Settings(data_dir=root / "data")
    store = LocalStore(settings.data_dir / "store")
    files = {name: release.fetch(src_store, name, root / name) for name in release.files}
    save_release(store, release, files)
    for path in files.values():
        path.unlink()
    install_bundled_extensions(settings, store, release, _quiet)
    return store, settings


def share_deb_cache(settings: Settings) -> None:
    """Point the data directory's `.deb` cache (and the private apt indexes in it) at the
    machine's test cache, so first-start steps that fetch packages reuse earlier downloads."""
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "cache").mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "cache" / "debs").symlink_to(DEB_CACHE)


def the_schematic() -> tuple[Schematic, str]:
    schematic = parse_schematic(SCHEMATIC)
    return schematic, schematic_id(schematic)


def build_assets(
    store: LocalStore, settings: Settings, paths: list[str], out: Path, text: bytes = SCHEMATIC
) -> dict[str, Path]:
    """Build `paths` for the test schematic (or the schematic `text`) with `ensure_built`;
    copies land in `out`."""
    schematic = parse_schematic(text)
    sid = schematic_id(schematic)
    out.mkdir(parents=True, exist_ok=True)
    built = {}
    for path in paths:
        plan = make_plan(store, schematic, sid, "v1.0.0", parse_profile(path), settings)
        asset = ensure_built(
            store,
            plan,
            settings.data_dir / "tmp",
            signer=plan.signer(settings),
            timeout=settings.tool_timeout,
        )
        dest = out / path
        store.download(asset.blob, dest)
        built[path] = dest
    return built
