"""Helpers for tests that build real assets from the reference release.

`stock_store(reference_release, root)` copies the release into a fresh writable store and
installs the bundled extensions, as the embedded default's first start does.
`build_assets` writes each asset's SBOM and signed provenance beside it (`<asset>.spdx.json`,
`<asset>.intoto.jsonl`, as served), signed with `TEST_SIGNING_KEY`, the same in every build.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from schematics import Schematic, parse_schematic, schematic_id
from tests.reference_release import DEB_CACHE
from workers.catalog.bundled import install_bundled_extensions
from workers.evidence.provenance import sign_statement
from workers.evidence.stored import PROVENANCE_SUFFIX, SBOM_SUFFIX, load_document
from workers.keys.signing import SigningKey
from workers.pipeline.build_once import ensure_built
from workers.planning.plans import make_plan
from workers.planning.profiles import parse_profile
from workers.releases.installer_base import copy_installer_base
from workers.releases.stored import Release, save_release
from workers.settings import Settings
from workers.store import LocalStore

# A fixed key, so that two independent builds sign their provenance alike.
TEST_SIGNING_KEY = SigningKey(ec.derive_private_key(0x1F2E3D4C5B6A, ec.SECP256R1()))

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
    copy_installer_base(src_store, release, store, root)
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
        sbom = load_document(store, asset.sbom_sha256)
        statement = load_document(store, asset.provenance_sha256)
        assert sbom is not None, f"{path} has no SBOM stored"
        assert statement is not None, f"{path} has no provenance stored"
        (out / (path + SBOM_SUFFIX)).write_bytes(sbom)
        (out / (path + PROVENANCE_SUFFIX)).write_bytes(sign_statement(TEST_SIGNING_KEY, statement))
    return built
